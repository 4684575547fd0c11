"""TRL's conversational prompt-completion view of the traces table.

TRL's ``SFTTrainer`` takes ``prompt = [{"role": "user", "content": ...}]`` and
``completion = [{"role": "assistant", "content": ...}]`` (every message exactly
``role`` and ``content``) and trains on the completion only. Traces are long: set
``SFTConfig(max_length=...)`` far above TRL's default of 1024 tokens.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracekit.store import Store, atomic_write, write_parquet

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

    Streams row group by row group from the store's part files, so memory stays flat
    for big tables. The file appears atomically (see :func:`tracekit.store.atomic_write`).
    """
    import pyarrow.parquet as pq

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store.scan("traces")  # checks every part before writing anything
    columns = ["prompt", "completion", *SFT_METADATA]

    def write(tmp: Path) -> None:
        writer = None
        try:
            for path in store.parts("traces"):
                pf = pq.ParquetFile(path)
                for rg in range(pf.num_row_groups):
                    frame = pl.from_arrow(pf.read_row_group(rg, columns=columns))
                    if formats:
                        frame = frame.filter(pl.col("format").is_in(formats))
                    table = sft_view(frame).collect().to_arrow()
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, compression="zstd", compression_level=3)
                    writer.write_table(table, row_group_size=8_192)
            if writer is None:  # no traces: an empty file with the right columns
                table = sft_view(store.scan("traces").head(0).collect()).collect().to_arrow()
                writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    return atomic_write(out / "train.parquet", write)


def export_trl_grpo(store: Store, out: str | Path, *, formats: list[str] | None = None, split: str | None = None) -> Path:
    """Write ``OUT/train.parquet`` for TRL GRPO: a conversational ``prompt`` plus ``task``,
    ``meta`` (the verifier's fields, JSON), ``answer`` and ``problem_id``, one row per problem.

    ``formats`` is accepted for a uniform exporter signature and ignored (GRPO trains on problems).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problems = store.scan("problems")
    if split:
        problems = problems.filter(pl.col("split") == split)
    frame = problems.select(
        pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("question"))).alias("prompt"),
        "task", "meta", "answer", "problem_id",
    ).collect()
    return atomic_write(out / "train.parquet", lambda tmp: write_parquet(frame, tmp))
