"""Small real stores for the delivery tests: a two-split imported store and a verifiable task store.

``task_store`` runs the real pipeline (multiplication problems, sampling, verification,
self-verification, rearrangement) with a scripted sampler whose answers are always right for
some problems, always wrong for others and mixed for the rest, so GRPO's no-signal report has
all three kinds.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import yaml

_Q = re.compile(r"What is (\d+) \* (\d+)\?")


def _respond(messages, rng) -> str:
    last = messages[-1]["content"]
    found = _Q.findall(last)
    if not found:
        return "I cannot tell.\n<verdict>Incorrect</verdict>"
    a, b = map(int, found[-1])
    if any(
        "<verdict>" in m["content"] for m in messages
    ):  # a reflection request: judge the quoted answer (right 90% of the time)
        given = re.findall(r"<answer>\s*([^<]*?)\s*</answer>", last)
        right = bool(given) and given[-1] == str(a * b)
        if rng.random() < 0.1:
            right = not right
        return f"Recomputing {a} * {b}.\n<verdict>{'Correct' if right else 'Incorrect'}</verdict>"
    if a % 3 == 0:
        value = a * b
    elif a % 3 == 1:
        value = a * b + 1
    else:
        value = a * b + (0 if rng.random() < 0.5 else 2)
    return f"{a} * {b} = {value}\n<answer>{value}</answer>"


def build_task_store(root: Path, *, n: int = 12):
    """A store built by ``run_pipeline`` on ``n`` multiplication problems of the train and test splits."""
    from tracekit.pipeline.config import load_config
    from tracekit.pipeline.run import run_pipeline
    from tracekit.sampling.scripted import ScriptedSampler
    from tracekit.store import Store

    params = {"temperature": 0.7, "max_tokens": 64}
    config = {
        "store": str(root / "task-store"),
        "seed": 0,
        "model": {"backend": "scripted"},
        "tasks": [
            {"name": "multiplication", "n": n, "split": "train", "options": {"digits": 2, "digits_b": 1}},
            {"name": "multiplication", "n": 4, "split": "test", "options": {"digits": 2, "digits_b": 1}},
        ],
        "sampling": {
            "variants": ["plain", "plan"],
            "samples_per_variant": 2,
            "few_shot": 0,
            "params": params,
        },
        "reflection": {"per_sample": 1, "few_shot": 0, "params": params},
        "rearrange": {"formats": ["*C_full", "*CC"], "n_max": 2, "min_samples": 1},
    }
    path = root / "task.yaml"
    path.write_text(yaml.safe_dump(config))
    run_pipeline(
        load_config(path),
        sampler=ScriptedSampler(_respond, model_id="scripted"),
        progress=False,
        echo=lambda *_: None,
    )
    return Store(root / "task-store")


def build_split_store(root: Path, raw: pl.DataFrame, *, test_questions: int = 8):
    """The synthetic reference-layout raw data imported as two splits, then rearranged."""
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    questions = raw["question"].unique(maintain_order=True)
    held_out = questions.tail(test_questions).implode()
    store = Store(root / "split-store", create=True)
    for split, frame in (
        ("train", raw.filter(~pl.col("question").is_in(held_out))),
        ("test", raw.filter(pl.col("question").is_in(held_out))),
    ):
        path = root / f"raw-{split}.parquet"
        frame.write_parquet(path)
        import_skillfactory(path, store, split=split, task="countdown")  # records its own runs row
    rearrange_store(store, RearrangeConfig(formats=("*C_full", "*CC"), n_max=3))
    return store
