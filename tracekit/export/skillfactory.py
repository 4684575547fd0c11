"""The SkillFactory reference script's output layout: ``conversations`` and ``sft_template_type_idx``.

People who trained on the reference script's datasets can swap tracekit in without touching
their training config: each row holds ``conversations = [user question, assistant trace]``
and the reference's name of the trace's template (``0C``, ``<N>C`` for ``*C`` and ``*C_full``,
``*C*IC``, ``*CC``, ``random``, ``no_reflection``; tracekit's own ``alg1`` keeps its name).
One file per split, ``OUT/<split>.parquet``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracekit.export.source import Written, orphans, problem_splits, write_splits
from tracekit.export.trl import traces_for_export
from tracekit.store import Store


def template_name(fmt: pl.Expr, n_samples: pl.Expr) -> pl.Expr:
    """The reference's ``sft_template_type_idx`` of a trace (``*C`` with 3 samples is ``3C``).

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"format": ["*C_full", "*C", "*CC", "0C"], "n_samples": [2, 5, 3, 1]})
    >>> df.select(t=template_name(pl.col("format"), pl.col("n_samples")))["t"].to_list()
    ['2C', '5C', '*CC', '0C']
    """
    return pl.when(fmt.is_in(["*C", "*C_full"])).then(n_samples.cast(pl.Utf8) + pl.lit("C")).otherwise(fmt)


def reference_view(traces: pl.LazyFrame) -> pl.LazyFrame:
    return traces.select(
        pl.concat_list(
            pl.struct(role=pl.lit("user"), content=pl.col("prompt")),
            pl.struct(role=pl.lit("assistant"), content=pl.col("completion")),
        ).alias("conversations"),
        template_name(pl.col("format"), pl.col("n_samples")).alias("sft_template_type_idx"),
    )


def export_skillfactory(store: Store, out: str | Path, *, formats: list[str] | None = None) -> Written:
    """Write ``OUT/<split>.parquet`` in the reference script's output layout."""
    out = Path(out)
    traces = traces_for_export(store, formats)
    splits = problem_splits(store)
    files, counts = write_splits(traces, splits, out, view=lambda rows, _: reference_view(rows))
    counts["skipped_no_problem"] = orphans(traces, splits)
    return Written("skillfactory", out, files, counts, {"formats": formats})
