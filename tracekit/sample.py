"""Stage: problems -> samples (with their verdicts).

Each problem is asked under every prompt variant, ``samples_per_variant`` times. A
sample is keyed by (problem, variant, rendered prompt, model, sampling settings except
``max_tokens``, index): rows the store already holds under that key are reused, so a
re-run generates only what is missing; a truncated sample is regenerated when
``max_tokens`` grew. Every response is verified at once with the task's exact verifier
(the *verify* stage: extracted answer, ``is_correct``, reason).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from tracekit.ids import seed_for, stable_hash
from tracekit.prompts import Variant, sample_messages
from tracekit.sampling.base import Request, Sampler, SamplingParams
from tracekit.store import latest_samples
from tracekit.tasks import get_task

SAMPLE_SCHEMA = {
    "sample_id": pl.Utf8,
    "sample_key": pl.Utf8,
    "problem_id": pl.Utf8,
    "prompt_variant": pl.Utf8,
    "sample_index": pl.Int64,
    "model": pl.Utf8,
    "max_tokens": pl.Int64,
    "prompt": pl.Utf8,
    "response": pl.Utf8,
    "finish_reason": pl.Utf8,
    "n_tokens": pl.Int64,
    "extracted_answer": pl.Utf8,
    "is_correct": pl.Boolean,
    "reason": pl.Utf8,
    "source": pl.Utf8,
}


def existing_samples(samples: pl.DataFrame) -> dict[str, tuple[str, int | None]]:
    """Per sample key, the finish reason and max_tokens of its latest row."""
    if samples.height == 0:
        return {}
    latest = latest_samples(samples)
    return {k: (f, m) for k, f, m in latest.select("sample_key", "finish_reason", "max_tokens").iter_rows()}


def _needs(done: tuple[str, int | None] | None, max_tokens: int) -> bool:
    if done is None:
        return True
    finish, used = done
    return finish == "length" and (used or 0) < max_tokens


def sample_problems(
    problems: pl.DataFrame,
    sampler: Sampler,
    *,
    variants: list[Variant],
    k: int,
    params: SamplingParams,
    demos: dict[str, list[tuple[str, str]]],
    seed: int,
    done: dict[str, tuple[str, int | None]],
    source: str = "generate",
) -> pl.DataFrame:
    """Generate the missing samples of ``problems`` and verify them; a ``samples`` frame."""
    requests: list[Request] = []
    rows_meta: list[dict[str, Any]] = []
    for pid, task_name, question, meta in problems.select(
        "problem_id", "task", "question", "meta"
    ).iter_rows():
        for variant in variants:
            messages = sample_messages(question, variant, demos.get(task_name, []))
            prompt_key = stable_hash(json.dumps(messages))
            keys = [
                stable_hash(pid, variant.name, prompt_key, sampler.model_id, params.key(), i)
                for i in range(k)
            ]
            missing = [i for i in range(k) if _needs(done.get("s-" + keys[i]), params.max_tokens)]
            if not missing:
                continue
            requests.append(
                Request(
                    messages=messages,
                    n=len(missing),
                    params=params,
                    seed=seed_for(seed, pid, variant.name, tuple(missing)) % (2**31),
                )
            )
            rows_meta.append(
                {
                    "pid": pid,
                    "task": task_name,
                    "meta": meta,
                    "variant": variant.name,
                    "keys": keys,
                    "missing": missing,
                    "prompt": json.dumps(messages),
                }
            )
    if not requests:
        return pl.DataFrame(schema=SAMPLE_SCHEMA)
    outputs = sampler.generate(requests)
    rows = []
    for info, completions in zip(rows_meta, outputs):
        task = get_task(info["task"])
        meta = json.loads(info["meta"])
        for i, comp in zip(info["missing"], completions):
            check = task.score(comp.text, meta)
            key = "s-" + info["keys"][i]
            rows.append(
                {
                    "sample_id": "s-" + stable_hash(key, params.max_tokens),
                    "sample_key": key,
                    "problem_id": info["pid"],
                    "prompt_variant": info["variant"],
                    "sample_index": i,
                    "model": sampler.model_id,
                    "max_tokens": params.max_tokens,
                    "prompt": info["prompt"],
                    "response": comp.text,
                    "finish_reason": comp.finish_reason,
                    "n_tokens": comp.n_tokens,
                    "extracted_answer": check.answer,
                    "is_correct": check.is_correct,
                    "reason": check.reason,
                    "source": source,
                }
            )
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA)
