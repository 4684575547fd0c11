"""The reflection filter on its own: every drop reason, one row of the table per case."""

from collections import Counter

import polars as pl
import pytest

from tracekit.filter import filter_pool


def samples(*rows):
    """Rows ``(sample_id, problem_id, is_correct, finish_reason)``."""
    return pl.DataFrame(
        rows,
        schema={
            "sample_id": pl.Utf8,
            "problem_id": pl.Utf8,
            "is_correct": pl.Boolean,
            "finish_reason": pl.Utf8,
        },
        orient="row",
    ).with_columns(prompt_variant=pl.lit("plain"), sample_index=pl.int_range(pl.len()).cast(pl.Int64))


def reflections(*rows):
    """Rows ``(reflection_id, sample_id, verdict, verdict_reason)``."""
    return pl.DataFrame(
        rows,
        schema={
            "reflection_id": pl.Utf8,
            "sample_id": pl.Utf8,
            "verdict": pl.Boolean,
            "verdict_reason": pl.Utf8,
        },
        orient="row",
    )


RIGHT = ("s-1", "p-1", True, "stop")
WRONG = ("s-2", "p-1", False, "stop")

# case: (samples, reflections, min_samples, include_truncated) -> the counters that are not zero, and the pool
CASES = {
    "kept: verdict equals the truth": (
        samples(RIGHT),
        reflections(("r-1", "s-1", True, "ok")),
        1,
        False,
        {"reflections/kept": 1, "samples/survived": 1, "problems/usable": 1},
        ["s-1"],
    ),
    "kept: a wrong sample called incorrect": (
        samples(RIGHT, WRONG),
        reflections(("r-1", "s-1", True, "ok"), ("r-2", "s-2", False, "ok")),
        2,
        False,
        {"reflections/kept": 2, "samples/survived": 2, "problems/usable": 1},
        ["s-1", "s-2"],
    ),
    "reflection: verdict_mismatch": (
        samples(RIGHT),
        reflections(("r-1", "s-1", False, "ok")),
        1,
        False,
        {"reflections/verdict_mismatch": 1, "samples/no_kept_reflection": 1, "problems/too_few_samples": 1},
        [],
    ),
    "reflection: verdict_missing": (
        samples(RIGHT),
        reflections(("r-1", "s-1", None, "missing")),
        1,
        False,
        {"reflections/verdict_missing": 1, "samples/no_kept_reflection": 1, "problems/too_few_samples": 1},
        [],
    ),
    "reflection: verdict_unrecognized": (
        samples(RIGHT),
        reflections(("r-1", "s-1", None, "unrecognized")),
        1,
        False,
        {
            "reflections/verdict_unrecognized": 1,
            "samples/no_kept_reflection": 1,
            "problems/too_few_samples": 1,
        },
        [],
    ),
    "reflection: verdict_contradictory": (
        samples(RIGHT),
        reflections(("r-1", "s-1", None, "contradictory")),
        1,
        False,
        {
            "reflections/verdict_contradictory": 1,
            "samples/no_kept_reflection": 1,
            "problems/too_few_samples": 1,
        },
        [],
    ),
    "reflection: orphan (its sample is not in the view)": (
        samples(RIGHT),
        reflections(("r-1", "s-1", True, "ok"), ("r-9", "s-9", True, "ok")),
        1,
        False,
        {"reflections/kept": 1, "reflections/orphan": 1, "samples/survived": 1, "problems/usable": 1},
        ["s-1"],
    ),
    "sample: truncated, even with a kept reflection": (
        samples(("s-1", "p-1", True, "length")),
        reflections(("r-1", "s-1", True, "ok")),
        1,
        False,
        {"reflections/kept": 1, "samples/truncated": 1, "problems/too_few_samples": 1},
        [],
    ),
    "sample: truncated but allowed": (
        samples(("s-1", "p-1", True, "length")),
        reflections(("r-1", "s-1", True, "ok")),
        1,
        True,
        {"reflections/kept": 1, "samples/survived": 1, "problems/usable": 1},
        ["s-1"],
    ),
    "sample: no_kept_reflection (none at all)": (
        samples(RIGHT, WRONG),
        reflections(("r-1", "s-1", True, "ok")),
        1,
        False,
        {"reflections/kept": 1, "samples/survived": 1, "samples/no_kept_reflection": 1, "problems/usable": 1},
        ["s-1"],
    ),
    "problem: too_few_samples": (
        samples(RIGHT, WRONG),
        reflections(("r-1", "s-1", True, "ok"), ("r-2", "s-2", False, "ok")),
        3,
        False,
        {"reflections/kept": 2, "samples/survived": 2, "problems/too_few_samples": 1},
        [],
    ),
    "problem: no_correct_sample": (
        samples(WRONG),
        reflections(("r-2", "s-2", False, "ok")),
        1,
        False,
        {"reflections/kept": 1, "samples/survived": 1, "problems/no_correct_sample": 1},
        [],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_drop_reasons(case):
    sample_rows, refl_rows, min_samples, include_truncated, expected, pool_ids = CASES[case]
    pool, kept, drops = filter_pool(
        sample_rows, refl_rows, min_samples=min_samples, include_truncated=include_truncated
    )
    totals = {
        "reflections/total": refl_rows.height,
        "samples/total": sample_rows.height,
        "problems/total": sample_rows["problem_id"].n_unique(),
    }
    assert {k: v for k, v in drops.items() if v} == {**expected, **totals}
    assert pool["sample_id"].to_list() == pool_ids
    assert set(kept["sample_id"]) <= set(pool_ids)


def test_every_row_is_counted_once():
    for sample_rows, refl_rows, min_samples, include_truncated, _, _ in CASES.values():
        _, _, drops = filter_pool(
            sample_rows, refl_rows, min_samples=min_samples, include_truncated=include_truncated
        )
        for table in ("reflections", "samples", "problems"):
            parts = sum(v for k, v in drops.items() if k.startswith(f"{table}/") and not k.endswith("/total"))
            assert parts == drops[f"{table}/total"], table


def test_pool_order_and_kept_rows():
    s = samples(("s-b", "p-2", True, "stop"), ("s-a", "p-1", True, "stop"), ("s-c", "p-1", False, "stop"))
    r = reflections(
        ("r-2", "s-a", True, "ok"),
        ("r-1", "s-a", True, "ok"),
        ("r-3", "s-c", False, "ok"),
        ("r-4", "s-b", True, "ok"),
    )
    pool, kept, _ = filter_pool(s, r, min_samples=1, drops=Counter())
    assert pool["sample_id"].to_list() == ["s-a", "s-c", "s-b"]  # by problem, variant, index
    assert pool["n_kept"].to_list() == [2, 1, 1]
    assert kept.select("pool_row", "reflection_id").rows() == [(0, "r-1"), (0, "r-2"), (1, "r-3"), (2, "r-4")]
