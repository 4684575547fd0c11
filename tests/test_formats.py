"""The vectorised trace planner: draws are uniform, independent of the batch, and plans obey each format."""

import math
from collections import Counter

import numpy as np
import pytest

from tracekit.errors import ConfigError
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
    for p, rows, final in traces_of(plans):
        ok = [(PROBLEM[r - 8 * p][0] if p < n else True) for r in rows]
        assert ok[-1] and final == rows[-1] and len(rows) - sum(ok) <= sum(ok) - 1
        assert len(set(rows)) == len(rows)


def test_reference_backtrack_goes_to_the_latest_correct_sample():
    n = 3_000
    pools = pools_of([PROBLEM] * n)
    cfg = RearrangeConfig(formats=("*C*IC",), n_max=4, layout="reference")
    plans, _ = FORMATS["*C*IC"](pools, keys_for(n, "*C*IC"), cfg)
    ours, _ = FORMATS["*C*IC"](pools, keys_for(n, "*C*IC"), RearrangeConfig(formats=("*C*IC",), n_max=4))
    assert (plans.slots == ours.slots).all()  # the same samples; only the one it goes back to differs
    for p, rows, final in traces_of(plans):
        ok = [PROBLEM[r - 8 * p][0] for r in rows]
        latest = max(i for i in range(len(rows) - 1) if ok[i])
        assert final == rows[latest]
    assert (plans.final != ours.final).any()


@pytest.mark.parametrize("fmt", ["*C*IC", "*CC"])
def test_two_sample_formats_refuse_n_max_1(fmt):
    with pytest.raises(ConfigError, match="always show two samples"):
        RearrangeConfig(formats=("0C", fmt), n_max=1)
    RearrangeConfig(formats=("0C", "*C_full"), n_max=1)


def test_star_takes_every_correct_sample_once():
    pools = pools_of([PROBLEM, [(True, "a")], [(False, "a"), (True, "b"), (True, "b")]])
    plans, skipped = FORMATS["star"](pools, keys_for(3, "star"), RearrangeConfig(formats=("star",)))
    assert not skipped and not plans.reflections and plans.glue == "generic"
    assert [(p, rows, final) for p, rows, final in traces_of(plans)] == [
        (0, [0], 0),
        (0, [2], 2),
        (0, [4], 4),
        (0, [6], 6),
        (1, [8], 8),
        (2, [10], 10),
        (2, [11], 11),
    ]
    assert plans.ordinal.tolist() == [0, 1, 2, 3, 0, 0, 1]


# ---------------------------------------------------------------- Algorithm 1


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with 1 or an even number of degrees of freedom (closed forms)."""
    if dof == 1:
        return math.erfc(math.sqrt(x / 2))
    assert dof % 2 == 0
    term, total = 1.0, 1.0
    for i in range(1, dof // 2):
        term *= (x / 2) / i
        total += term
    return math.exp(-x / 2) * total


def chi2(observed: Counter, expected: dict, n: int) -> float:
    assert set(observed) <= set(expected)
    return sum((observed[c] - n * p) ** 2 / (n * p) for c, p in expected.items())


def alg1_traces(problem, n_problems, n_max, seed=0):
    """Per problem: its traces as (correct rows, wrong rows, rows in order), in round order."""
    size = len(problem)
    pools = pools_of([problem] * n_problems)
    cfg = RearrangeConfig(formats=("alg1",), n_max=n_max)
    plans, skipped = FORMATS["alg1"](pools, keys_for(n_problems, "alg1", seed=seed), cfg)
    assert not skipped
    out = [[] for _ in range(n_problems)]
    for (p, rows, final), ordinal in zip(traces_of(plans), plans.ordinal.tolist()):
        assert ordinal == len(out[p]) and final == rows[-1]
        local = [r - size * p for r in rows]
        out[p].append(([r for r in local if problem[r][0]], [r for r in local if not problem[r][0]], local))
    return out


def test_algorithm1_draws_match_the_closed_form():
    """n+ = min(U[1, L], |Y+|), n- = min(U[0, n+ - 1], |Y-|), drawn over the full range and then capped.

    |Y+| = 3, |Y-| = 1, L = 5: P(n+ = 1) = P(n+ = 2) = 1/5, P(n+ = 3) = 3/5 (4/5 of U[1, 5] lands at 3
    or above, capped to 3); n- | n+ = 3 is U[0, 2] capped at 1, so P(n- = 1 | n+ = 3) = 2/3. The second
    round, when the first took one correct sample, draws n+ from |Y+| = 2: P(n+ = 2) = 4/5.
    """
    problem = [(True, "a"), (True, "a"), (True, "a"), (False, "a")]
    n = 20_000
    traces = alg1_traces(problem, n, n_max=5, seed=11)
    first = Counter((len(t[0][0]), len(t[0][1])) for t in traces)
    closed = {(1, 0): 1 / 5, (2, 0): 1 / 10, (2, 1): 1 / 10, (3, 0): 1 / 5, (3, 1): 2 / 5}
    stat = chi2(first, closed, n)
    assert chi2_sf(stat, dof=4) > 1e-6, (stat, first)
    # the old planner drew n+ from the capped range U[1, min(L, |Y+|)] and n- from U[0, min(n+ - 1, |Y-|)]
    old = {(1, 0): 1 / 3, (2, 0): 1 / 6, (2, 1): 1 / 6, (3, 0): 1 / 6, (3, 1): 1 / 6}
    assert chi2_sf(chi2(first, old, n), dof=4) < 1e-12
    after_one = [t[1] for t in traces if len(t[0][0]) == 1]
    second = Counter(len(correct) for correct, _, _ in after_one)
    stat = chi2(second, {1: 1 / 5, 2: 4 / 5}, len(after_one))
    assert chi2_sf(stat, dof=1) > 1e-6, (stat, second)
    assert chi2_sf(chi2(second, {1: 1 / 2, 2: 1 / 2}, len(after_one)), dof=1) < 1e-12


def test_algorithm1_uses_every_correct_sample_once_and_never_shares_one():
    problem = [(i % 3 != 0, "abcd"[i % 4]) for i in range(13)]  # 8 correct, 5 wrong
    for traces in alg1_traces(problem, 2_000, n_max=4, seed=3):
        used_correct = [r for correct, _, _ in traces for r in correct]
        used = [r for _, _, rows in traces for r in rows]
        assert sorted(used_correct) == [i for i, (ok, _) in enumerate(problem) if ok]
        assert len(used) == len(set(used)), "a problem's traces never share a sample"
        for correct, wrong, rows in traces:
            assert problem[rows[-1]][0] and 1 <= len(correct) <= 4 and len(wrong) <= len(correct) - 1


def test_algorithm1_takes_problems_with_one_correct_sample():
    one = [[(True, "a")], [(True, "a"), (False, "b"), (False, "b")]]
    plans, _ = FORMATS["alg1"](pools_of(one), keys_for(2, "alg1"), RearrangeConfig(formats=("alg1",)))
    assert [rows for _, rows, _ in traces_of(plans)] == [[0], [1]]
    assert RearrangeConfig(formats=("alg1",)).min_samples_for("alg1") == 1


def test_every_format_is_one_record_the_others_follow():
    # the record is the one place a format's facts live: planners, phrase banks and the docs follow it
    from tracekit.rearrange.config import FORMAT_NAMES, TAILS, TRACE_FORMATS
    from tracekit.rearrange.phrases import BANKS, load_phrase_bank

    assert tuple(FORMATS) == FORMAT_NAMES == tuple(TRACE_FORMATS)
    doc = " ".join(RearrangeConfig.__doc__.split("formats\n", 1)[1].split("n_max\n", 1)[0].split())
    assert doc == "Trace formats to build: " + ", ".join(FORMAT_NAMES) + "."
    assert set(TAILS) <= set(BANKS) and set(TAILS) <= set(load_phrase_bank().phrases)
    pools = pools_of([PROBLEM])
    cfg = RearrangeConfig(formats=FORMAT_NAMES, n_max=2)
    for name, fmt in TRACE_FORMATS.items():
        plans, _ = FORMATS[name](pools, keys_for(1, name), cfg)
        assert (plans.tail, plans.reflections) == (fmt.tail, fmt.reflections), name
        assert plans.glue == ("by_correctness" if fmt.reflections else "generic"), name
        assert cfg.min_samples_for(name) == (1 if fmt.any_size else 2), name
        if fmt.two_samples:
            with pytest.raises(ConfigError, match="always show two samples"):
                RearrangeConfig(formats=(name,), n_max=1)
        else:
            RearrangeConfig(formats=(name,), n_max=1)
