"""The vectorised trace planner: draws are uniform, independent of the batch, and plans obey each format."""

from collections import Counter

import numpy as np
import pytest

from tracekit.rearrange import RearrangeConfig
from tracekit.rearrange.draws import S_LAST, below, problem_key, uniform
from tracekit.rearrange.formats import FORMATS, Pools


def pools_of(problems):
    """problems: list of lists of (correct, variant) per row (rows sorted by variant within a problem)."""
    sizes = [len(p) for p in problems]
    correct = [c for p in problems for c, _ in p]
    variants = [v for p in problems for _, v in p]
    return Pools.from_rows(sizes, correct, variants)


def keys_for(n, fmt="*C_full", seed=0, offset=0):
    return np.array([problem_key(seed, f"p-{i + offset}", fmt, 0) for i in range(n)], dtype=np.uint64)


def traces_of(plans):
    """[(problem, [rows], final)] per trace, in plan order."""
    off = np.concatenate([[0], np.cumsum(plans.n)])
    return [
        (int(p), plans.slots[off[i] : off[i + 1]].tolist(), int(plans.final[i]))
        for i, p in enumerate(plans.problem)
    ]


PROBLEM = [
    (True, "a"),
    (False, "a"),
    (True, "b"),
    (False, "b"),
    (True, "c"),
    (False, "c"),
    (True, "d"),
    (False, "d"),
]


def test_uniform_draws_are_in_range_and_reproducible():
    key = np.full(100_000, problem_key(0, "p", "*C", 0), dtype=np.uint64)
    u = uniform(key, 0, S_LAST, np.arange(100_000))
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 0.01 and abs((u < 0.1).mean() - 0.1) < 0.01
    assert (uniform(key, 0, S_LAST, np.arange(100_000)) == u).all()
    assert not (uniform(key, 1, S_LAST, np.arange(100_000)) == u).any()
    idx = below(u, 7)
    assert idx.min() == 0 and idx.max() == 6 and min(Counter(idx.tolist()).values()) > 13_500


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("unique_variants", [False, True])
def test_a_problem_plans_the_same_alone_or_in_a_batch(fmt, unique_variants):
    cfg = RearrangeConfig(formats=(fmt,), n_max=4, unique_variants=unique_variants, draw_n=True)
    other = [(True, "a"), (True, "b"), (False, "c"), (True, "c"), (False, "d")]
    alone, _ = FORMATS[fmt](pools_of([PROBLEM]), keys_for(1, fmt), cfg)
    batch, _ = FORMATS[fmt](
        pools_of([other, PROBLEM, other]),
        np.concatenate([keys_for(1, fmt, offset=5), keys_for(1, fmt), keys_for(1, fmt, offset=6)]),
        cfg,
    )
    start = len(other)
    mine = [([r - start for r in rows], final - start) for p, rows, final in traces_of(batch) if p == 1]
    assert mine == [(rows, final) for _, rows, final in traces_of(alone)]


def test_star_c_choices_are_uniform():
    """The last sample is uniform over the correct ones, the others uniform over the rest."""
    n = 20_000
    pools = pools_of([PROBLEM] * n)
    plans, skipped = FORMATS["*C"](pools, keys_for(n, "*C"), RearrangeConfig(formats=("*C",), n_max=3))
    assert not skipped
    lasts, firsts = Counter(), Counter()
    for p, rows, final in traces_of(plans):
        local = [r - 8 * p for r in rows]
        assert len(set(local)) == 3 and local[-1] == final - 8 * p and PROBLEM[local[-1]][0]
        lasts[local[-1]] += 1
        firsts[local[0]] += 1
    assert set(lasts) == {0, 2, 4, 6} and max(lasts.values()) / min(lasts.values()) < 1.1
    # first slot: any of the 7 rows left after the last pick; a correct row is free 3/4 of the time
    wrong, right = [firsts[i] for i in (1, 3, 5, 7)], [firsts[i] for i in (0, 2, 4, 6)]
    assert max(wrong) / min(wrong) < 1.1 and max(right) / min(right) < 1.1
    assert abs(sum(wrong) / sum(right) - 4 / 3) < 0.08


def test_unique_variants_and_skips():
    n = 4_000
    pools = pools_of([PROBLEM] * n + [[(True, "a"), (False, "a"), (True, "b")]])
    cfg = RearrangeConfig(formats=("*C_full",), n_max=4, unique_variants=True)
    plans, skipped = FORMATS["*C_full"](pools, keys_for(n + 1), cfg)
    assert skipped == Counter({"too_few_variants": 1}) and set(plans.problem.tolist()) == set(range(n))
    firsts = Counter()
    for p, rows, _ in traces_of(plans):
        variants = [PROBLEM[r - 8 * p][1] for r in rows]
        assert len(set(variants)) == len(variants)
        if len(rows) == 4:
            firsts[variants[0]] += 1
    assert max(firsts.values()) / min(firsts.values()) < 1.2


def test_backtrack_confirm_and_algorithm1_shapes():
    n = 5_000
    pools = pools_of([PROBLEM] * n + [[(True, "a"), (True, "b")]])
    cfg = RearrangeConfig(formats=("*C*IC",), n_max=4, draw_n=True)
    plans, skipped = FORMATS["*C*IC"](pools, keys_for(n + 1, "*C*IC"), cfg)
    assert skipped == Counter({"no_incorrect_sample": 1}) and plans.tail == "backtrack"
    where = Counter()
    for p, rows, final in traces_of(plans):
        ok = [PROBLEM[r - 8 * p][0] for r in rows]
        assert not ok[-1] and final in rows[:-1] and PROBLEM[final - 8 * p][0] and 2 <= len(rows) <= 4
        if len(rows) == 4:
            where[rows.index(final)] += 1
    assert set(where) == {0, 1, 2} and max(where.values()) / min(where.values()) < 1.2
    plans, skipped = FORMATS["*CC"](pools, keys_for(n + 1, "*CC"), RearrangeConfig(formats=("*CC",), n_max=3))
    assert skipped == Counter({"too_few_samples": 1}) and plans.tail == "confirm"
    for p, rows, final in traces_of(plans):
        base = 8 * p
        assert len(rows) == 3 and final == rows[-1] and len(set(rows)) == 3
        assert all(PROBLEM[r - base][0] for r in rows[-2:])
    plans, _ = FORMATS["alg1"](pools, keys_for(n + 1, "alg1"), RearrangeConfig(formats=("alg1",), n_max=4))
    sizes = Counter()
    for p, rows, final in traces_of(plans):
        if p == n:
            assert final == rows[-1] and set(rows) <= {8 * n, 8 * n + 1}
            continue
        ok = [PROBLEM[r - 8 * p][0] for r in rows]
        sizes[sum(ok)] += 1
        assert ok[-1] and final == rows[-1] and sum(ok) >= 1 and len(rows) - sum(ok) <= sum(ok) - 1
        assert len(set(rows)) == len(rows)
    assert set(sizes) == {1, 2, 3, 4} and max(sizes.values()) / min(sizes.values()) < 1.15  # n+ ~ U[1, 4]
