"""TRL's conversational prompt-completion view of the traces table.

TRL's ``SFTTrainer`` takes ``prompt = [{"role": "user", "content": ...}]`` and
``completion = [{"role": "assistant", "content": ...}]`` (every message exactly
``role`` and ``content``) and trains on the completion only. Traces are long: set
``SFTConfig(max_length=...)`` far above TRL's default of 1024 tokens.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracekit.store import Store, atomic_write, sink_parquet, write_parquet
from tracekit.store.views import view

SFT_METADATA = ["trace_id", "problem_id", "format", "n_samples", "final_correct"]


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

    def message(role: str, column: str) -> pl.Expr:
        return pl.concat_list(pl.struct(role=pl.lit(role), content=pl.col(column)))

    return traces.lazy().select(
        message("user", "prompt").alias("prompt"),
        message("assistant", "completion").alias("completion"),
        *SFT_METADATA,
    )


def export_trl_sft(store: Store, out: str | Path, *, formats: list[str] | None = None) -> Path:
    """Write ``OUT/train.parquet`` in TRL's conversational prompt-completion layout.

    Runs on polars' streaming engine straight from the store's part files, so memory
    stays flat for big tables. The file appears atomically (see
    :func:`tracekit.store.atomic_write`).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    traces = view(store, "traces")  # the current view (checks every part before writing anything)
    if formats:
        traces = traces.filter(pl.col("format").is_in(formats))
    rows = sft_view(traces)
    return atomic_write(out / "train.parquet", lambda tmp: sink_parquet(rows, tmp))


def export_trl_grpo(
    store: Store, out: str | Path, *, formats: list[str] | None = None, split: str | None = None
) -> Path:
    """Write ``OUT/train.parquet`` for TRL GRPO: a conversational ``prompt`` plus ``task``,
    ``meta`` (the verifier's fields, JSON), ``answer`` and ``problem_id``, one row per problem.

    ``formats`` is accepted for a uniform exporter signature and ignored (GRPO trains on problems).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problems = view(store, "problems")
    if split:
        problems = problems.filter(pl.col("split") == split)
    frame = problems.select(
        pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("question"))).alias("prompt"),
        "task",
        "meta",
        "answer",
        "problem_id",
    ).collect()
    return atomic_write(out / "train.parquet", lambda tmp: write_parquet(frame, tmp))
