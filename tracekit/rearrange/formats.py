"""Trace formats: which samples a trace shows, in which order, planned for many problems at once.

A format's planner is a small named function over a batch of problems: it takes the
:class:`Pools` (every problem's surviving samples), one random key per problem (see
:mod:`tracekit.rearrange.draws`) and the rearrangement settings, and returns :class:`Plans`
(for every trace: its problem, its samples in order and the sample whose answer is final)
plus the problems it had to skip, counted by reason. How a format's traces end and whether
they show reflections are facts of its record (:data:`tracekit.rearrange.config.TRACE_FORMATS`),
which :data:`FORMATS` stamps on the plans. Rendering the text is not their business (see
:mod:`tracekit.rearrange.render`).

Every choice is a uniform draw: "pick one correct sample" is a uniform index into the
problem's correct samples; "pick k more samples" gives every candidate a random key and
takes the k smallest, which is a uniformly random k-subset in a uniformly random order
(the same distribution as ``random.sample``). Candidates are numbered by their position
in their own problem's pool, so a problem's traces depend only on the seed, the
problem's own samples, the format and the repeat.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tracekit.rearrange.config import TRACE_FORMATS, Format
from tracekit.rearrange.draws import (
    S_INSERT,
    S_LAST,
    S_N,
    S_NNEG,
    S_OTHERS,
    S_SECOND,
    S_SHUFFLE,
    S_VARIANT,
    below,
    uniform,
)
from tracekit.rearrange.ragged import ragged_arange, ragged_cumsum, starts


@dataclass
class Pools:
    """The surviving samples of a batch of problems, as row-aligned arrays sorted by problem.

    ``variant`` numbers each row's prompt variant within its own problem (0, 1, ... in the
    order of the variant names), so it never depends on the other problems of the batch.
    """

    start: np.ndarray  # [P] first row of each problem
    size: np.ndarray  # [P] rows of each problem (>= 1)
    correct: np.ndarray  # [R] bool
    variant: np.ndarray  # [R] int64

    def __post_init__(self) -> None:
        self.problem = np.repeat(np.arange(len(self.start)), self.size)
        self.local = np.arange(len(self.correct)) - self.start[self.problem]
        self.n_correct = _per_problem(self, self.correct)
        self.n_wrong = self.size - self.n_correct
        first = np.ones(len(self.variant), dtype=bool)
        first[1:] = (self.variant[1:] != self.variant[:-1]) | (self.problem[1:] != self.problem[:-1])
        self.n_variants = _per_problem(self, first)

    @classmethod
    def from_rows(cls, problem_sizes, correct, variant_names) -> Pools:
        """Build from per-problem row counts, correctness and variant names (rows sorted by problem, variant)."""
        size = np.asarray(problem_sizes, dtype=np.int64)
        start = starts(size)
        names = np.asarray(variant_names, dtype=object)
        new = np.ones(len(names), dtype=bool)
        new[1:] = names[1:] != names[:-1]
        new[start] = True
        rank = np.cumsum(new) - 1  # running count of variant changes
        variant = rank - rank[start][np.repeat(np.arange(len(size)), size)]
        return cls(
            start=start, size=size, correct=np.asarray(correct, dtype=bool), variant=variant.astype(np.int64)
        )

    def select(self, keep: np.ndarray) -> tuple[Pools, np.ndarray, np.ndarray]:
        """The problems where ``keep`` holds: (their pools, their problem indices here, their row indices here)."""
        problems = np.flatnonzero(keep)
        if len(problems) == len(self.start):
            return self, problems, np.arange(len(self.correct))
        rows = np.flatnonzero(keep[self.problem])
        size = self.size[problems]
        start = starts(size)
        sub = Pools(start=start, size=size, correct=self.correct[rows], variant=self.variant[rows])
        return sub, problems, rows


def _per_problem(pools: Pools, mask: np.ndarray) -> np.ndarray:
    return np.bincount(pools.problem, weights=mask, minlength=len(pools.start)).astype(np.int64)


@dataclass
class Plans:
    """Planned traces of one format (trace-major arrays).

    ``slots`` holds each trace's pool rows in order (``n[t]`` rows for trace ``t``);
    ``final`` the row whose answer closes the trace. ``ordinal`` numbers the traces of one
    (problem, format, repeat); together with the problem's key it seeds the trace's draws.
    """

    problem: np.ndarray
    ordinal: np.ndarray
    n: np.ndarray
    final: np.ndarray
    slots: np.ndarray
    tail: str | None = None  # None or one of TAILS; the three fields come from the format's record
    reflections: bool = True
    glue: str = "by_correctness"  # or "generic"


class _Traces:
    """The traces being planned: problem, key and ordinal of each (helper for the formats)."""

    def __init__(self, pools: Pools, keys: np.ndarray, problems: np.ndarray, ordinals: np.ndarray) -> None:
        self.pools, self.problem, self.ordinal = pools, problems, ordinals
        self.key = keys[problems]

    def __len__(self) -> int:
        return len(self.problem)

    def draw(self, stream: int, j=0) -> np.ndarray:
        return uniform(self.key, self.ordinal, stream, j)

    def pick_one(self, stream: int, mask: np.ndarray | None) -> np.ndarray:
        """One uniformly chosen row per trace among its problem's rows where ``mask`` holds."""
        pools = self.pools
        if mask is None:
            return pools.start[self.problem] + below(self.draw(stream), pools.size[self.problem])
        rows = np.flatnonzero(mask)
        counts = _per_problem(pools, mask)
        first = starts(counts)
        return rows[first[self.problem] + below(self.draw(stream), counts[self.problem])]

    def by_pool_size(self):
        """Traces grouped by the size ``m`` of their problem's pool: (m, trace indices, rows [T_m, m])."""
        sizes = self.pools.size[self.problem]
        for m in np.unique(sizes):
            t = np.flatnonzero(sizes == m)
            yield int(m), t, self.pools.start[self.problem[t]][:, None] + np.arange(m)

    def pick_k(self, stream: int, k: np.ndarray, mask: np.ndarray | None = None, exclude=()):
        """``k[t]`` distinct rows per trace in random order among its problem's rows that ``mask``
        admits, minus ``exclude``: (trace, rank, row) arrays. Callers make sure enough rows qualify."""
        out = []
        for m, t, rows in self.by_pool_size():
            keys = uniform(self.key[t][:, None], self.ordinal[t][:, None], stream, np.arange(m)[None, :])
            ok = np.ones(rows.shape, dtype=bool) if mask is None else mask[rows]
            for ex in exclude:
                ok &= rows != ex[t][:, None]
            out.append(_smallest(t, np.where(ok, keys, _NEVER), rows, k[t]))
        return _concat(out)

    def pick_k_variants(self, k: np.ndarray, last: np.ndarray):
        """``k[t]`` rows per trace from distinct prompt variants other than ``last``'s, random order.

        The variants are a uniform random ordered subset; within a variant the row is uniform.
        """
        pools = self.pools
        out = []
        for m, t, rows in self.by_pool_size():
            cols = np.arange(m)[None, :]
            variant = pools.variant[rows]
            row_key = uniform(self.key[t][:, None], self.ordinal[t][:, None], S_OTHERS, cols)
            other = variant != pools.variant[last[t]][:, None]
            # sort each trace's rows by (variant, key): the first row of each variant run is its pick
            order = np.argsort(np.where(other, variant * 2.0 + row_key, np.inf), axis=1, kind="stable")
            rows, variant, other = (np.take_along_axis(x, order, axis=1) for x in (rows, variant, other))
            head = other.copy()
            head[:, 1:] &= variant[:, 1:] != variant[:, :-1]
            variant_key = uniform(self.key[t][:, None], self.ordinal[t][:, None], S_VARIANT, variant)
            out.append(_smallest(t, np.where(head, variant_key, _NEVER), rows, k[t]))
        return _concat(out)


_NEVER = 2.0  # the key of a row that must not be picked (real keys are in [0, 1))


def _smallest(t: np.ndarray, keys: np.ndarray, rows: np.ndarray, k: np.ndarray):
    """Per trace (row ``i`` of the 2-D ``keys``/``rows``), the ``k[i]`` rows with the smallest keys,
    ascending: (trace ``t[i]``, rank, row) arrays, trace-major."""
    order = np.argsort(keys, axis=1, kind="stable")
    take = np.arange(keys.shape[1])[None, :] < k[:, None]
    if (np.take_along_axis(keys, order, axis=1)[take] >= _NEVER).any():  # pragma: no cover - a planning bug
        raise AssertionError("a format asked for more samples than qualify")
    i, rank = np.nonzero(take)
    return t[i], rank, np.take_along_axis(rows, order, axis=1)[i, rank]


def _concat(parts):
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))


def _assemble(n: np.ndarray, pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Trace-major slot rows from (trace, position, row) pieces that fill positions 0..n[t]-1."""
    start = starts(n)
    slots = np.full(int(n.sum()), -1, dtype=np.int64)
    for trace, position, row in pieces:
        slots[start[trace] + position] = row
    if (slots < 0).any():  # pragma: no cover - a planning bug, never input
        raise AssertionError("planned slots do not fill the traces")
    return slots


def _fixed_n(cfg, tr: _Traces, low: int) -> np.ndarray:
    if cfg.draw_n:
        lo = min(low, cfg.n_max)
        return lo + below(tr.draw(S_N), cfg.n_max - lo + 1)
    return np.full(len(tr), cfg.n_max, dtype=np.int64)


def _skip(skipped: Counter, reason: str, bad: np.ndarray) -> np.ndarray:
    """Count the problems in ``bad``; return the mask of the others."""
    if bad.any():
        skipped[reason] += int(bad.sum())
    return ~bad


def _star_c(
    pools: Pools, keys, cfg, ns: np.ndarray, *, last_correct: bool = True, draw_n: bool = False
) -> tuple[Plans, Counter]:
    """Traces of ``ns[j]`` samples (j-th trace of every problem) ending on a correct one (or any).

    With ``draw_n`` (``*C`` only) each problem's single trace draws its N instead.
    """
    skipped: Counter = Counter()
    n_problems = len(pools.start)
    problems = np.repeat(np.arange(n_problems), len(ns))
    ordinals = np.tile(np.arange(len(ns)), n_problems)
    n = np.tile(ns, n_problems)
    tr = _Traces(pools, keys, problems, ordinals)
    if draw_n:
        n = _fixed_n(cfg, tr, 2)
    need = np.zeros(n_problems, dtype=np.int64)
    np.maximum.at(need, problems, n - 1)
    have = (pools.n_variants if cfg.unique_variants else pools.size) - 1
    ok = _skip(
        skipped, "too_few_variants" if cfg.unique_variants else "too_few_samples", (need > 0) & (have < need)
    )
    keep = ok[problems]
    tr = _Traces(pools, keys, problems[keep], ordinals[keep])
    n = n[keep]
    last = tr.pick_one(S_LAST, pools.correct if last_correct else None)
    if cfg.unique_variants:
        others = tr.pick_k_variants(n - 1, last)
    else:
        others = tr.pick_k(S_OTHERS, n - 1, exclude=(last,))
    idx = np.arange(len(tr))
    slots = _assemble(n, [others, (idx, n - 1, last)])
    return Plans(problem=tr.problem, ordinal=tr.ordinal, n=n, final=last, slots=slots), skipped


def plan_0c(pools, keys, cfg):
    """``0C``: one correct sample."""
    return _star_c(pools, keys, cfg, np.array([1]))


def plan_star_c(pools, keys, cfg):
    """``*C``: N samples (N = n_max, or drawn in [2, n_max]), the last one correct."""
    return _star_c(pools, keys, cfg, np.array([cfg.n_max]), draw_n=True)


def plan_star_c_full(pools, keys, cfg):
    """``*C_full``: ``*C`` once for every N = 1..n_max (the paper's main setting)."""
    return _star_c(pools, keys, cfg, np.arange(1, cfg.n_max + 1))


def plan_random(pools, keys, cfg):
    """``random``: like ``*C_full`` but the last sample may be wrong (the "no sample order" ablation)."""
    return _star_c(pools, keys, cfg, np.arange(1, cfg.n_max + 1), last_correct=False)


def _pairs(pools: Pools, keys, cfg, reason: str, bad: np.ndarray):
    """One trace per problem for the two-anchor formats (``*C*IC``, ``*CC``): the traces and their N."""
    skipped: Counter = Counter()
    ok = _skip(skipped, reason, bad)
    tr = _Traces(pools, keys, np.flatnonzero(ok), np.zeros(int(ok.sum()), dtype=np.int64))
    n = _fixed_n(cfg, tr, 2)  # n_max >= 2 (RearrangeConfig refuses less for these formats)
    short = pools.size[tr.problem] - 2 < n - 2
    if short.any():
        skipped["too_few_samples"] += int(short.sum())
        tr = _Traces(pools, keys, tr.problem[~short], tr.ordinal[~short])
        n = n[~short]
    return tr, n, skipped


def plan_backtrack(pools, keys, cfg):
    """``*C*IC``: a correct sample somewhere, a wrong one last, then back to a correct one.

    tracekit's layout goes back to the correct sample it placed (a uniform pick among the
    problem's correct samples, at a uniform position among the first N - 1); the reference
    layout goes back to the latest correct sample among the first N - 1, as the reference does.
    """
    tr, n, skipped = _pairs(pools, keys, cfg, "no_incorrect_sample", pools.n_wrong == 0)
    good = tr.pick_one(S_LAST, pools.correct)
    bad = tr.pick_one(S_SECOND, ~pools.correct)
    trace, rank, row = tr.pick_k(S_OTHERS, n - 2, exclude=(good, bad))
    at = below(tr.draw(S_INSERT), n - 1)  # where the correct sample goes among the first n - 1
    idx = np.arange(len(tr))
    slots = _assemble(n, [(trace, rank + (rank >= at[trace]), row), (idx, at, good), (idx, n - 1, bad)])
    final = _latest_correct(pools, n, slots) if cfg.layout == "reference" else good
    return Plans(problem=tr.problem, ordinal=tr.ordinal, n=n, final=final, slots=slots), skipped


def _latest_correct(pools: Pools, n: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Per trace, the row of its latest correct sample among the first ``n - 1`` slots."""
    trace = np.repeat(np.arange(len(n)), n)
    position = ragged_arange(n)
    candidate = pools.correct[slots] & (position < n[trace] - 1)
    latest = np.full(len(n), -1, dtype=np.int64)
    np.maximum.at(latest, trace[candidate], position[candidate])
    return slots[starts(n) + latest]


def plan_confirm(pools, keys, cfg):
    """``*CC``: ends on two correct samples, then a confirmation phrase."""
    tr, n, skipped = _pairs(pools, keys, cfg, "too_few_correct", pools.n_correct < 2)
    idx = np.arange(len(tr))
    first, second = (np.empty(len(tr), dtype=np.int64) for _ in range(2))
    t2, rank2, two = tr.pick_k(S_LAST, np.full(len(tr), 2), pools.correct)
    first[t2[rank2 == 0]], second[t2[rank2 == 1]] = two[rank2 == 0], two[rank2 == 1]
    trace, rank, row = tr.pick_k(S_OTHERS, n - 2, exclude=(first, second))
    slots = _assemble(n, [(trace, rank, row), (idx, n - 2, first), (idx, n - 1, second)])
    return Plans(problem=tr.problem, ordinal=tr.ordinal, n=n, final=second, slots=slots), skipped


def plan_algorithm1(pools, keys, cfg):
    """The paper's Algorithm 1 (appendix A), as written.

    For each problem, while correct samples Y+ remain: draw n+ = min(U[1, L_max], |Y+|) and
    n- = min(U[0, n+ - 1], |Y-|), take n+ correct and n- wrong samples out of the pools, and
    make one trace of them, shuffled, ending on a correct one. So a problem with one correct
    sample qualifies, its traces never share a sample, and every correct sample is used
    exactly once (each repeat runs the algorithm again). ``L_max`` is ``n_max``.

    Vectorised over problems: taking uniform random subsets out one after the other is the
    same as cutting one uniform random order of each pool into consecutive pieces, and the
    capped sizes are differences of capped running sums (``min(S_j, |Y|) - min(S_{j-1}, |Y|)``).
    Round ``j`` of a problem is its trace ``j``: its draws use the trace counter ``j``.
    """
    n_problems = len(pools.start)
    C, W = pools.n_correct, pools.n_wrong
    # every problem can run at most |Y+| rounds (each takes at least one correct sample)
    r_problem = np.repeat(np.arange(n_problems), C)
    r_round = ragged_arange(C)
    r_key = keys[r_problem]
    drawn = 1 + below(uniform(r_key, r_round, S_N, 0), cfg.n_max)  # U[1, L_max]
    total = ragged_cumsum(drawn, C)
    cap = C[r_problem]
    alive = total - drawn < cap  # correct samples remained when round j started
    r_problem, r_round, r_key = r_problem[alive], r_round[alive], r_key[alive]
    pos_end = np.minimum(total[alive], cap[alive])
    n_pos = pos_end - np.minimum(total[alive] - drawn[alive], cap[alive])
    rounds = np.bincount(r_problem, minlength=n_problems)
    neg_drawn = below(uniform(r_key, r_round, S_NNEG, 0), n_pos)  # U[0, n+ - 1], n+ after its cap
    neg_total = ragged_cumsum(neg_drawn, rounds)
    wcap = W[r_problem]
    neg_end = np.minimum(neg_total, wcap)
    n_neg = neg_end - np.minimum(neg_total - neg_drawn, wcap)

    # one uniform random order of each problem's correct and of its wrong samples
    whole = _Traces(pools, keys, np.arange(n_problems), np.zeros(n_problems, dtype=np.int64))
    used_wrong = np.zeros(n_problems, dtype=np.int64)
    np.add.at(used_wrong, r_problem, n_neg)
    order_pos = _in_order(C, whole.pick_k(S_LAST, C, pools.correct))
    order_neg = _in_order(used_wrong, whole.pick_k(S_SECOND, used_wrong, ~pools.correct))

    tr = _Traces(pools, keys, r_problem, r_round)
    t = np.arange(len(tr))
    # trace t takes the pieces [pos_end - n_pos, pos_end) and [neg_end - n_neg, neg_end) of those orders
    p_trace = np.repeat(t, n_pos)
    p_rank = ragged_arange(n_pos)
    p_row = order_pos[starts(C)[r_problem][p_trace] + (pos_end - n_pos)[p_trace] + p_rank]
    w_trace = np.repeat(t, n_neg)
    w_row = order_neg[
        starts(used_wrong)[r_problem][w_trace] + (neg_end - n_neg)[w_trace] + ragged_arange(n_neg)
    ]
    final = p_row[p_rank == 0]  # the first correct sample of the piece closes the trace
    # the others, shuffled: each gets a random key; sorted by (trace, key)
    o_trace = np.concatenate([p_trace[p_rank > 0], w_trace])
    o_row = np.concatenate([p_row[p_rank > 0], w_row])
    o_key = uniform(tr.key[o_trace], tr.ordinal[o_trace], S_SHUFFLE, pools.local[o_row])
    order = np.lexsort((o_key, o_trace))
    o_trace, o_row = o_trace[order], o_row[order]
    n = n_pos + n_neg
    o_rank = np.arange(len(o_trace)) - starts(n - 1)[o_trace]
    slots = _assemble(n, [(o_trace, o_rank, o_row), (t, n - 1, final)])
    return Plans(problem=tr.problem, ordinal=tr.ordinal, n=n, final=final, slots=slots), Counter()


def _in_order(counts: np.ndarray, picks) -> np.ndarray:
    """Rows of ``pick_k`` output laid out problem-major: ``counts[p]`` rows per problem, by rank."""
    trace, rank, row = picks
    out = np.empty(int(counts.sum()), dtype=np.int64)
    out[starts(counts)[trace] + rank] = row
    return out


def plan_star(pools, keys, cfg):
    """``star``: every correct sample alone, without reflection (the paper's STaR baseline:
    fine-tuning on the model's own correct answers). No draws: one trace per correct sample,
    numbered in pool order."""
    rows = np.flatnonzero(pools.correct)
    problem = pools.problem[rows]
    ordinal = np.arange(len(rows)) - starts(pools.n_correct)[problem]
    n = np.ones(len(rows), dtype=np.int64)
    return Plans(problem=problem, ordinal=ordinal, n=n, final=rows, slots=rows.copy()), Counter()


def _stamped(fmt: Format) -> Callable:
    """The planner of ``fmt`` (its record's ``planner``, a function of this module), its plans
    carrying the record's tail, reflections and glue."""
    plan = globals()[fmt.planner]

    @functools.wraps(plan)
    def planned(pools, keys, cfg):
        plans, skipped = plan(pools, keys, cfg)
        plans.tail, plans.reflections, plans.glue = fmt.tail, fmt.reflections, fmt.glue
        return plans, skipped

    return planned


# format name -> planner, in the order of TRACE_FORMATS
FORMATS: dict[str, Callable] = {name: _stamped(fmt) for name, fmt in TRACE_FORMATS.items()}
