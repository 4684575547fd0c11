"""The figures a dataset card reports, computed from a store.

Base-model accuracy by task, difficulty and prompt variant (current samples only: a
regenerated sample supersedes its truncated row), verdict agreement, kept reflections and
filter drops by reason, the mix of trace formats, trace lengths against ``max_length``,
the recipe (the ``runs`` rows that built the store) and one example trace.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from tracekit import counters
from tracekit.export.lengths import trace_lengths
from tracekit.export.manifest import source_runs
from tracekit.export.source import read_table
from tracekit.store import Store
from tracekit.store.manifest import tracekit_version
from tracekit.store.views import view_counts

MAX_EXAMPLE_CHARS = 6_000
HISTOGRAM_BINS = 20


def accuracy_table(store: Store) -> pl.DataFrame:
    """``task, difficulty, prompt_variant, samples, correct, accuracy`` of the base model's samples."""
    samples = read_table(store, "samples").select("problem_id", "prompt_variant", "is_correct").collect()
    problems = read_table(store, "problems").select("problem_id", "task", "difficulty").collect()
    return (
        samples.join(problems, on="problem_id", how="left")
        .group_by("task", "difficulty", "prompt_variant")
        .agg(samples=pl.len(), correct=pl.col("is_correct").sum())
        .with_columns(accuracy=(pl.col("correct") / pl.col("samples")).round(4))
        .sort("task", "difficulty", "prompt_variant")
    )


def verdict_stats(store: Store) -> dict[str, Any]:
    """Reflections, how many agree with the verifier (kept), and counts by verdict reason."""
    from tracekit.filter import reflection_drop  # the one definition of a kept reflection

    truth = read_table(store, "samples").select("sample_id", "is_correct")
    refl = (
        read_table(store, "reflections")
        .select("sample_id", "verdict", "verdict_reason")
        .join(truth, on="sample_id", how="left")
        .with_columns(reflection_drop())
        .collect()
    )
    kept = int(refl["drop"].is_null().sum()) if refl.height else 0
    return {
        "reflections": refl.height,
        "kept": kept,
        "agreement": round(kept / refl.height, 4) if refl.height else None,
        "by_reason": dict(refl.group_by("verdict_reason").len().sort("verdict_reason").iter_rows()),
    }


def recipe(store: Store) -> dict[str, Any]:
    """How the store was built: every ``runs`` row's command and config, the model, sampling and seeds."""

    runs = read_table(store, "runs").collect().sort("started_at", maintain_order=True)
    named = [r["run_id"] for r in source_runs(store)]  # the runs whose rows make up the current view
    builds = runs.filter(pl.col("run_id").is_in(named))
    sampling = builds.filter(pl.col("model").is_not_null())
    last = sampling.row(-1, named=True) if sampling.height else {}
    drops_row = builds.filter(pl.col("drops_json") != "{}")
    drops = json.loads(drops_row["drops_json"][-1]) if drops_row.height else {}
    return {
        "tracekit_version": tracekit_version(),
        "model": last.get("model"),
        "model_revision": last.get("model_revision"),
        "sampling": json.loads(last["sampling_json"]) if last else {},
        "seeds": sorted({s for s in builds["seed"].to_list() if s is not None}),
        "commands": [
            {
                "command": r["command"],
                "config": json.loads(r["config_json"]),
                "started_at": r["started_at"],
                "tracekit_version": r["tracekit_version"],
            }
            for r in builds.iter_rows(named=True)
        ],
        "drops": counters.drops(drops),
    }


def length_stats(store: Store, *, max_length: int, tokenizer: Any = None) -> dict[str, Any]:
    """Trace lengths: histogram counts and edges, how they were counted, and how many exceed ``max_length``."""
    traces = read_table(store, "traces").select("prompt", "completion").collect()
    lengths, how = trace_lengths(traces["prompt"].to_list(), traces["completion"].to_list(), tokenizer)
    if lengths.size == 0:
        return {"how": how, "n": 0, "max_length": max_length, "over": 0, "lengths": []}
    longest = int(lengths.max())
    # keep max_length on the chart unless it is far beyond every trace (the bins would be empty)
    top = (max(longest, max_length) if max_length <= 2 * longest else longest) + 1
    counts, edges = np.histogram(lengths, bins=HISTOGRAM_BINS, range=(0, top))
    return {
        "how": how,
        "n": int(lengths.size),
        "max_length": max_length,
        "over": int((lengths > max_length).sum()),
        "median": float(np.median(lengths)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "counts": counts.tolist(),
        "edges": [round(float(e), 1) for e in edges],
        "lengths": lengths.tolist(),
    }


def example_trace(store: Store) -> dict[str, Any] | None:
    """One trace to show: the first (by id) among those with the most samples, text cut at ``MAX_EXAMPLE_CHARS``."""
    traces = read_table(store, "traces").select("trace_id", "format", "n_samples", "prompt", "completion")
    row = traces.sort(["n_samples", "trace_id"], descending=[True, False]).head(1).collect()
    if row.height == 0:
        return None
    out = row.row(0, named=True)
    if len(out["completion"]) > MAX_EXAMPLE_CHARS:
        out["completion"] = out["completion"][:MAX_EXAMPLE_CHARS] + "\n[... cut for the card ...]"
    return out


def card_stats(store: Store, *, max_length: int = 8192, tokenizer: Any = None) -> dict[str, Any]:
    """Every figure of the dataset card."""
    formats = read_table(store, "traces").group_by("format").len().collect().sort("format")
    return {
        "counts": {t: n for t, n in view_counts(store).items() if t not in ("runs", "views")},
        "accuracy": accuracy_table(store).to_dicts(),
        "verdicts": verdict_stats(store),
        "formats": dict(formats.iter_rows()),
        "lengths": length_stats(store, max_length=max_length, tokenizer=tokenizer),
        "recipe": recipe(store),
        "example": example_trace(store),
    }
