"""TRL's views of a store: SFT prompt-completion rows and GRPO prompts with their verifier fields.

TRL's ``SFTTrainer`` takes ``prompt = [{"role": "user", "content": ...}]`` and
``completion = [{"role": "assistant", "content": ...}]`` (every message exactly
``role`` and ``content``) and trains on the completion only. Traces are long: set
``SFTConfig(max_length=...)`` far above TRL's default of 1024 tokens.

GRPO rows are problems: a conversational ``prompt``, the ``task`` and ``meta`` (the
verifier's fields, JSON) that :mod:`tracekit.trainers.rewards` reads, the ``answer``, and
``base_samples`` / ``base_correct`` (the base model's samples of the problem and how many
were right), which tell which problems give GRPO no signal.

Both write one file per split present (``train.parquet``, ``validation.parquet``,
``test.parquet``), by the problems' own split.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracekit.export.source import (
    UNVERIFIABLE_HINT,
    Written,
    orphans,
    problem_splits,
    problem_task_sources,
    read_table,
    require_rows,
    select_formats,
    unverifiable,
    write_splits,
)
from tracekit.store import Store

SFT_METADATA = ["trace_id", "problem_id", "format", "n_samples", "final_correct"]
GRPO_COLUMNS = ["prompt", "task", "meta", "answer", "problem_id", "base_samples", "base_correct"]
NO_TRACES_HINT = "build traces first: `tracekit rearrange --store ST` (or `tracekit run CONFIG`)."


def message(role: str, column: str) -> pl.Expr:
    """A one-message chat list ``[{"role": role, "content": column}]``."""
    return pl.concat_list(pl.struct(role=pl.lit(role), content=pl.col(column)))


def sft_view(traces: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """TRL conversational prompt-completion rows (plus trace metadata) from traces.

    Examples
    --------
    >>> import polars as pl
    >>> t = pl.DataFrame({"trace_id": ["t-1"], "problem_id": ["p-1"], "format": ["0C"], "n_samples": [1],
    ...                   "final_correct": [True], "prompt": ["2+2?"], "completion": ["<answer>4</answer>"]})
    >>> sft_view(t).collect()["prompt"].to_list()
    [[{'role': 'user', 'content': '2+2?'}]]
    """
    return traces.lazy().select(
        message("user", "prompt").alias("prompt"),
        message("assistant", "completion").alias("completion"),
        *SFT_METADATA,
    )


def traces_for_export(store: Store, formats: list[str] | None = None) -> pl.LazyFrame:
    """The traces an SFT-style export writes (only ``formats`` when given, see
    :func:`~tracekit.export.source.select_formats`); an error when there are none."""
    traces = read_table(store, "traces")
    require_rows(store, "traces", traces, "traces", NO_TRACES_HINT)
    return select_formats(store, traces, formats)


def export_trl_sft(store: Store, out: str | Path, *, formats: list[str] | None = None) -> Written:
    """Write ``OUT/<split>.parquet`` in TRL's conversational prompt-completion layout.

    Streams from the store's part files (flat memory for big tables); files appear atomically.
    """
    out = Path(out)
    traces = traces_for_export(store, formats)
    splits = problem_splits(store)
    files, counts = write_splits(traces, splits, out, view=lambda rows, _: sft_view(rows))
    counts["skipped_no_problem"] = orphans(traces, splits)
    return Written("trl-sft", out, files, counts, {"formats": formats})


def grpo_view(store: Store, sources: dict[str, str] | None = None) -> pl.LazyFrame:
    """One row per problem: ``GRPO_COLUMNS`` (prompt, verifier fields, base-model sample counts),
    plus ``task_source`` (how to load the task, null for a built-in one) when ``sources`` names
    tasks from outside the package."""
    samples = read_table(store, "samples").select("problem_id", "is_correct").collect()
    base = samples.group_by("problem_id").agg(
        base_samples=pl.len().cast(pl.Int64), base_correct=pl.col("is_correct").sum().cast(pl.Int64)
    )
    problems = read_table(store, "problems").join(
        base.lazy(), on="problem_id", how="left", maintain_order="left"
    )
    return problems.select(
        message("user", "question").alias("prompt"),
        "task",
        "meta",
        "answer",
        "problem_id",
        pl.col("base_samples").fill_null(0),
        pl.col("base_correct").fill_null(0),
        *(
            [pl.col("task").replace_strict(sources, default=None, return_dtype=pl.Utf8).alias("task_source")]
            if sources
            else []
        ),
    )


def export_trl_grpo(store: Store, out: str | Path, *, split: str | None = None) -> Written:
    """Write ``OUT/<split>.parquet`` for TRL GRPO: ``GRPO_COLUMNS``, one row per problem.

    ``split`` keeps one split only. GRPO trains on problems, not traces, so it takes no
    ``formats``. Every problem must be scorable by its task's verifier (the reward): problems
    of a task without one, or without the fields it reads, are an error.
    """
    from tracekit.errors import InputFormatError
    from tracekit.tasks.base import SPLIT_FRACTIONS

    if split is not None and split not in SPLIT_FRACTIONS:
        msg = f"export --split must be one of {list(SPLIT_FRACTIONS)}, got {split!r}."
        raise InputFormatError(msg + "\nHint: leave --split out to export every split.")
    out = Path(out)
    reason = unverifiable(read_table(store, "problems"))
    if reason:
        msg = f"cannot export {store.root} for GRPO: {reason}, so its reward would fail.\nHint: {UNVERIFIABLE_HINT}"
        raise InputFormatError(msg)
    sources = problem_task_sources(read_table(store, "problems"))
    rows = grpo_view(store, sources)
    splits = problem_splits(store)
    if split:
        rows = rows.filter(splits.of(split))
    require_rows(
        store,
        "problems",
        rows,
        "problems" + (f" of split {split!r}" if split else ""),
        "add problems with `tracekit run CONFIG` or `tracekit import-skillfactory`.",
    )
    files, counts = write_splits(rows, splits, out)
    return Written(
        "trl-grpo", out, files, counts, {"split": split, **({"task_sources": sources} if sources else {})}
    )
