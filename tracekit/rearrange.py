"""Rearrangement: turn kept samples and reflections into SkillFactory silver traces.

A trace is the model's own attempts in a chosen order, each followed by one of its
kept self-verifications and a glue phrase, then an ending phrase and the final
answer::

    <think>
    <sample>
    ...attempt 1...
    </sample>
    <reflect>
    ...its verification...
    </reflect>
    <glue phrase>
    <sample>
    ...last attempt...
    </sample>
    <reflect>
    ...
    </reflect>
    </think>

    <ending phrase>

    <answer>
    final
    </answer>

Formats are small named functions that pick sample positions (see :data:`FORMATS`).
Every random choice comes from a generator seeded by ``(seed, problem_id, format,
repeat)``, so a problem's traces never depend on which other problems, formats or
chunks were processed alongside it.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable

import polars as pl
import xxhash

from tracekit.errors import ConfigError, unknown_name
from tracekit.ids import stable_hash, text_hash
from tracekit.phrases import PhraseBank


@dataclass(frozen=True)
class RearrangeConfig:
    """Settings of the rearrangement stage.

    Parameters
    ----------
    formats
        Trace formats to build (see :data:`FORMATS`).
    n_max
        Largest number of samples in a trace (the paper's main setting is 5).
    repeats
        How many times each format is drawn per problem.
    seed
        Seed of every random choice.
    draw_n
        For ``*C``, ``*C*IC`` and ``*CC``: draw N uniformly in ``[2, n_max]`` instead of
        using ``n_max``.
    unique_variants
        In the ``*C`` family (``0C``, ``*C``, ``*C_full``, ``random``, ``no_reflection``)
        take every sample of a trace from a different prompt variant; problems with too
        few variants are skipped and counted.
    min_samples
        Surviving samples a problem needs to be usable (default: ``n_max``).
    include_truncated
        Let responses cut by the token limit into traces.
    phrases
        Phrase bank file (default: the bank shipped with tracekit).
    """

    formats: tuple[str, ...] = ("*C_full",)
    n_max: int = 5
    repeats: int = 1
    seed: int = 0
    draw_n: bool = False
    unique_variants: bool = False
    min_samples: int | None = None
    include_truncated: bool = False
    phrases: str | None = None

    def __post_init__(self) -> None:
        formats = tuple(self.formats)
        if not formats:
            raise ConfigError("rearrange: at least one format is needed.")
        for name in formats:
            if name not in FORMATS:
                raise unknown_name("trace format", name, list(FORMATS))
        object.__setattr__(self, "formats", formats)
        if self.n_max < 1:
            raise ConfigError(f"rearrange: n_max must be >= 1, got {self.n_max}.")
        if self.repeats < 1:
            raise ConfigError(f"rearrange: repeats must be >= 1, got {self.repeats}.")
        if self.min_samples is not None and self.min_samples < 1:
            raise ConfigError(f"rearrange: min_samples must be >= 1, got {self.min_samples}.")

    @property
    def effective_min_samples(self) -> int:
        return self.n_max if self.min_samples is None else self.min_samples

    def digest(self, bank: PhraseBank) -> str:
        """Hash of everything that shapes a trace except the list of formats."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("formats", "phrases")}
        return stable_hash(fields, bank.digest)


# --------------------------------------------------------------------------- plans
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


def _star_c(rng, pool: Pool, n: int, cfg: RearrangeConfig, *, last_correct: bool = True) -> Plan:
    candidates = pool.idx_correct if last_correct else list(range(len(pool.correct)))
    last = rng.choice(candidates)
    order = _others(rng, pool, last, n - 1, cfg.unique_variants) + [last]
    return Plan(order=order, final=last)


def _fixed_n(cfg: RearrangeConfig, rng: random.Random, low: int) -> int:
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


def _rng(seed: int, problem_id: str, fmt: str, repeat: int) -> FastRandom:
    key = f"{seed}|{problem_id}|{fmt}|{repeat}".encode()
    return FastRandom(xxhash.xxh3_64_intdigest(key))


# ------------------------------------------------------------------------ rendering
def rearrange_pool(
    pool: pl.DataFrame,
    questions: dict[str, str],
    reflection_texts: dict[str, str],
    cfg: RearrangeConfig,
    bank: PhraseBank,
    *,
    drops: Counter | None = None,
) -> pl.DataFrame:
    """Build the traces of every problem in ``pool`` (output of :func:`tracekit.filter.filter_pool`).

    ``pool`` needs ``problem_id, sample_id, prompt_variant, is_correct,
    extracted_answer, response, kept_reflection_ids`` and must be sorted by problem.
    Returns a frame in the ``traces`` table schema.
    """
    drops = Counter() if drops is None else drops
    digest = cfg.digest(bank)
    generic = bank.ids("generic_glue")
    glue_ok = bank.ids("correct_glue", "generic_glue")
    glue_bad = bank.ids("incorrect_glue", "generic_glue")
    endings, backtracks, confirms = bank.ids("ending"), bank.ids("backtrack"), bank.ids("confirm")
    text = {pid: bank.text(pid) for pid in generic + glue_ok + glue_bad + endings + backtracks + confirms}

    cols = {c: pool[c].to_list() for c in ("problem_id", "sample_id", "prompt_variant", "is_correct", "extracted_answer", "response", "kept_reflection_ids")}
    out: dict[str, list] = {k: [] for k in ("trace_id", "problem_id", "format", "n_samples", "repeat", "prompt", "completion", "sample_ids", "reflection_ids", "phrase_ids", "final_answer", "final_correct")}

    n_rows = len(cols["problem_id"])
    start = 0
    while start < n_rows:
        pid = cols["problem_id"][start]
        end = start
        while end < n_rows and cols["problem_id"][end] == pid:
            end += 1
        sl = slice(start, end)
        p_correct, p_sid = cols["is_correct"][sl], cols["sample_id"][sl]
        p_ans, p_resp, p_refl = cols["extracted_answer"][sl], cols["response"][sl], cols["kept_reflection_ids"][sl]
        p = Pool(correct=p_correct, variant=cols["prompt_variant"][sl])
        question = questions[pid]
        for fmt in cfg.formats:
            for repeat in range(cfg.repeats):
                rng = _rng(cfg.seed, pid, fmt, repeat)
                try:
                    plans = list(FORMATS[fmt](rng, p, cfg))
                except Skip as why:
                    drops[f"traces/{fmt}:{why}"] += 1
                    continue
                for plan in plans:
                    parts = ["<think>"]
                    refl_ids: list[str] = []
                    phrase_ids: list[str] = []
                    last = len(plan.order) - 1
                    for k, i in enumerate(plan.order):
                        parts.append(f"<sample>\n{p_resp[i]}\n</sample>")
                        if plan.reflections:
                            rid = rng.choice(p_refl[i])
                            refl_ids.append(rid)
                            parts.append(f"<reflect>\n{reflection_texts[rid]}\n</reflect>")
                        if k < last:
                            bank_ids = generic if plan.glue == "generic" else (glue_ok if p_correct[i] else glue_bad)
                            gid = rng.choice(bank_ids)
                            phrase_ids.append(gid)
                            parts.append(text[gid])
                    if plan.tail == "backtrack":
                        bid = rng.choice(backtracks)
                        phrase_ids.append(bid)
                        parts.append(text[bid])
                        parts.append(f"<sample>\n{p_resp[plan.final]}\n</sample>")
                    elif plan.tail == "confirm":
                        cid = rng.choice(confirms)
                        phrase_ids.append(cid)
                        parts.append(text[cid])
                    parts.append("</think>")
                    eid = rng.choice(endings)
                    phrase_ids.append(eid)
                    answer = p_ans[plan.final]
                    completion = "\n".join(parts) + f"\n\n{text[eid]}\n\n<answer>\n{answer or ''}\n</answer>"
                    n = len(plan.order)
                    out["trace_id"].append("t-" + text_hash(f"{pid}|{fmt}|{n}|{repeat}|{digest}"))
                    out["problem_id"].append(pid)
                    out["format"].append(fmt)
                    out["n_samples"].append(n)
                    out["repeat"].append(repeat)
                    out["prompt"].append(question)
                    out["completion"].append(completion)
                    out["sample_ids"].append([p_sid[i] for i in plan.order])
                    out["reflection_ids"].append(refl_ids)
                    out["phrase_ids"].append(phrase_ids)
                    out["final_answer"].append(answer)
                    out["final_correct"].append(bool(p_correct[plan.final]))
                    drops[f"built/{fmt}"] += 1
        start = end
    lists = {name: _list_column(out.pop(name)) for name in ("sample_ids", "reflection_ids", "phrase_ids")}
    frame = pl.DataFrame(
        out,
        schema={
            "trace_id": pl.Utf8, "problem_id": pl.Utf8, "format": pl.Utf8, "n_samples": pl.Int64,
            "repeat": pl.Int64, "prompt": pl.Utf8, "completion": pl.Utf8, "final_answer": pl.Utf8,
            "final_correct": pl.Boolean,
        },
    )
    return frame.with_columns(**lists, config_hash=pl.lit(digest)).select(
        "trace_id", "problem_id", "format", "n_samples", "repeat", "prompt", "completion",
        "sample_ids", "reflection_ids", "phrase_ids", "final_answer", "final_correct", "config_hash",
    )


def _list_column(rows: list[list[str]]) -> pl.Series:
    """A list[str] column from Python lists, built from flat values and offsets (much faster)."""
    import itertools

    import pyarrow as pa

    offsets = [0, *itertools.accumulate(len(r) for r in rows)]
    values = pa.array(list(itertools.chain.from_iterable(rows)), type=pa.large_string())
    array = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), values)
    return pl.Series(array).cast(pl.List(pl.Utf8))


# ------------------------------------------------------------------------ the stage
_SAMPLE_COLS = ["sample_id", "problem_id", "prompt_variant", "sample_index", "is_correct", "extracted_answer", "finish_reason", "response"]
_REFL_COLS = ["reflection_id", "sample_id", "problem_id", "verdict", "verdict_reason", "text"]


def rearrange_store(store, cfg: RearrangeConfig, *, replace: bool = False, target_bytes: int | None = None) -> Counter:
    """Run filter + rearrangement over a whole store and append the traces.

    Streams bucket by bucket (see :mod:`tracekit.partition`); traces whose id the
    store already holds are skipped, so re-running the same configuration adds nothing.
    Returns the counters of the run report (drops by reason, traces built per format).
    """
    from tracekit.filter import filter_pool
    from tracekit.partition import TARGET_BYTES, iter_problem_buckets
    from tracekit.phrases import load_phrase_bank

    bank = load_phrase_bank(cfg.phrases)
    if replace:
        store.clear("traces")
    existing = store.ids("traces")
    stats: Counter = Counter()
    columns = {"problems": ["problem_id", "question"], "samples": _SAMPLE_COLS, "reflections": _REFL_COLS}
    for bucket in iter_problem_buckets(store, columns, target_bytes=target_bytes or TARGET_BYTES):
        stats["problems/total"] += bucket["problems"].height
        stats["samples/total"] += bucket["samples"].height
        stats["reflections/total"] += bucket["reflections"].height
        pool, _ = filter_pool(
            bucket["samples"],
            bucket["reflections"].drop("text", "problem_id"),
            min_samples=cfg.effective_min_samples,
            include_truncated=cfg.include_truncated,
            drops=stats,
        )
        needed = pool["kept_reflection_ids"].explode().unique().implode()
        texts = bucket["reflections"].filter(pl.col("reflection_id").is_in(needed))
        reflection_texts = dict(zip(texts["reflection_id"].to_list(), texts["text"].to_list()))
        questions = dict(zip(bucket["problems"]["problem_id"].to_list(), bucket["problems"]["question"].to_list()))
        missing = pool.filter(~pl.col("problem_id").is_in(list(questions)))
        if missing.height:
            from tracekit.errors import StoreError

            msg = (
                f"samples reference {missing['problem_id'].n_unique()} problem id(s) absent from table 'problems', "
                f"first: {missing['problem_id'][0]!r} (sample {missing['sample_id'][0]!r})."
            )
            raise StoreError(msg)
        del bucket
        traces = rearrange_pool(pool, questions, reflection_texts, cfg, bank, drops=stats)
        traces = traces.filter(~pl.col("trace_id").is_in(existing.implode()))
        traces = traces.sort(["problem_id", "format", "repeat", "n_samples", "trace_id"])
        if traces.height:
            stats["traces/written"] += store.write("traces", traces, known_ids=existing.head(0))
    return stats
