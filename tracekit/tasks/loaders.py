"""Existing datasets as tasks: GSM8K, CommonsenseQA and boxed-answer math (MATH-500 style).

Each is a preset of the generic dataset task (:class:`tracekit.tasks.dataset.DatasetTask`):
a fixed column layout (the dataset's public one) and a named checker
(:mod:`tracekit.tasks.checkers`). Each reads local parquet or jsonl files, or a
``save_to_disk`` folder (or, given an ``owner/name`` that is not a local path and where the
Hub is reachable, ``datasets.load_dataset`` of that dataset, e.g. ``openai/gsm8k``):

* GSM8K (``question``, ``answer`` ending ``#### 42``): checker ``number``, numbers compared
  exactly as rationals after removing ``$``, ``%``, thousands commas and trailing units;
* CommonsenseQA (``question``, ``choices`` {``label``, ``text``}, ``answerKey``): checker
  ``choice``, the choice letter, alone or as ``(B)`` / ``B)`` / ``B.``;
* math (``problem``, ``answer`` or a ``solution`` with ``\\boxed{}``): checker ``math``, the
  last ``\\boxed{...}`` (or the plain answer) normalised (spaces, ``\\left``/``\\right``,
  ``\\!``, ``\\dfrac``, ``^\\circ``, text units) and compared as strings, or as exact
  rationals when both sides are plain numbers or fractions (and by math-verify in a
  sandboxed worker where it is installed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracekit.errors import InputFormatError
from tracekit.tasks.checkers import last_boxed, normalise_math, parse_number
from tracekit.tasks.dataset import DatasetTask, need_columns

if TYPE_CHECKING:  # polars loads where a task builds or reads problems, not to list tasks
    import polars as pl


class _Preset(DatasetTask):
    knobs: dict[str, str] = {}
    fields = ("answer",)
    field_types = {"answer": "str|int", "labels": "list[str]"}


class GSM8K(_Preset):
    name = "gsm8k"
    description = "Grade-school math word problems (GSM8K layout: question, answer with '#### N')."
    example_question = (
        "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in all?"
    )
    checker = "number"
    layout = "GSM8K"
    hub_config = "main"

    def hub_split(self, split: str) -> str:
        return "test" if split == "test" else "train"

    def reference(self, value: Any, row: dict[str, Any]) -> Any:
        return str(value).rsplit("####", 1)[-1].strip()


class CommonsenseQA(_Preset):
    name = "commonsenseqa"
    description = (
        "Multiple-choice commonsense questions (CommonsenseQA layout: question, choices, answerKey)."
    )
    example_question = "Where would you find a jellyfish? (A) ocean (B) desert (C) ..."
    checker = "choice"
    layout = "CommonsenseQA"
    default_split = "validation"
    choices_built_in = True

    def hub_split(self, split: str) -> str:
        return "validation" if split != "train" else "train"

    def options(self, knobs: dict[str, Any]) -> dict[str, Any]:
        return super().options({"answer": "answerKey", "choices": "choices", **knobs})

    def row(self, rec: dict[str, Any], opts: dict[str, Any], path, i: int) -> dict[str, Any]:
        out = super().row(rec, opts, path, i)
        del out["meta"]["choices"]  # the letter only, as CommonsenseQA is scored
        return out


class BoxedMath(_Preset):
    name = "math"
    description = "Competition math with a boxed final answer (MATH-500 layout: problem, answer or solution)."
    example_question = "What is the smallest positive integer n such that 17n is congruent to 1234 mod 7?"
    checker = "math"
    layout = "MATH"

    def hub_split(self, split: str) -> str:
        return "test"

    def options(self, knobs: dict[str, Any]) -> dict[str, Any]:
        return super().options({"question": "problem", **knobs})

    def require_columns(self, frame: pl.DataFrame, path, opts: dict[str, Any]) -> None:
        need_columns(frame, path, ["problem"], self.layout)
        if "answer" not in frame.columns and "solution" not in frame.columns:
            raise InputFormatError(f"{path}: the MATH layout needs an 'answer' or a 'solution' column.")

    def reference(self, value: Any, row: dict[str, Any]) -> Any:
        return value or last_boxed(row.get("solution") or "") or ""


__all__ = ["GSM8K", "BoxedMath", "CommonsenseQA", "last_boxed", "normalise_math", "parse_number"]
