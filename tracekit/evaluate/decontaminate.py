"""Decontamination: evaluation problems must not appear among the training problems.

Two rules, by the kind of task:

* **procedural tasks** (generated: Countdown, multiplication, letter countdown, acronym):
  the task's own exact key (:meth:`Task.dedup_key`: for Countdown the sorted numbers and
  the target, whatever the wording) against training problems of the same task, and the
  normalised question text against every training question;
* **dataset tasks** (GSM8K, CommonsenseQA, math): word 8-gram overlap (lower-cased runs
  of letters and digits) with the training questions of dataset and imported tasks; a
  question shorter than 8 words matches only an equal one.

The templated wording of generated questions is tracekit's own, so procedural training
questions are not used for n-gram overlap (they would match each other's templates).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tracekit.errors import UnknownNameError
from tracekit.tasks import get_task

_WORD_RE = re.compile(r"[a-z0-9]+")


def is_procedural(task_name: str) -> bool:
    """Whether ``task_name`` is a generated task (dataset tasks load files; unknown tasks are not)."""
    try:
        task = get_task(task_name)
    except UnknownNameError:
        return False
    return not callable(getattr(task, "load", None))


def normalise_question(text: str) -> str:
    """Lower case, one space between words (for exact question matches)."""
    return " ".join(text.lower().split())


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of ``text``; the whole word sequence when it is shorter than ``n``.

    Examples
    --------
    >>> sorted(ngrams("A b, c!", 2))
    [('a', 'b'), ('b', 'c')]
    >>> ngrams("Short one", 8)
    {('short', 'one')}
    """
    words = _WORD_RE.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _exact_key(task_name: str, question: str, meta: str) -> str | None:
    try:
        item = {**json.loads(meta), "question": question}
        return f"{task_name}|{get_task(task_name).dedup_key(item)}"
    except (UnknownNameError, ValueError, KeyError, TypeError):
        return None


@dataclass
class DecontaminationReport:
    """What was checked and what was removed."""

    training_problems: int = 0
    checked: dict[str, int] = field(default_factory=dict)  # rule -> evaluation problems checked
    removed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"training_problems": self.training_problems, "checked": self.checked, "removed": self.removed}

    def format(self) -> str:
        rules = ", ".join(f"{rule}: {n}" for rule, n in self.checked.items()) or "nothing"
        line = (
            f"decontamination: {sum(self.checked.values())} evaluation problems checked against "
            f"{self.training_problems} training problems ({rules}); removed {len(self.removed)}"
        )
        for r in self.removed[:10]:
            line += f"\n  removed {r['problem_id']} ({r['task']}): {r['rule']} matches training {r['match']}"
        if len(self.removed) > 10:
            line += f"\n  ... and {len(self.removed) - 10} more"
        return line


def decontaminate(
    problems: pl.DataFrame, training: pl.DataFrame, *, n: int = 8
) -> tuple[pl.DataFrame, DecontaminationReport]:
    """Drop from ``problems`` every problem found among ``training`` problems.

    Both frames need ``problem_id, task, question, meta``. Returns the kept problems and
    the report (rules applied, counts, every removed problem with the rule and the
    training problem it matched).
    """
    report = DecontaminationReport(training_problems=training.height)
    keys: dict[str, str] = {}
    texts: dict[str, str] = {}
    grams: dict[tuple[str, ...], str] = {}
    for pid, task, question, meta in training.select("problem_id", "task", "question", "meta").iter_rows():
        texts.setdefault(normalise_question(question), pid)
        if is_procedural(task):
            key = _exact_key(task, question, meta)
            if key is not None:
                keys.setdefault(key, pid)
        else:
            for g in ngrams(question, n):
                grams.setdefault(g, pid)
    drop: set[str] = set()
    for pid, task, difficulty, question, meta in problems.select(
        "problem_id", "task", "difficulty", "question", "meta"
    ).iter_rows():
        hit = None
        if is_procedural(task):
            report.checked["exact_key"] = report.checked.get("exact_key", 0) + 1
            key = _exact_key(task, question, meta)
            if key is not None and key in keys:
                hit = ("exact_key", keys[key])
            elif normalise_question(question) in texts:
                hit = ("question_text", texts[normalise_question(question)])
        else:
            report.checked[f"{n}-gram"] = report.checked.get(f"{n}-gram", 0) + 1
            match = next((grams[g] for g in sorted(ngrams(question, n)) if g in grams), None)
            if match is not None:
                hit = (f"{n}-gram", match)
            elif normalise_question(question) in texts:
                hit = ("question_text", texts[normalise_question(question)])
        if hit is not None:
            drop.add(pid)
            report.removed.append(
                {"problem_id": pid, "task": task, "difficulty": difficulty, "rule": hit[0], "match": hit[1]}
            )
    return problems.filter(~pl.col("problem_id").is_in(list(drop))), report
