"""Stage: the reflection filter. Keep the self-verifications that agree with the verifier.

The rules, each defined here once:

* a reflection is **kept** when its verdict was read (``verdict_reason == "ok"``) and
  equals its sample's ``is_correct`` (:func:`reflection_drop`);
* a sample is **truncated** when the token limit cut it (:data:`TRUNCATED`); truncated
  samples are not reflected on and stay out of traces unless ``include_truncated``;
* a sample **survives** with at least one kept reflection and, by default, a response
  that was not truncated;
* a problem is **usable** with at least ``min_samples`` surviving samples and at least
  one correct one.

Every row is counted (the keys: :mod:`tracekit.counters`): ``"<table>/total"``, what passed
(``reflections/kept``, ``samples/survived``, ``problems/usable``) and every drop by reason
(``reflections/verdict_mismatch``, ``samples/truncated``, ...). The run report reads
these counters. The functions take and return polars frames.
"""

from __future__ import annotations

from collections import Counter

import polars as pl

from tracekit import counters

TRUNCATED = pl.col("finish_reason") == "length"
# the columns the filter reads (others are carried through)
SAMPLE_COLUMNS = ("sample_id", "problem_id", "is_correct", "finish_reason")
REFLECTION_COLUMNS = ("reflection_id", "sample_id", "verdict", "verdict_reason")
# why a reflection is dropped: its sample is not in the pool; its verdict was not read (``verdict_<reason>``)
ORPHAN = "orphan"
UNREAD = "verdict_"
MISMATCH = "verdict_mismatch"


def reflection_drop() -> pl.Expr:
    """Why a reflection is dropped (null: kept), over reflections joined with their sample's ``is_correct``.

    Examples
    --------
    >>> frame = pl.DataFrame({"verdict": [True, False, None, True], "is_correct": [True, True, False, None],
    ...                       "verdict_reason": ["ok", "ok", "missing", "ok"]})
    >>> frame.select(reflection_drop())["drop"].to_list()
    [None, 'verdict_mismatch', 'verdict_missing', 'orphan']
    """
    return (
        pl.when(pl.col("is_correct").is_null())
        .then(pl.lit(ORPHAN))
        .when(pl.col("verdict_reason") != "ok")
        .then(pl.lit(UNREAD) + pl.col("verdict_reason"))
        .when(pl.col("verdict") != pl.col("is_correct"))
        .then(pl.lit(MISMATCH))
        .otherwise(None)
        .alias("drop")
    )


def _count(drops: Counter, prefix: str, frame: pl.DataFrame, word: str) -> None:
    drops[counters.seen(prefix)] += frame.height
    for reason, n in frame.group_by("drop").len().iter_rows():
        drops[counters.drop(prefix, reason) if reason is not None else counters.passed(prefix, word)] += n


def filter_pool(
    samples: pl.DataFrame,
    reflections: pl.DataFrame,
    *,
    min_samples: int,
    include_truncated: bool = False,
    drops: Counter | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, Counter]:
    """Return the surviving samples of usable problems and their kept reflections.

    ``samples`` needs :data:`SAMPLE_COLUMNS` (other columns are carried; one row per sample:
    the caller passes a view, see :mod:`tracekit.store.views`); ``reflections`` needs
    :data:`REFLECTION_COLUMNS` (other columns are carried too). Returns ``(pool, kept, drops)``:

    * ``pool``: one row per surviving sample, ordered by problem, prompt variant and
      sample index, with ``n_kept`` (its number of kept reflections);
    * ``kept``: the kept reflections of the pool's samples, with ``pool_row`` (the row of
      their sample in ``pool``), ordered by ``pool_row`` then ``reflection_id``.
    """
    drops = Counter() if drops is None else drops
    truth = samples.select("sample_id", "is_correct")
    refl = reflections.join(truth, on="sample_id", how="left").with_columns(reflection_drop())
    _count(drops, "reflections", refl, "kept")
    kept = refl.filter(pl.col("drop").is_null()).drop("drop", "is_correct")
    n_kept = kept.group_by("sample_id").agg(n_kept=pl.len().cast(pl.Int64))

    pool = samples.join(n_kept, on="sample_id", how="left")
    pool = pool.with_columns(
        drop=pl.when(TRUNCATED & (not include_truncated))
        .then(pl.lit("truncated"))
        .when(pl.col("n_kept").is_null())
        .then(pl.lit("no_kept_reflection"))
        .otherwise(None)
    )
    _count(drops, "samples", pool, "survived")
    pool = pool.filter(pl.col("drop").is_null()).drop("drop")

    per_problem = (
        samples.select("problem_id")
        .unique()
        .join(
            pool.group_by("problem_id").agg(n=pl.len(), n_correct=pl.col("is_correct").sum()),
            on="problem_id",
            how="left",
        )
        .with_columns(pl.col("n", "n_correct").fill_null(0))
    )
    per_problem = per_problem.with_columns(
        drop=pl.when(pl.col("n") < min_samples)
        .then(pl.lit("too_few_samples"))
        .when(pl.col("n_correct") == 0)
        .then(pl.lit("no_correct_sample"))
        .otherwise(None)
    )
    _count(drops, "problems", per_problem, "usable")
    usable = per_problem.filter(pl.col("drop").is_null()).select("problem_id")
    order = [c for c in ("problem_id", "prompt_variant", "sample_index", "sample_id") if c in pool.columns]
    pool = pool.join(usable, on="problem_id", how="semi").sort(order)
    kept = (
        kept.join(pool.select("sample_id").with_row_index("pool_row"), on="sample_id", how="inner")
        .with_columns(pl.col("pool_row").cast(pl.Int64))
        .sort("pool_row", "reflection_id")
    )
    return pool, kept, drops
