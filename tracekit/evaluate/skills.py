"""Skill analytics: does a response verify and retry, and are its verdicts right?

Per response: the answer attempts (``<answer>`` spans), the ``<sample>`` and ``<reflect>``
blocks and the verdict of each reflect block. A verdict judges the last answer given
before it (since the previous reflect block); its truth is that answer's correctness.
Aggregated by task, difficulty and trace format (traces) or model and condition (evals):

* verdict precision, recall and F1 per class (Correct, Incorrect) against the truth;
* retries: Incorrect verdicts followed by another ``<sample>``;
* final correctness conditioned on the last verdict (Correct, Incorrect, unusable, none);
* lengths (tokens: the backend's count for evals, a tokenizer's for traces when given,
  else whitespace words).

Silver traces use their links instead of re-reading text: each trace lists its
reflection ids in order, each reflection names the sample it judged, and samples carry
``is_correct``; the filter kept only reflections that agree with the verifier, so on
traces the verdict F1 is 1.0 wherever a class occurs. Model outputs (evals) are read
from the text, and the judged answers are scored by the task's verifier.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from tracekit.errors import ConfigError, require
from tracekit.evaluate.problems import difficulty_label
from tracekit.evaluate.results import current_evals, format_table
from tracekit.extract import all_answers, parse_verdict
from tracekit.store.views import view
from tracekit.tasks import get_task, load_recorded_tasks

_TAG_RE = re.compile(r"<(/?)(sample|reflect)>")
CLASSES = {"Correct": True, "Incorrect": False}


@dataclass(frozen=True)
class Structure:
    """What one response contains; ``judged`` holds (verdict, judged answer, followed by a sample)."""

    n_answers: int
    n_samples: int
    n_reflects: int
    judged: tuple[tuple[bool | None, str | None, bool], ...]


def parse_structure(text: str) -> Structure:
    """Blocks, answers and verdicts of a response (unclosed blocks end at the next tag).

    Examples
    --------
    >>> s = parse_structure(
    ...     "<think><sample><answer>5</answer></sample><reflect>no <verdict>Incorrect</verdict></reflect>"
    ...     "<sample><answer>6</answer></sample><reflect><verdict>Correct</verdict></reflect></think>"
    ...     "<answer>6</answer>")
    >>> s.n_answers, s.n_samples, s.n_reflects, s.judged
    (3, 2, 2, ((False, '5', True), (True, '6', False)))
    """
    blocks: list[tuple[str, int, int]] = []
    open_kind, open_at = None, 0
    for m in _TAG_RE.finditer(text):
        closing, kind = m.group(1) == "/", m.group(2)
        if open_kind is not None:
            if closing and kind != open_kind:
                continue  # a stray closing tag inside a block
            blocks.append((open_kind, open_at, m.start()))
            open_kind = None
        if not closing:
            open_kind, open_at = kind, m.end()
    if open_kind is not None:
        blocks.append((open_kind, open_at, len(text)))
    judged = []
    since = 0
    sample_starts = [start for kind, start, _ in blocks if kind == "sample"]
    for kind, start, end in blocks:
        if kind != "reflect":
            continue
        answers = all_answers(text[since:start])
        judged.append(
            (
                parse_verdict(text[start:end]).value,
                answers[-1] if answers else None,
                any(s > end for s in sample_starts),
            )
        )
        since = end
    return Structure(
        n_answers=len(all_answers(text)),
        n_samples=len(sample_starts),
        n_reflects=len(judged),
        judged=tuple(judged),
    )


def _record(s: Structure, pairs: list[tuple[bool | None, bool]], final_correct: bool, length: int) -> dict:
    """One response's figures; ``pairs`` are (verdict, truth) per reflect block, in order."""
    retried = [p[0] is False and j[2] for p, j in zip(pairs, s.judged)] if len(pairs) == len(s.judged) else []
    if pairs:
        last = {True: "Correct", False: "Incorrect", None: "unusable"}[pairs[-1][0]]
    else:
        last = "none"
    return {
        "answers": s.n_answers,
        "samples": s.n_samples,
        "reflects": s.n_reflects,
        "pairs": pairs,
        "incorrect_verdicts": sum(p[0] is False for p in pairs),
        "retries": sum(retried),
        "last_verdict": last,
        "final_correct": bool(final_correct),
        "length": length,
    }


def _f1(pairs: list[tuple[bool | None, bool]], cls: bool) -> dict[str, Any]:
    pred = sum(v is cls for v, _ in pairs)
    actual = sum(t is cls for _, t in pairs)
    tp = sum(v is cls and t is cls for v, t in pairs)
    return {
        "predicted": pred,
        "actual": actual,
        "precision": tp / pred if pred else None,
        "recall": tp / actual if actual else None,
        "f1": 2 * tp / (pred + actual) if pred + actual else None,
    }


def aggregate(records: list[dict]) -> dict[str, Any]:
    """The figures of a group of responses (see the module docstring)."""
    n = len(records)
    pairs = [p for r in records for p in r["pairs"]]
    out: dict[str, Any] = {
        "responses": n,
        "answers_per_response": sum(r["answers"] for r in records) / n,
        "samples_per_response": sum(r["samples"] for r in records) / n,
        "reflects_per_response": sum(r["reflects"] for r in records) / n,
        "with_reflect": sum(r["reflects"] > 0 for r in records) / n,
        "verdicts": len(pairs),
        "unusable_verdicts": sum(v is None for v, _ in pairs),
        "verdict": {name: _f1(pairs, cls) for name, cls in CLASSES.items()},
        "incorrect_verdicts": sum(r["incorrect_verdicts"] for r in records),
        "retries": sum(r["retries"] for r in records),
        "final_accuracy": sum(r["final_correct"] for r in records) / n,
        "length_mean": sum(r["length"] for r in records) / n,
        "length_median": sorted(r["length"] for r in records)[n // 2],
    }
    out["retry_rate"] = out["retries"] / out["incorrect_verdicts"] if out["incorrect_verdicts"] else None
    out["accuracy_by_last_verdict"] = {}
    for last in ("Correct", "Incorrect", "unusable", "none"):
        group = [r["final_correct"] for r in records if r["last_verdict"] == last]
        if group:
            out["accuracy_by_last_verdict"][last] = {"n": len(group), "accuracy": sum(group) / len(group)}
    return out


def _grouped(keys: list[tuple], records: list[dict], names: list[str]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict]] = {}
    for key, rec in zip(keys, records):
        groups.setdefault(key, []).append(rec)
    return [{**dict(zip(names, key)), **aggregate(recs)} for key, recs in groups.items()]


def trace_records(
    traces, reflections, samples, problems, lengths: list[int]
) -> tuple[list[tuple], list[dict]]:
    """Per trace: its group key (task, difficulty, format) and figures, with verdicts and truths from links."""
    verdict = dict(zip(reflections["reflection_id"].to_list(), reflections["verdict"].to_list()))
    judged = dict(zip(reflections["reflection_id"].to_list(), reflections["sample_id"].to_list()))
    truth = dict(zip(samples["sample_id"].to_list(), samples["is_correct"].to_list()))
    where = {p: (t, d) for p, t, d in problems.select("problem_id", "task", "difficulty").iter_rows()}
    keys, records = [], []
    for (pid, fmt, text, rids, final), length in zip(
        traces.select("problem_id", "format", "completion", "reflection_ids", "final_correct").iter_rows(),
        lengths,
    ):
        pairs = [(verdict.get(r), bool(truth.get(judged.get(r)))) for r in rids]
        keys.append((*where.get(pid, ("unknown", "")), fmt))
        records.append(_record(parse_structure(text), pairs, final, length))
    return keys, records


def eval_records(evals: pl.DataFrame) -> tuple[list[tuple], list[dict]]:
    """Per model response: its key (label, condition, task, difficulty) and figures, read from the text."""
    keys, records = [], []
    for label, cond, task, diff, meta, text, correct, n_tokens in evals.select(
        "label", "condition", "task", "difficulty", "meta", "response", "is_correct", "n_tokens"
    ).iter_rows():
        s = parse_structure(text)
        verifier, fields = get_task(task), json.loads(meta)
        pairs = [(v, verifier.score_answer(a, fields).is_correct) for v, a, _ in s.judged]
        keys.append((label, cond, task, diff))
        records.append(_record(s, pairs, correct, n_tokens if n_tokens is not None else len(text.split())))
    return keys, records


def _lengths(texts: list[str], tokenizer: str | None) -> list[int]:
    if tokenizer is None:
        return [len(t.split()) for t in texts]
    transformers = require("transformers", "hf")
    tok = transformers.AutoTokenizer.from_pretrained(tokenizer)
    return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]


def skill_tables(store, *, source: str = "traces", tokenizer: str | None = None) -> dict[str, Any]:
    """Skill analytics of a store's traces or evals: ``{"source", "length_unit", "groups", "overall"}``."""
    load_recorded_tasks(store)  # tasks from outside the package that its evals are scored by
    if source == "traces":
        columns = ["problem_id", "format", "completion", "reflection_ids", "final_correct"]
        traces = view(store, "traces").select(columns).collect()
        refl = view(store, "reflections").select(["reflection_id", "sample_id", "verdict"]).collect()
        samples = view(store, "samples").select(["sample_id", "is_correct"]).collect()
        problems = view(store, "problems").select(["problem_id", "task", "difficulty"]).collect()
        lengths = _lengths(traces["completion"].to_list(), tokenizer)
        keys, records = trace_records(traces, refl, samples, problems, lengths)
        names, unit, top = ["task", "difficulty", "format"], "tokens" if tokenizer else "words", None
    elif source == "evals":
        evals = current_evals(view(store, "evals").collect())
        keys, records = eval_records(evals)
        names, unit, top = ["label", "condition", "task", "difficulty"], "tokens", 2
    else:
        raise ConfigError(f"skills: --source must be 'traces' or 'evals', got {source!r}")
    if not keys:
        make = "tracekit run or tracekit rearrange" if source == "traces" else "tracekit eval CONFIG.yaml"
        msg = f"skills: store {store.root} has no {source} in its current view.\nHint: build them with `{make}`."
        raise ConfigError(msg)
    overall = _grouped([k[:top] if top else () for k in keys], records, names[:top] if top else [])
    return {
        "source": source,
        "length_unit": unit,
        "groups": _grouped(keys, records, names),
        "overall": overall,
    }


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if pct else (f"{v:.2f}" if isinstance(v, float) else str(v))


def skill_rows(tables: dict[str, Any], level: str = "groups") -> tuple[list[str], list[list[str]]]:
    """One level of the skill tables (``groups`` or ``overall``) as a header and rows of text."""
    header = ["group", "n", "answers", "samples", "reflects", "verdicts", "F1 Correct", "F1 Incorrect",
              "retry rate", "acc | last Correct", "acc | last Incorrect", "accuracy",
              f"mean length ({tables['length_unit']})"]  # fmt: skip
    rows = []
    for g in tables[level]:
        name = " ".join(
            difficulty_label(str(v)) if k == "difficulty" else str(v)
            for k, v in g.items()
            if k in ("label", "condition", "task", "difficulty", "format")
        )
        by_last = g["accuracy_by_last_verdict"]
        rows.append(
            [
                name or "all",
                str(g["responses"]),
                _fmt(g["answers_per_response"]),
                _fmt(g["samples_per_response"]),
                _fmt(g["reflects_per_response"]),
                str(g["verdicts"]),
                _fmt(g["verdict"]["Correct"]["f1"]),
                _fmt(g["verdict"]["Incorrect"]["f1"]),
                _fmt(g["retry_rate"], True),
                _fmt(by_last.get("Correct", {}).get("accuracy"), True),
                _fmt(by_last.get("Incorrect", {}).get("accuracy"), True),
                _fmt(g["final_accuracy"], True),
                f"{g['length_mean']:.0f}",
            ]  # fmt: skip
        )
    return header, rows


def format_skills(tables: dict[str, Any]) -> str:
    """The skill tables as fixed-width text."""
    out = []
    for level in ("overall", "groups"):
        header, rows = skill_rows(tables, level)
        title = f"skills ({tables['source']}, {'overall' if level == 'overall' else 'by group'})"
        out.append(format_table(["", *header], [["", *r] for r in rows], title=title))
    return "\n\n".join(out)
