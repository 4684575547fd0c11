"""Trace formats: small named functions that pick which samples a trace shows, in order.

A format function takes a seeded generator, one problem's :class:`Pool` of surviving
samples and the rearrangement settings, and yields :class:`Plan` objects (positions in
the pool, the position whose answer is final, and how the trace ends). Rendering the
text is not their business (see :mod:`tracekit.rearrange`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import xxhash

@dataclass
class Plan:
    """Positions (into a problem's pool) of a trace's samples, and how it ends."""

    order: list[int]
    final: int  # position whose answer is the trace's final answer
    tail: str | None = None  # None, "backtrack" or "confirm"
    reflections: bool = True
    glue: str = "by_correctness"  # or "generic"


@dataclass
class Pool:
    """One problem's surviving samples (parallel lists)."""

    correct: list[bool]
    variant: list[str]
    idx_correct: list[int] = field(init=False)
    idx_wrong: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.idx_correct = [i for i, c in enumerate(self.correct) if c]
        self.idx_wrong = [i for i, c in enumerate(self.correct) if not c]


class FastRandom(random.Random):
    """``random.Random`` with cheaper ``choice``/``sample``/``randint`` (one ``random()`` per draw).

    Deterministic for a given seed, like the base class; the draws differ from the
    base class's but are just as uniform for the small sizes used here.
    """

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def sample(self, population, k: int):
        pool = list(population)
        n = len(pool)
        if k > n:
            raise ValueError("sample larger than population")
        rand = self.random
        for i in range(k):  # partial Fisher-Yates
            j = i + int(rand() * (n - i))
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def shuffle(self, x) -> None:
        rand = self.random
        for i in range(len(x) - 1, 0, -1):
            j = int(rand() * (i + 1))
            x[i], x[j] = x[j], x[i]


class Skip(Exception):
    """This format cannot be built for this problem (the reason is counted)."""


def _others(rng: random.Random, pool: Pool, last: int, k: int, unique_variants: bool) -> list[int]:
    """``k`` further samples (any correctness) to precede ``last``."""
    if k == 0:
        return []
    if unique_variants:
        by_variant: dict[str, list[int]] = {}
        for i, v in enumerate(pool.variant):
            if v != pool.variant[last]:
                by_variant.setdefault(v, []).append(i)
        if len(by_variant) < k:
            raise Skip("too_few_variants")
        return [rng.choice(by_variant[v]) for v in rng.sample(sorted(by_variant), k)]
    rest = [i for i in range(len(pool.correct)) if i != last]
    if len(rest) < k:
        raise Skip("too_few_samples")
    return rng.sample(rest, k)


def _star_c(rng, pool: Pool, n: int, cfg, *, last_correct: bool = True) -> Plan:
    candidates = pool.idx_correct if last_correct else list(range(len(pool.correct)))
    last = rng.choice(candidates)
    order = _others(rng, pool, last, n - 1, cfg.unique_variants) + [last]
    return Plan(order=order, final=last)


def _fixed_n(cfg, rng: random.Random, low: int) -> int:
    if cfg.draw_n:
        return rng.randint(min(low, cfg.n_max), cfg.n_max)
    return cfg.n_max


def plan_0c(rng, pool, cfg):
    yield _star_c(rng, pool, 1, cfg)


def plan_star_c(rng, pool, cfg):
    yield _star_c(rng, pool, _fixed_n(cfg, rng, 2), cfg)


def plan_star_c_full(rng, pool, cfg):
    for n in range(1, cfg.n_max + 1):
        yield _star_c(rng, pool, n, cfg)


def plan_random(rng, pool, cfg):
    for n in range(1, cfg.n_max + 1):
        yield _star_c(rng, pool, n, cfg, last_correct=False)


def plan_no_reflection(rng, pool, cfg):
    for plan in plan_star_c_full(rng, pool, cfg):
        plan.reflections = False
        plan.glue = "generic"
        yield plan


def plan_backtrack(rng, pool, cfg):
    """``*C*IC``: a correct sample somewhere, a wrong one last, then back to the correct one."""
    if not pool.idx_wrong:
        raise Skip("no_incorrect_sample")
    n = max(2, _fixed_n(cfg, rng, 2))
    good = rng.choice(pool.idx_correct)
    bad = rng.choice(pool.idx_wrong)
    rest = [i for i in range(len(pool.correct)) if i not in (good, bad)]
    if len(rest) < n - 2:
        raise Skip("too_few_samples")
    middle = [good] + rng.sample(rest, n - 2)
    rng.shuffle(middle)
    yield Plan(order=middle + [bad], final=good, tail="backtrack")


def plan_confirm(rng, pool, cfg):
    """``*CC``: ends on two correct samples, then a confirmation phrase."""
    if len(pool.idx_correct) < 2:
        raise Skip("too_few_correct")
    n = max(2, _fixed_n(cfg, rng, 2))
    two = rng.sample(pool.idx_correct, 2)
    rest = [i for i in range(len(pool.correct)) if i not in two]
    if len(rest) < n - 2:
        raise Skip("too_few_samples")
    yield Plan(order=rng.sample(rest, n - 2) + two, final=two[-1], tail="confirm")


def plan_algorithm1(rng, pool, cfg):
    """The paper's Algorithm 1: n+ ~ U[1, L_max] correct, n- ~ U[0, n+ - 1] wrong, ending correct.

    Draws are capped by what the pool holds (at most all correct / all wrong samples).
    """
    n_pos = rng.randint(1, min(cfg.n_max, len(pool.idx_correct)))
    n_neg = rng.randint(0, min(n_pos - 1, len(pool.idx_wrong)))
    pos = rng.sample(pool.idx_correct, n_pos)
    chosen = pos[1:] + rng.sample(pool.idx_wrong, n_neg)
    rng.shuffle(chosen)
    yield Plan(order=chosen + [pos[0]], final=pos[0])


FORMATS: dict[str, Callable] = {
    "0C": plan_0c,
    "*C": plan_star_c,
    "*C_full": plan_star_c_full,
    "*C*IC": plan_backtrack,
    "*CC": plan_confirm,
    "random": plan_random,
    "no_reflection": plan_no_reflection,
    "alg1": plan_algorithm1,
}


def format_rng(seed: int, problem_id: str, fmt: str, repeat: int) -> FastRandom:
    """The generator of one (problem, format, repeat): independent of everything else in the run."""
    key = f"{seed}|{problem_id}|{fmt}|{repeat}".encode()
    return FastRandom(xxhash.xxh3_64_intdigest(key))
