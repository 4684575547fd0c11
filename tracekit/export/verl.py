"""verl's layouts (0.9.x): RL parquet rows for PPO/GRPO and SFT parquet with a ``messages`` column.

RL rows (``OUT/rl/<split>.parquet``), one per problem::

    {"data_source": task, "prompt": [{"role": "user", "content": question}], "ability": ...,
     "reward_model": {"style": "rule", "ground_truth": meta_json},
     "extra_info": {"split": ..., "index": row, "problem_id": ...}}

``ground_truth`` is the problem's ``meta`` (the verifier's fields as JSON: Countdown's numbers
and target, a product's factors, ...), because an answer string alone cannot check a Countdown
expression. ``tracekit.trainers.verl_reward.compute_score`` reads it with the same extraction
and verifiers as every other stage. SFT rows (``OUT/sft/<split>.parquet``) hold ``messages``
(``[user, assistant]``) plus the trace metadata.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracekit.errors import warn
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
from tracekit.export.trl import SFT_METADATA, message
from tracekit.store import Store

# verl's ``ability`` is a free-text label of the skill a problem trains; tasks not listed get "reasoning".
ABILITY = {
    "countdown": "math",
    "multiplication": "math",
    "gsm8k": "math",
    "math": "math",
    "letter_countdown": "wordplay",
    "acronym": "wordplay",
    "commonsenseqa": "commonsense",
}


def verl_rl_view(problems: pl.LazyFrame, split: str, sources: dict[str, str] | None = None) -> pl.LazyFrame:
    """verl RL rows from ``problems`` rows of one split (``index`` is the row within the split's file).

    With ``sources`` (tasks from outside the package: name -> how to load it), ``extra_info``
    also holds ``task_source`` (null for a built-in task), which ``compute_score`` loads.

    Examples
    --------
    >>> import polars as pl
    >>> p = pl.DataFrame({"problem_id": ["p-1"], "task": ["countdown"], "question": ["Make 9 from 1 2 3"],
    ...                   "meta": ['{"numbers": [1, 2, 3], "target": 9}']})
    >>> row = verl_rl_view(p.lazy(), "train").collect().row(0, named=True)
    >>> row["data_source"], row["reward_model"]["style"], row["extra_info"]["index"]
    ('countdown', 'rule', 0)
    """
    ability = pl.col("task").replace_strict(ABILITY, default="reasoning", return_dtype=pl.Utf8)
    return problems.with_row_index("_row").select(
        pl.col("task").alias("data_source"),
        message("user", "question").alias("prompt"),
        ability.alias("ability"),
        pl.struct(style=pl.lit("rule"), ground_truth=pl.col("meta")).alias("reward_model"),
        pl.struct(
            split=pl.lit(split),
            index=pl.col("_row").cast(pl.Int64),
            problem_id=pl.col("problem_id"),
            **(
                {"task_source": pl.col("task").replace_strict(sources, default=None, return_dtype=pl.Utf8)}
                if sources
                else {}
            ),
        ).alias("extra_info"),
    )


def messages_view(traces: pl.LazyFrame) -> pl.LazyFrame:
    """``messages = [user question, assistant trace]`` plus the trace metadata."""
    return traces.select(
        pl.concat_list(
            pl.struct(role=pl.lit("user"), content=pl.col("prompt")),
            pl.struct(role=pl.lit("assistant"), content=pl.col("completion")),
        ).alias("messages"),
        *SFT_METADATA,
    )


def export_verl(store: Store, out: str | Path, *, formats: list[str] | None = None) -> Written:
    """Write ``OUT/rl/<split>.parquet`` (problems) and ``OUT/sft/<split>.parquet`` (traces, when any).

    Problems its reward cannot score (a task without a verifier, such as imported data's
    ``skillfactory`` label) leave ``rl/`` out with a warning; with no traces either, an error.
    """
    out = Path(out)
    splits = problem_splits(store)
    problems = read_table(store, "problems")
    require_rows(store, "problems", problems, "problems", "add problems with `tracekit run CONFIG`.")
    files: dict[str, Path] = {}
    counts: dict[str, int] = {}
    traces = select_formats(store, read_table(store, "traces"), formats)
    has_traces = traces.select(pl.len()).collect().item() > 0
    reason = unverifiable(problems)
    if reason and not has_traces:
        from tracekit.errors import InputFormatError

        msg = f"nothing to export from {store.root} for verl: no traces, and no RL rows ({reason})."
        raise InputFormatError(msg + f"\nHint: {UNVERIFIABLE_HINT}")
    if reason:
        warn(f"verl: rl/ left out: {reason}. Hint: {UNVERIFIABLE_HINT}")
    else:
        sources = problem_task_sources(problems)
        rl_files, rl_counts = write_splits(
            problems, splits, out / "rl", view=lambda rows, split: verl_rl_view(rows, split, sources)
        )
        files.update({f"rl/{k}": v for k, v in rl_files.items()})
        counts.update({f"rl/{k}": v for k, v in rl_counts.items()})
    if has_traces:
        sft_files, sft_counts = write_splits(
            traces, splits, out / "sft", view=lambda rows, _: messages_view(rows)
        )
        files.update({f"sft/{k}": v for k, v in sft_files.items()})
        counts.update({f"sft/{k}": v for k, v in sft_counts.items()})
        counts["sft/skipped_no_problem"] = orphans(traces, splits)
    extra = {"task_sources": sources} if not reason and sources else {}
    return Written("verl", out, files, counts, {"formats": formats, **extra})
