"""Human-readable run reports: where every row went, stage by stage.

The run summary covers the rows the run's own configuration defines (its view), never
the whole store; everything about reflections, surviving samples and usable problems is
read from the filter's own counters (:mod:`tracekit.filter`), so the report and the
traces can never disagree.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import polars as pl

from tracekit import counters
from tracekit.filter import ORPHAN, TRUNCATED, UNREAD
from tracekit.schemas.tables import VERDICT_REASONS


def summarize(
    *,
    store: str,
    problems: pl.DataFrame,
    samples: pl.DataFrame,
    stats: Counter,
    written: Mapping[str, int],
    dry_run: bool = False,
) -> dict[str, Any]:
    """The summary of a run: ``samples`` are its current samples (``problem_id``,
    ``prompt_variant``, ``is_correct``, ``reason``, ``finish_reason``), ``stats`` the counters
    of its filter and rearrangement, ``written`` the new rows per table."""
    samples = samples.join(problems.select("problem_id", "task"), on="problem_id", how="left")
    accuracy = (
        samples.group_by("task", "prompt_variant")
        .agg(n=pl.len(), correct=pl.col("is_correct").sum())
        .sort("task", "prompt_variant")
    )
    total = stats[counters.seen("reflections")]
    unread = {r: stats[counters.drop("reflections", UNREAD + r)] for r in VERDICT_REASONS if r != "ok"}
    unread = {r: n for r, n in unread.items() if n}
    verdicts = {"ok": total - stats[counters.drop("reflections", ORPHAN)] - sum(unread.values()), **unread}
    return {
        "store": store,
        "dry_run": dry_run,
        "problems": problems.height,
        "samples": samples.height,
        "new_samples": written.get("samples", 0),
        "new_reflections": written.get("reflections", 0),
        "new_traces": written.get("traces", 0),
        "truncated": int(samples.select(TRUNCATED).to_series().sum()),
        "accuracy": accuracy.to_dicts(),
        "sample_reasons": dict(samples.group_by("reason").len().sort("reason").iter_rows()),
        "reflections": total,
        "verdict_reasons": {k: v for k, v in sorted(verdicts.items()) if v},
        "verdict_agreement": stats[counters.passed("reflections", "kept")] / total if total else 0.0,
        "kept_reflections": stats[counters.passed("reflections", "kept")],
        "traces": counters.built_counts(stats),
        "drops": counters.drops(stats),
    }


def format_summary(s: dict[str, Any], timings: dict[str, float]) -> str:
    lines = [f"store: {s['store']}" + ("   (DRY RUN: scripted data, not a model's)" if s["dry_run"] else "")]
    lines.append(
        f"problems {s['problems']}   samples {s['samples']} ({s['new_samples']} new, {s['truncated']} truncated)   "
        f"reflections {s['reflections']} ({s['new_reflections']} new)"
    )
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
    lines.append(
        "traces per format: "
        + (json.dumps(s["traces"]) if s["traces"] else "none")
        + f" ({s['new_traces']} new)"
    )
    lines.append("timings (s): " + json.dumps(timings))
    if s["traces"]:
        lines.append(f"export: tracekit export --store {s['store']} --to trl-sft --out {s['store']}-sft")
    else:
        lines.append(
            "no traces were built: see the filter drops above. Hint: more samples per variant or reflections "
            "per sample, a lower rearrange.min_samples or n_max, an easier task, or few_shot demonstrations."
        )
    return "\n".join(lines)


def format_counters(stats: Counter) -> str:
    """Group ``"<what>/<reason>"`` counters into an aligned text block (zero counters left out).

    Examples
    --------
    >>> print(format_counters(Counter({"samples/truncated": 3, "built/0C": 10, "samples/none": 0})))
    built
      0C                           10
    samples
      truncated                     3
    """
    groups: dict[str, list[tuple[str, int]]] = {}
    for key, value in sorted(stats.items()):
        if not value:
            continue
        group, _, reason = key.partition("/")
        groups.setdefault(group, []).append((reason or group, value))
    lines = []
    for group, items in groups.items():
        lines.append(group)
        for reason, value in items:
            lines.append(f"  {reason:<26}{value:>6}")
    return "\n".join(lines)
