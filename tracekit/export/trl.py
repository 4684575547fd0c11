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

from tracekit.export.source import Written, orphans, problem_splits, read_table, require_rows, write_splits
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
    """The traces an SFT-style export writes (only ``formats`` when given); an error when there are none."""
    traces = read_table(store, "traces")
    if formats:
        traces = traces.filter(pl.col("format").is_in(formats))
    what = "traces" + (f" of formats {formats}" if formats else "")
    require_rows(store, "traces", traces, what, NO_TRACES_HINT)
    return traces


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


def grpo_view(store: Store) -> pl.LazyFrame:
    """One row per problem: ``GRPO_COLUMNS`` (prompt, verifier fields, base-model sample counts)."""
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
    )


def export_trl_grpo(
    store: Store, out: str | Path, *, formats: list[str] | None = None, split: str | None = None
) -> Written:
    """Write ``OUT/<split>.parquet`` for TRL GRPO: ``GRPO_COLUMNS``, one row per problem.

    ``split`` keeps one split only; ``formats`` is accepted for a uniform exporter signature
    and ignored (GRPO trains on problems, not traces).
    """
    out = Path(out)
    rows = grpo_view(store)
    if split:
        rows = rows.join(
            problem_splits(store).filter(pl.col("split") == split).select("problem_id").lazy(),
            on="problem_id",
            how="semi",
            maintain_order="left",
        )
    require_rows(
        store,
        "problems",
        rows,
        "problems" + (f" of split {split!r}" if split else ""),
        "add problems with `tracekit run CONFIG` or `tracekit import-skillfactory`.",
    )
    files, counts = write_splits(rows, problem_splits(store), out)
    return Written("trl-grpo", out, files, counts, {"split": split})
