"""The run: tasks -> sample -> verify -> reflect -> filter -> rearrange -> store.

A straight list of stage calls over a store. Problems are processed in chunks of
``chunk_problems``; each chunk's samples and reflections are written atomically before
the next chunk starts, so a run killed at any moment loses at most the chunk in flight,
and running the same command again reuses every finished row (see :mod:`tracekit.sample`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import polars as pl

from tracekit.pipeline.config import RunConfig, config_dict
from tracekit.prompts import load_variants, pick_variants
from tracekit.rearrange.stage import rearrange_store
from tracekit.reflect import reflect_samples
from tracekit.sample import existing_samples, sample_problems
from tracekit.sampling.base import Sampler
from tracekit.sampling.registry import make_sampler
from tracekit.store import Store, latest_samples
from tracekit.store.manifest import RunRecorder
from tracekit.tasks import get_task


def make_problems(cfg: RunConfig) -> pl.DataFrame:
    frames = []
    for spec in cfg.tasks:
        task = get_task(spec.name)
        if spec.path:
            frames.append(task.load(spec.path, split=spec.split).head(spec.n))
        else:
            frames.append(task.generate(spec.n, seed=cfg.seed, split=spec.split, **spec.options))
    return pl.concat(frames)


def _corrupt(answer: str) -> str:
    try:
        return str(int(answer) + 1)
    except ValueError:
        return answer[::-1] if len(answer) > 1 and answer[::-1] != answer else answer + "x"


def make_demos(cfg: RunConfig, exclude: set[str]) -> tuple[dict, dict]:
    """Solved demonstrations per task for sampling and reflection prompts (none for dataset tasks)."""
    sample_demos: dict[str, list] = {}
    reflect_demos: dict[str, list] = {}
    want = max(cfg.sampling.few_shot, cfg.reflection.few_shot)
    for spec in cfg.tasks:
        if spec.path or want == 0 or spec.name in sample_demos:
            continue
        task = get_task(spec.name)
        pool = task.generate(
            want + len(exclude) + 2, seed=cfg.seed + 7919, split="validation", **spec.options
        )
        pool = pool.filter(~pl.col("problem_id").is_in(list(exclude))).head(want)
        solved = [
            (q, task.demo_solution(json.loads(m), a), a)
            for q, a, m in pool.select("question", "answer", "meta").iter_rows()
        ]
        sample_demos[spec.name] = solved[: cfg.sampling.few_shot]
        demos = []
        for i, (q, solution, a) in enumerate(solved[: cfg.reflection.few_shot]):
            correct = i % 2 == 0  # alternate a right and a wrong proposed answer
            shown = a if correct else _corrupt(a)
            demos.append((q, f"The answer is {shown}.\n<answer>{shown}</answer>", solution, correct))
        reflect_demos[spec.name] = demos
    return sample_demos, reflect_demos


def run_pipeline(
    cfg: RunConfig, *, sampler: Sampler | None = None, progress: bool = True, echo=print
) -> dict[str, Any]:
    """Run every stage of ``cfg``; return the summary (also printed through ``echo``)."""
    from tqdm import tqdm

    store = Store(cfg.store, create=True)
    rec = RunRecorder("run", config_dict(cfg), seed=cfg.seed)
    with rec.stage("tasks"):
        problems = make_problems(cfg)
        store.write("problems", problems)
        sample_demos, reflect_demos = make_demos(cfg, set(problems["problem_id"].to_list()))
    with rec.stage("load_model"):
        sampler = sampler or make_sampler(cfg.model.backend, **cfg.model.options)
    rec.model, rec.model_revision = sampler.model_id, sampler.model_revision
    rec.sampling = {
        "sample": cfg.sampling.params.__dict__,
        "reflect": cfg.reflection.params.__dict__,
        "few_shot": {"sample": cfg.sampling.few_shot, "reflect": cfg.reflection.few_shot},
    }
    variants = pick_variants(list(cfg.sampling.variants), load_variants(cfg.sampling.variants_file))
    questions = dict(zip(problems["problem_id"].to_list(), problems["question"].to_list()))
    task_of = dict(zip(problems["problem_id"].to_list(), problems["task"].to_list()))
    k, per = cfg.sampling.samples_per_variant, cfg.reflection.per_sample
    bar_opts = {"disable": not progress, "file": sys.stderr, "dynamic_ncols": True}
    s_bar = tqdm(total=problems.height * len(variants) * k, desc="sample+verify", unit="row", **bar_opts)
    r_bar = tqdm(total=problems.height * len(variants) * k * per, desc="reflect", unit="row", **bar_opts)
    new_counts = Counter()
    for start in range(0, problems.height, cfg.chunk_problems):
        chunk = problems.slice(start, cfg.chunk_problems)
        ids = chunk["problem_id"].implode()
        have = (
            store.scan("samples")
            .filter(pl.col("problem_id").is_in(ids))
            .select("sample_key", "finish_reason", "max_tokens")
            .collect()
        )
        with rec.stage("sample"):
            new = sample_problems(
                chunk,
                sampler,
                variants=variants,
                k=k,
                params=cfg.sampling.params,
                demos=sample_demos,
                seed=cfg.seed,
                done=existing_samples(have),
                source=getattr(sampler, "source", "generate"),
            )
            new_counts["samples"] += store.write("samples", new)
        current = latest_samples(
            store.scan("samples")
            .filter(pl.col("problem_id").is_in(ids))
            .select(
                "sample_id",
                "sample_key",
                "max_tokens",
                "problem_id",
                "response",
                "is_correct",
                "finish_reason",
            )
            .collect()
        )
        s_bar.update(current.height)
        if not cfg.rearrange.include_truncated:
            current = current.filter(pl.col("finish_reason") != "length")
        done = set(
            store.scan("reflections")
            .filter(pl.col("problem_id").is_in(ids))
            .select("reflection_id")
            .collect()["reflection_id"]
            .to_list()
        )
        with rec.stage("reflect"):
            for piece in current.iter_slices(cfg.reflection.call_size):  # each call's rows land atomically
                new_r = reflect_samples(
                    piece,
                    questions,
                    sampler,
                    per_sample=per,
                    params=cfg.reflection.params,
                    demos=reflect_demos,
                    tasks=task_of,
                    seed=cfg.seed,
                    done=done,
                )
                new_counts["reflections"] += store.write("reflections", new_r)
                r_bar.update(piece.height * per)
    s_bar.close()
    r_bar.close()
    with rec.stage("rearrange"):
        stats = rearrange_store(store, cfg.rearrange)
    summary = summarize(store, problems, stats, new_counts)
    rec.drops = stats
    rec.counts = store.counts()
    rec.finish(store)
    echo(format_summary(summary, rec.timings))
    return summary


def summarize(store: Store, problems: pl.DataFrame, stats: Counter, new_counts: Counter) -> dict[str, Any]:
    ids = problems["problem_id"].implode()
    samples = latest_samples(
        store.scan("samples")
        .filter(pl.col("problem_id").is_in(ids))
        .select(
            "sample_id",
            "sample_key",
            "max_tokens",
            "problem_id",
            "prompt_variant",
            "is_correct",
            "finish_reason",
            "reason",
        )
        .collect()
    )
    samples = samples.join(problems.select("problem_id", "task"), on="problem_id")
    refl = (
        store.scan("reflections")
        .filter(pl.col("problem_id").is_in(ids))
        .select("sample_id", "verdict", "verdict_reason")
        .collect()
        .join(samples.select("sample_id", "is_correct"), on="sample_id")
    )
    accuracy = (
        samples.group_by("task", "prompt_variant")
        .agg(n=pl.len(), correct=pl.col("is_correct").sum())
        .sort("task", "prompt_variant")
    )
    traces = (
        store.scan("traces")
        .filter(pl.col("problem_id").is_in(ids))
        .group_by("format")
        .len()
        .collect()
        .sort("format")
    )
    return {
        "store": str(store.root),
        "problems": problems.height,
        "samples": samples.height,
        "new_samples": new_counts["samples"],
        "new_reflections": new_counts["reflections"],
        "truncated": int((samples["finish_reason"] == "length").sum()),
        "accuracy": accuracy.to_dicts(),
        "sample_reasons": dict(samples.group_by("reason").len().sort("reason").iter_rows()),
        "reflections": refl.height,
        "verdict_reasons": dict(refl.group_by("verdict_reason").len().sort("verdict_reason").iter_rows()),
        "verdict_agreement": float((refl["verdict"] == refl["is_correct"]).fill_null(False).mean() or 0.0),
        "kept_reflections": int((refl["verdict"] == refl["is_correct"]).fill_null(False).sum()),
        "traces": dict(traces.iter_rows()),
        "drops": {k: v for k, v in sorted(stats.items()) if not k.startswith("built/")},
    }


def format_summary(s: dict[str, Any], timings: dict[str, float]) -> str:
    lines = [
        f"store: {s['store']}",
        f"problems {s['problems']}   samples {s['samples']} ({s['new_samples']} new, {s['truncated']} truncated)   "
        f"reflections {s['reflections']} ({s['new_reflections']} new)",
    ]
    lines.append("accuracy per task and variant:")
    for row in s["accuracy"]:
        lines.append(
            f"  {row['task']:<18}{row['prompt_variant']:<14}{row['correct']:>5}/{row['n']:<5}"
            f" {row['correct'] / max(row['n'], 1):6.1%}"
        )
    lines.append("sample verdicts by reason: " + json.dumps(s["sample_reasons"]))
    lines.append("reflection verdicts by reason: " + json.dumps(s["verdict_reasons"]))
    lines.append(
        f"verdict agreement with the verifier: {s['verdict_agreement']:.1%} "
        f"({s['kept_reflections']} kept reflections)"
    )
    lines.append("filter drops: " + json.dumps(s["drops"]))
    lines.append("traces per format: " + (json.dumps(s["traces"]) if s["traces"] else "none"))
    lines.append("timings (s): " + json.dumps(timings))
    lines.append(f"export: tracekit export --store {s['store']} --to trl-sft --out {s['store']}-sft")
    return "\n".join(lines)
