"""Existing datasets as tasks: GSM8K, CommonsenseQA and boxed-answer math (MATH-500 style).

Each loader reads local parquet or jsonl files in the dataset's public column layout
(or, given an ``owner/name`` that is not a local path and where the Hub is reachable,
``datasets.load_dataset`` of that dataset, e.g. ``openai/gsm8k``) and
returns a ``problems`` frame; each has an exact verifier:

* GSM8K (``question``, ``answer`` ending ``#### 42``): numbers compared exactly as
  rationals after removing ``,``, ``$``, ``%`` and trailing units;
* CommonsenseQA (``question``, ``choices`` {``label``, ``text``}, ``answerKey``): the
  choice letter, alone or as ``(B)`` / ``B)`` / ``B.``;
* math (``problem``, ``answer`` or a ``solution`` with ``\\boxed{}``): the last
  ``\\boxed{...}`` (or the plain answer) normalised (spaces, ``\\left``/``\\right``,
  ``\\!``, ``\\dfrac``, ``^\\circ``, text units) and compared as strings, or as exact
  rationals when both sides are plain numbers or fractions.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.errors import InputFormatError
from tracekit.ids import problem_id
from tracekit.schemas import polars_schema
from tracekit.tasks.base import Check, Task

_NUMBER_RE = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?$", re.ASCII)


def parse_number(text: str) -> Fraction | None:
    """An exact rational from ``42``, ``-3.5``, ``1,234``, ``$12``, ``50%``, ``3/4``; else None."""
    t = text.strip().rstrip(".").replace(",", "").replace("$", "").replace(" ", "")
    t = t.removesuffix("%")
    if len(t) > 60 or not _NUMBER_RE.match(t):
        return None
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth, j = 0, i
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
        j += 1
    return None


_LATEX_DROP = [r"\left", r"\right", r"\!", r"\,", r"\;", r"\:", "$", "^\\circ", "^{\\circ}", r"\%", "%"]


def normalise_math(text: str) -> str:
    t = text.strip()
    boxed = last_boxed(t)
    if boxed is not None:
        t = boxed
    t = re.sub(r"\\text\{\s*([^{}]*)\}", r"\1", t)
    t = t.replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac")
    for token in _LATEX_DROP:
        t = t.replace(token, "")
    t = re.sub(r"\\frac\{([^{}]+)\}\{([^{}]+)\}", r"\1/\2", t)
    t = re.sub(r"\\frac(\d)(\d)", r"\1/\2", t)
    t = re.sub(r"\s+", "", t).rstrip(".")
    return t


def _read_rows(path: str | Path, split: str = "test", config: str | None = None) -> pl.DataFrame:
    p = Path(path)
    if not p.is_file():
        if (
            isinstance(path, str)
            and path.count("/") == 1
            and not p.exists()
            and not path.startswith((".", "/"))
        ):
            return _read_hub(path, split, config)
        raise InputFormatError(f"dataset file {p} does not exist.")
    try:
        if p.suffix == ".parquet":
            return pl.read_parquet(p)
        if p.suffix in (".jsonl", ".json", ".ndjson"):
            return pl.read_ndjson(p, infer_schema_length=None)
    except Exception as exc:  # polars raises several types for bad files
        raise InputFormatError(f"cannot read {p}: {exc}") from None
    raise InputFormatError(f"{p}: unsupported file type {p.suffix!r} (use .parquet or .jsonl)")


def _read_hub(name: str, split: str, config: str | None) -> pl.DataFrame:
    """A Hub dataset (``owner/name``), where the Hub is reachable."""
    import datasets

    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown name, gated: all mean "cannot load"
        msg = f"cannot load {name!r} (split {split!r}) from the Hub: {exc}\nHint: give a local .parquet or .jsonl file."
        raise InputFormatError(msg) from None
    return ds.to_polars()


def _need(frame: pl.DataFrame, path, columns: list[str], dataset: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"{path} is not in the {dataset} layout: missing column(s) {missing}; found {frame.columns}."
        raise InputFormatError(msg)


def _frame(task: str, rows: list[dict[str, Any]], split: str) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "problem_id": problem_id(task, r["question"], r["answer"]),
                "task": task,
                "question": r["question"],
                "answer": r["answer"],
                "split": split,
                "difficulty": "",
                "seed": None,
                "index": i,
                "meta": json.dumps(r["meta"], sort_keys=True),
            }
            for i, r in enumerate(rows)
        ],
        schema=polars_schema("problems"),
    )


class _Loader(Task):
    knobs: dict[str, str] = {}
    fields = ("answer",)
    field_types = {"answer": "str|int"}
    generated = False
    multi_answer_guard = False

    def make_item(self, rng, **knobs):
        from tracekit.errors import ConfigError

        raise ConfigError(f"task {self.name!r} loads an existing dataset: use load(path), not generate().")

    def example(self) -> str:
        return self.example_question


class GSM8K(_Loader):
    name = "gsm8k"
    description = "Grade-school math word problems (GSM8K layout: question, answer with '#### N')."
    example_question = (
        "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in all?"
    )

    def load(self, path: str | Path, *, split: str = "test") -> pl.DataFrame:
        frame = _read_rows(path, "test" if split == "test" else "train", "main")
        _need(frame, path, ["question", "answer"], "GSM8K")
        rows = []
        for q, a in frame.select("question", "answer").iter_rows():
            final = str(a).rsplit("####", 1)[-1].strip()
            rows.append({"question": q, "answer": final, "meta": {"answer": final}})
        return _frame(self.name, rows, split)

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        got = parse_number(re.sub(r"[a-zA-Z ]+$", "", answer.strip()))
        want = parse_number(str(meta["answer"]))
        if got is None:
            return Check(False, "not_a_number", answer)
        return Check(got == want, "ok" if got == want else "wrong_value", answer)


class CommonsenseQA(_Loader):
    name = "commonsenseqa"
    description = (
        "Multiple-choice commonsense questions (CommonsenseQA layout: question, choices, answerKey)."
    )
    example_question = "Where would you find a jellyfish? (A) ocean (B) desert (C) ..."
    _LETTER_RE = re.compile(r"^\(?([A-Ea-e])\)?[.):]?(?:\s.*)?$", re.DOTALL)

    def load(self, path: str | Path, *, split: str = "validation") -> pl.DataFrame:
        frame = _read_rows(path, "validation" if split != "train" else "train")
        _need(frame, path, ["question", "choices", "answerKey"], "CommonsenseQA")
        rows = []
        for q, choices, key in frame.select("question", "choices", "answerKey").iter_rows():
            listed = " ".join(f"({lab}) {txt}" for lab, txt in zip(choices["label"], choices["text"]))
            question = (
                f"{q}\nChoices: {listed}\nGive the letter of the best choice in <answer> </answer> tags."
            )
            rows.append(
                {
                    "question": question,
                    "answer": key,
                    "meta": {"answer": key, "labels": list(choices["label"])},
                }
            )
        return _frame(self.name, rows, split)

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        m = self._LETTER_RE.match(answer.strip())
        if not m:
            return Check(False, "not_a_choice", answer)
        letter = m.group(1).upper()
        return Check(letter == meta["answer"], "ok" if letter == meta["answer"] else "wrong_value", answer)


class BoxedMath(_Loader):
    name = "math"
    description = "Competition math with a boxed final answer (MATH-500 layout: problem, answer or solution)."
    example_question = "What is the smallest positive integer n such that 17n is congruent to 1234 mod 7?"

    def load(self, path: str | Path, *, split: str = "test") -> pl.DataFrame:
        frame = _read_rows(path, "test")
        _need(frame, path, ["problem"], "MATH")
        if "answer" not in frame.columns and "solution" not in frame.columns:
            raise InputFormatError(f"{path}: the MATH layout needs an 'answer' or a 'solution' column.")
        rows = []
        for rec in frame.iter_rows(named=True):
            answer = rec.get("answer") or last_boxed(rec.get("solution") or "") or ""
            rows.append({"question": rec["problem"], "answer": answer, "meta": {"answer": answer}})
        return _frame(self.name, rows, split)

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        got, want = normalise_math(answer), normalise_math(str(meta["answer"]))
        if not got:
            return Check(False, "empty_answer", answer)
        if got == want:
            return Check(True, "ok", answer)
        a, b = parse_number(got), parse_number(want)
        if a is not None and b is not None and a == b:
            return Check(True, "ok", answer)
        return Check(False, "wrong_value", answer)
