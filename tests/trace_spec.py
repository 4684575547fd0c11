"""A readable specification of rearrangement: one problem, one trace at a time, plain Python.

tracekit plans and lays out whole batches of traces with numpy arrays
(:mod:`tracekit.rearrange.formats`, :mod:`tracekit.rearrange.render`). This module says
what that code must produce, the slow and obvious way: for each problem, format, repeat
and trace it makes every random choice with one scalar draw, in the words of the format's
definition, and writes the text with a template. ``tests/test_trace_spec.py`` checks, on
random pools, that the fast code gives exactly these traces (samples, reflections,
phrases, text and ids).

Every draw is ``u(stream, j)``: a uniform number in [0, 1) keyed by (seed, problem,
format, repeat), the trace's ordinal, the kind of choice (``stream``) and its index ``j``.
``index(u, n)`` turns it into a uniform index in ``[0, n)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tracekit.ids import hash_strings
from tracekit.rearrange import draws
from tracekit.rearrange.draws import problem_key
from tracekit.rearrange.repeats import REPEAT_GROUP

ANY_SIZE = ("alg1", "star")  # formats that take any problem with one correct sample


@dataclass
class Sample:
    sample_id: str
    variant: str
    correct: bool
    answer: str | None
    response: str
    reflections: list[tuple[str, str]]  # kept reflections (id, text), ordered by id


@dataclass
class Problem:
    problem_id: str
    samples: list[Sample]  # ordered by prompt variant (then as the store orders them)

    def variant_number(self, i: int) -> int:
        """Prompt variants are numbered 0, 1, ... in name order within the problem."""
        return sorted({s.variant for s in self.samples}).index(self.samples[i].variant)


@dataclass
class Trace:
    problem_id: str
    format: str
    repeat: int
    ordinal: int
    samples: list[int]  # positions in the problem's samples, in trace order
    final: int
    reflections: bool = True
    generic_glue: bool = False
    tail: str | None = None
    reflection_ids: list[str] = field(default_factory=list)
    phrase_ids: list[str] = field(default_factory=list)
    completion: str = ""


class Draws:
    """The scalar draws of one (seed, problem, format, repeat) and one trace ordinal."""

    def __init__(self, seed: int, problem_id: str, fmt: str, repeat: int, ordinal: int = 0):
        self.key = np.uint64(problem_key(seed, problem_id, fmt, repeat))
        self.ordinal = ordinal

    def u(self, stream: int, j: int = 0) -> float:
        return float(draws.uniform(self.key, self.ordinal, stream, j))

    def index(self, stream: int, n: int, j: int = 0) -> int:
        return min(int(self.u(stream, j) * n), n - 1)

    def pick_one(self, stream: int, candidates: list[int]) -> int:
        """A uniform choice among ``candidates`` (positions in pool order)."""
        return candidates[self.index(stream, len(candidates))]

    def pick_k(self, stream: int, k: int, candidates: list[int]) -> list[int]:
        """``k`` distinct candidates in random order: every candidate gets the key u(stream, its
        position); the k smallest keys win, smallest first."""
        return sorted(candidates, key=lambda i: (self.u(stream, i), i))[:k]


# ------------------------------------------------------------------ which samples


def plan(problem: Problem, fmt: str, repeat: int, cfg) -> list[Trace]:
    """The traces of one problem for one format and repeat (empty when the problem is skipped)."""
    n_samples = len(problem.samples)
    need = cfg.min_samples if cfg.min_samples is not None else (1 if fmt in ANY_SIZE else cfg.n_max)
    if n_samples < need:
        return []
    if fmt == "alg1":
        return algorithm1(problem, repeat, cfg)
    if fmt == "star":
        correct = [i for i, s in enumerate(problem.samples) if s.correct]
        return [
            Trace(problem.problem_id, fmt, repeat, j, [i], i, reflections=False, generic_glue=True)
            for j, i in enumerate(correct)
        ]
    if fmt in ("*C*IC", "*CC"):
        return two_anchors(problem, fmt, repeat, cfg)
    return star_c(problem, fmt, repeat, cfg)


def star_c(problem: Problem, fmt: str, repeat: int, cfg) -> list[Trace]:
    """0C, *C, *C_full, random, no_reflection: N samples, the last correct (random: any)."""
    everything = list(range(len(problem.samples)))
    correct = [i for i in everything if problem.samples[i].correct]
    ns = {"0C": [1], "*C": [cfg.n_max]}.get(fmt, list(range(1, cfg.n_max + 1)))
    traces = []
    for ordinal, n in enumerate(ns):
        d = Draws(cfg.seed, problem.problem_id, fmt, repeat, ordinal)
        if fmt == "*C" and cfg.draw_n:
            low = min(2, cfg.n_max)
            n = low + d.index(draws.S_N, cfg.n_max - low + 1)
        traces.append((ordinal, n, d))
    need = max(n for _, n, _ in traces) - 1
    if cfg.unique_variants:
        if len({s.variant for s in problem.samples}) - 1 < need:
            return []
    elif len(everything) - 1 < need:
        return []
    out = []
    for ordinal, n, d in traces:
        last = d.pick_one(draws.S_LAST, everything if fmt == "random" else correct)
        if cfg.unique_variants:
            others = pick_variants(problem, d, n - 1, last)
        else:
            others = d.pick_k(draws.S_OTHERS, n - 1, [i for i in everything if i != last])
        trace = Trace(problem.problem_id, fmt, repeat, ordinal, [*others, last], last)
        if fmt == "no_reflection":
            trace.reflections, trace.generic_glue = False, True
        out.append(trace)
    return out


def pick_variants(problem: Problem, d: Draws, k: int, last: int) -> list[int]:
    """``k`` samples from distinct prompt variants other than ``last``'s: in each variant the
    sample with the smallest u(S_OTHERS, position); the variants with the smallest
    u(S_VARIANT, variant number) win, smallest first."""
    best: dict[int, int] = {}
    for i, s in enumerate(problem.samples):
        if s.variant == problem.samples[last].variant:
            continue
        v = problem.variant_number(i)
        if v not in best or d.u(draws.S_OTHERS, i) < d.u(draws.S_OTHERS, best[v]):
            best[v] = i
    chosen = sorted(best, key=lambda v: d.u(draws.S_VARIANT, v))[:k]
    return [best[v] for v in chosen]


def two_anchors(problem: Problem, fmt: str, repeat: int, cfg) -> list[Trace]:
    """*C*IC (ends wrong, then backtracks to a correct one) and *CC (ends on two correct ones)."""
    everything = list(range(len(problem.samples)))
    correct = [i for i in everything if problem.samples[i].correct]
    wrong = [i for i in everything if not problem.samples[i].correct]
    if (fmt == "*C*IC" and not wrong) or (fmt == "*CC" and len(correct) < 2):
        return []
    d = Draws(cfg.seed, problem.problem_id, fmt, repeat)
    n = 2 + d.index(draws.S_N, cfg.n_max - 1) if cfg.draw_n else cfg.n_max
    if len(everything) < n:
        return []
    if fmt == "*CC":
        first, second = d.pick_k(draws.S_LAST, 2, correct)
        others = d.pick_k(draws.S_OTHERS, n - 2, [i for i in everything if i not in (first, second)])
        return [Trace(problem.problem_id, fmt, repeat, 0, [*others, first, second], second, tail="confirm")]
    good = d.pick_one(draws.S_LAST, correct)
    bad = d.pick_one(draws.S_SECOND, wrong)
    others = d.pick_k(draws.S_OTHERS, n - 2, [i for i in everything if i not in (good, bad)])
    at = d.index(draws.S_INSERT, n - 1)  # where the correct sample goes among the first n - 1
    order = [*others[:at], good, *others[at:], bad]
    final = good
    if cfg.layout == "reference":  # the reference goes back to the latest correct one before the last
        final = [i for i in order[:-1] if problem.samples[i].correct][-1]
    return [Trace(problem.problem_id, fmt, repeat, 0, order, final, tail="backtrack")]


def algorithm1(problem: Problem, repeat: int, cfg) -> list[Trace]:
    """The paper's Algorithm 1: while correct samples remain, draw n+ = min(U[1, L], |Y+|) and
    n- = min(U[0, n+ - 1], |Y-|), take them out, and make a trace of them: the others in random
    order, then one correct sample."""
    everything = list(range(len(problem.samples)))
    whole = Draws(cfg.seed, problem.problem_id, "alg1", repeat)
    # taking random subsets out one after the other = reading one random order of each pool
    y_pos = whole.pick_k(draws.S_LAST, len(everything), [i for i in everything if problem.samples[i].correct])
    y_neg = whole.pick_k(
        draws.S_SECOND, len(everything), [i for i in everything if not problem.samples[i].correct]
    )
    out = []
    while y_pos:
        d = Draws(cfg.seed, problem.problem_id, "alg1", repeat, ordinal=len(out))
        n_pos = min(1 + d.index(draws.S_N, cfg.n_max), len(y_pos))
        n_neg = min(d.index(draws.S_NNEG, n_pos), len(y_neg))
        pos, y_pos = y_pos[:n_pos], y_pos[n_pos:]
        neg, y_neg = y_neg[:n_neg], y_neg[n_neg:]
        shuffled = d.pick_k(draws.S_SHUFFLE, n_pos - 1 + n_neg, pos[1:] + neg)
        out.append(Trace(problem.problem_id, "alg1", repeat, len(out), [*shuffled, pos[0]], pos[0]))
    return out


# ------------------------------------------------------------------ the text


def lay_out(problem: Problem, trace: Trace, bank, layout: str, seed: int) -> Trace:
    """Draw the trace's reflections and phrases and write its text."""
    d = Draws(seed, problem.problem_id, trace.format, trace.repeat, trace.ordinal)
    samples = [problem.samples[i] for i in trace.samples]
    n = len(samples)
    parts = ["<think>"]
    glue_ids = []
    for pos, s in enumerate(samples):
        parts.append(f"<sample>\n{s.response}\n</sample>")
        if trace.reflections:
            rid, text = s.reflections[d.index(draws.S_REFLECTION, len(s.reflections), pos)]
            trace.reflection_ids.append(rid)
            parts.append(f"<reflect>\n{text}\n</reflect>")
        elif layout == "reference":
            parts.append("")  # the reference leaves a blank line where the reflection was
        if pos < n - 1:
            if trace.generic_glue:
                names = ["generic_glue"]
            else:
                names = ["correct_glue" if s.correct else "incorrect_glue", "generic_glue"]
            ids = bank.ids(*names)
            glue_ids.append(ids[d.index(draws.S_GLUE, len(ids), pos)])
            parts.append(bank.text(glue_ids[-1]))
    tail_id = None
    if trace.tail:
        ids = bank.ids(trace.tail)
        tail_id = ids[d.index(draws.S_TAIL, len(ids))]
    final = problem.samples[trace.final]
    if trace.tail and layout == "tracekit":  # inside <think>; the correct sample again as a <sample>
        parts.append(bank.text(tail_id))
        if trace.tail == "backtrack":
            parts.append(f"<sample>\n{final.response}\n</sample>")
    parts.append("</think>")
    endings = bank.ids("ending")
    ending_id = endings[d.index(draws.S_ENDING, len(endings))]
    ending = bank.text(ending_id)
    if trace.tail and layout == "reference":  # after </think>, untagged, before the ending phrase
        if trace.tail == "backtrack":
            ending = f"{bank.text(tail_id)}\n{final.response}\n{ending}"
        else:
            ending = f"{bank.text(tail_id)}\n{ending}"
    answer = final.answer if final.answer is not None else ("None" if layout == "reference" else "")
    parts.append(f"\n\n{ending}\n\n<answer>\n{answer}\n</answer>")
    trace.completion = "\n".join(parts)
    trace.phrase_ids = glue_ids + ([tail_id] if tail_id else []) + [ending_id]
    return trace


def build(problems: list[Problem], cfg, bank, digest: str) -> list[dict]:
    """Every trace of ``problems``, ordered by problem, format, repeat and ordinal, as rows."""
    cfg = cfg.with_seed(0)  # no seed named: 0, as the rearrange command does
    rows = []
    for problem in problems:
        for fmt in sorted(cfg.formats):
            shown: set[tuple] = set()  # what earlier repeats' traces showed (see tracekit.rearrange.repeats)
            fresh = True
            for repeat in range(cfg.repeats):
                if repeat % REPEAT_GROUP == 0:
                    if not fresh:
                        break  # a whole group of repeats gave nothing new: this format is done for the problem
                    fresh = False
                for trace in plan(problem, fmt, repeat, cfg):
                    lay_out(problem, trace, bank, cfg.layout, cfg.seed)
                    n = len(trace.samples)
                    final = problem.samples[trace.final]
                    what = (tuple(trace.samples), tuple(trace.reflection_ids), final.answer)
                    if cfg.repeats > 1 and what in shown:
                        continue  # the same samples, order and reflections as an earlier trace
                    shown.add(what)
                    fresh = True
                    # a trace's id: what it is (problem, format, N, repeat, ordinal, settings) and
                    # what its text is made of (samples, reflections, phrases, the final sample)
                    key = "|".join(
                        [
                            problem.problem_id,
                            fmt,
                            str(n),
                            str(repeat),
                            str(trace.ordinal),
                            digest,
                            ",".join(problem.samples[i].sample_id for i in trace.samples),
                            ",".join(trace.reflection_ids),
                            ",".join(trace.phrase_ids),
                            final.sample_id,
                        ]
                    )
                    rows.append(
                        {
                            "trace_id": "t-" + hash_strings([key])[0],
                            "problem_id": problem.problem_id,
                            "format": fmt,
                            "n_samples": n,
                            "repeat": repeat,
                            "sample_ids": [problem.samples[i].sample_id for i in trace.samples],
                            "reflection_ids": trace.reflection_ids,
                            "phrase_ids": trace.phrase_ids,
                            "completion": trace.completion,
                            "final_answer": final.answer,
                            "final_correct": final.correct,
                        }
                    )
    return rows


def inputs(problems: list[Problem]):
    """The inputs of ``rearrange_pool`` for ``problems``, as ``tracekit.filter.filter_pool`` leaves them
    (the response texts stored in reverse order, to exercise the indirection)."""
    rows = [(p, s) for p in problems for s in p.samples]
    responses = pl.Series([s.response for _, s in reversed(rows)])
    pool = pl.DataFrame(
        {
            "problem_id": [p.problem_id for p, _ in rows],
            "sample_id": [s.sample_id for _, s in rows],
            "prompt_variant": [s.variant for _, s in rows],
            "is_correct": [s.correct for _, s in rows],
            "extracted_answer": pl.Series([s.answer for _, s in rows], dtype=pl.Utf8),
            "n_kept": [len(s.reflections) for _, s in rows],
            "text_row": [len(rows) - 1 - i for i in range(len(rows))],
        }
    )
    kept = [(i, rid, text) for i, (_, s) in enumerate(rows) for rid, text in s.reflections]
    kept_frame = pl.DataFrame(
        {
            "pool_row": [k[0] for k in kept],
            "reflection_id": [k[1] for k in kept],
            "text_row": list(range(len(kept))),
        },
        schema={"pool_row": pl.Int64, "reflection_id": pl.Utf8, "text_row": pl.UInt32},
    )
    texts = pl.Series([k[2] for k in kept], dtype=pl.Utf8)
    questions = pl.DataFrame({"problem_id": [p.problem_id for p in problems]}).with_columns(
        question=pl.lit("q")
    )
    return pool, kept_frame, responses, texts, questions
