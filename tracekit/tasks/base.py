"""What every task provides, and the answer guards shared by all of them.

A task is one module with a frozen config, a seeded generator (item ``i`` depends only
on ``(seed, i)``), its question text and an exact verifier. :meth:`Task.score` is the
one entry point every stage uses: extract the final answer (see
:mod:`tracekit.extract`), apply the shared hacking guards, then the task's verifier.
"""

from __future__ import annotations

import json
import random
import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from tracekit.errors import ConfigError, TracekitError
from tracekit.extract import MAX_SCAN_CHARS, final_answer
from tracekit.ids import problem_id, seed_for

if TYPE_CHECKING:  # polars loads where a task builds or reads problems, not to list tasks
    import polars as pl

SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
MAX_ANSWER_CHARS = 2_000
_MULTI_RE = re.compile(r"\b(?:or|and)\b|;|\|", re.IGNORECASE)


def several_candidates(answer: str) -> bool:
    """``12 or 13``, ``a; b``, ``a | b``: one answer naming several candidates (``_MULTI_RE``).

    Most answers are plain ASCII arithmetic with no ``o``/``a``, so cheap membership tests
    settle them before the (slower, case-insensitive) regex runs.
    """
    if ";" in answer or "|" in answer:
        return True
    if (
        answer.isascii()
        and "o" not in answer
        and "a" not in answer
        and "O" not in answer
        and "A" not in answer
    ):
        return False
    return _MULTI_RE.search(answer) is not None


class Check(NamedTuple):
    """A verifier's result: correctness and a reason (``ok`` when correct).

    A named tuple rather than a dataclass: verifiers build one per answer, and GRPO
    rewards and data filters score millions of answers.
    """

    is_correct: bool
    reason: str
    answer: str | None = None


def split_of(key: str) -> str:
    """Which split a problem belongs to, from its content alone.

    Equal problems never land in two splits, whatever the seed.
    """
    u = (seed_for("split", key) % 10_000) / 10_000
    acc = 0.0
    for split, frac in SPLIT_FRACTIONS.items():
        acc += frac
        if u < acc:
            return split
    return "test"


class Task:
    """Base class of a task; subclasses set ``name``, ``knobs`` and implement the hooks."""

    name: ClassVar[str]
    description: ClassVar[str]
    knobs: ClassVar[dict[str, str]] = {}
    fields: ClassVar[tuple[str, ...]] = ()  # the problem fields its verifier reads (from ``meta``)
    # the type of each field: "int", "float", "str", "bool", "list[int]", "list[str]" ("a|b": either)
    field_types: ClassVar[dict[str, str]] = {}
    multi_answer_guard: ClassVar[bool] = True
    generated: ClassVar[bool] = True  # False: loads an existing dataset (a run config gives its path)
    # seconds one ``check`` may take (None: unbounded); a slower check is the verdict ``timeout``
    verifier_timeout: float | None = None

    # -- hooks ------------------------------------------------------------------
    def make_item(self, rng: random.Random, **knobs: Any) -> dict[str, Any]:
        """One problem's meta (task fields), ``question`` and ``answer``; deterministic in ``rng``."""
        raise NotImplementedError

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        """Verify an extracted, non-empty answer against the problem's meta."""
        raise NotImplementedError

    def dedup_key(self, item: dict[str, Any]) -> str:
        return item["question"]

    def fields_from_question(self, question: str) -> dict[str, Any] | None:
        """The verifier's fields read back from a question text written elsewhere (an import of
        the reference layout), or None when this task cannot read them (the default)."""
        return None

    def demo_solution(self, meta: dict[str, Any], answer: str) -> str:
        """A short worked solution for in-context demonstrations (before the answer tags)."""
        return f"The answer is {answer}."

    # -- shared -----------------------------------------------------------------
    def field_error(self, meta: dict[str, Any]) -> str | None:
        """What is wrong with the problem fields ``meta`` (a missing field or one of the wrong
        type, see ``field_types``), or None when the verifier can read them.

        Examples
        --------
        >>> from tracekit.tasks import get_task
        >>> get_task("countdown").field_error({"numbers": ["1", "2"], "target": 3})
        "field 'numbers' must be a list of integers, got ['1', '2']"
        >>> get_task("countdown").field_error({"numbers": [1, 2], "target": 3}) is None
        True
        """
        for field in self.fields:  # a loop, not a list: `tracekit score` checks every spelling of a line
            if field not in meta:
                missing = [f for f in self.fields if f not in meta]
                return f"missing field(s) {missing} (task {self.name!r} reads {list(self.fields)})"
        for name, kinds in self.field_types.items():
            if name in meta and not _has_types(meta[name], kinds):
                shown = repr(meta[name])
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                return f"field {name!r} must be {' or '.join(TYPE_WORDS[k] for k in kinds.split('|'))}, got {shown}"
        return None

    def _check_known(self, knobs: dict[str, Any]) -> None:
        unknown = sorted(set(knobs) - set(self.knobs))
        if unknown:
            msg = (
                f"task {self.name!r}: unknown option(s) {unknown}. Known: {sorted(self.knobs)}\n"
                "Hint: `tracekit tasks list` shows every task's options."
            )
            raise ConfigError(msg)

    def check_knobs(self, knobs: dict[str, Any]) -> None:
        """Raise a :class:`~tracekit.errors.ConfigError` unless ``knobs`` are this task's and
        make a problem (their values are checked by making one)."""
        self._check_known(knobs)
        if not self.generated:
            return
        try:
            self.make_item(random.Random(0), **knobs)
        except ConfigError as exc:
            raise ConfigError(f"{exc}.\nHint: `tracekit tasks list` shows every task's options.") from None
        except (TypeError, ValueError) as exc:
            msg = f"task {self.name!r}: invalid option value(s) {knobs}: {exc}.\n"
            raise ConfigError(msg + "Hint: `tracekit tasks list` shows every task's options.") from None

    def score(self, response: str | None, meta: dict[str, Any]) -> Check:
        """Extract the final answer of ``response`` and verify it. Never raises on model text.

        A response longer than the extraction window (:data:`tracekit.extract.MAX_SCAN_CHARS`)
        with no final answer inside the window is ``too_long``, not ``no_answer``: an answer
        followed by that much text is not read.
        """
        answer = final_answer(response)
        if answer is None and response is not None and len(response) > MAX_SCAN_CHARS:
            self.score_answer(None, meta)  # a problem without the verifier's fields still raises
            return Check(False, "too_long", None)
        return self.score_answer(answer, meta)

    def score_answer(self, answer: str | None, meta: dict[str, Any]) -> Check:
        """Verify an extracted answer. Only what model text can cause becomes a verdict: a problem
        lacking a field the verifier reads raises :class:`~tracekit.errors.InputFormatError`,
        and a verifier bug (``KeyError``, ``TypeError``...) raises as it is."""
        for field in self.fields:
            if field in meta:
                continue
            from tracekit.errors import InputFormatError

            missing = [f for f in self.fields if f not in meta]
            msg = (
                f"task {self.name!r}: the problem has no field(s) {missing}; its verifier reads "
                f"{list(self.fields)} (got {sorted(meta)}).\n"
                "Hint: the problem's meta (or the scored line) must hold the task's fields."
            )
            raise InputFormatError(msg)
        if answer is None:
            return Check(False, "no_answer", None)
        stripped = answer.strip()
        if not stripped:
            return Check(False, "empty_answer", answer)
        if len(stripped) > MAX_ANSWER_CHARS:
            return Check(False, "too_long", stripped[:100])
        if self.multi_answer_guard and several_candidates(stripped):
            return Check(False, "multiple_answers", stripped)
        try:
            if self.verifier_timeout is None:
                return self.check(stripped, meta)
            return _bounded_check(self, stripped, meta)
        except TracekitError:  # too many hung checks (a ConfigError is a ValueError too): not a verdict
            raise
        except (ValueError, ArithmeticError, RecursionError) as exc:  # a text that does not parse or compute
            return Check(False, "unparseable", f"{stripped[:80]} ({type(exc).__name__})")

    def wrong_answer(self, answer: str, meta: dict[str, Any]) -> str | None:
        """An answer derived from the right ``answer`` that this task's own verifier rejects
        (for demonstrations and dry runs), or None when no simple change makes it wrong.

        Examples
        --------
        >>> from tracekit.tasks import get_task
        >>> get_task("multiplication").wrong_answer("42", {"a": 6, "b": 7})
        '43'
        >>> get_task("letter_countdown").wrong_answer("part", {"letters": list("tarpxz"), "length": 4})
        'partx'
        >>> get_task("countdown").wrong_answer("3 * 4", {"numbers": [3, 4, 7], "target": 12})
        '3 * 4 + 1'
        """
        candidates = []
        number = parse_integer(answer)
        if number is not None:
            candidates.append(str(number + 1))
        candidates.append(answer[::-1])  # "trap" for "part", "4 * 3" for "3 * 4": often still right
        extra = [f"{answer}x", f"{answer} + 1"] if answer.isalpha() else [f"{answer} + 1", f"{answer}x"]
        candidates += [*extra, "0"]
        for candidate in candidates:
            if candidate.strip() and not self.score_answer(candidate, meta).is_correct:
                return candidate
        return None

    def generate(
        self, n: int, *, seed: int = 0, split: str = "train", start: int = 0, **knobs: Any
    ) -> pl.DataFrame:
        """``n`` problems of ``split`` as a ``problems`` table frame (the rows of
        :meth:`problem_rows`)."""
        import polars as pl

        from tracekit.schemas import polars_schema

        rows = self.problem_rows(n, seed=seed, split=split, start=start, **knobs)
        return pl.DataFrame(rows, schema=polars_schema("problems"))

    def problem_rows(
        self, n: int, *, seed: int = 0, split: str = "train", start: int = 0, **knobs: Any
    ) -> list[dict[str, Any]]:
        """``n`` problems of ``split``, each a dict of the ``problems`` table's columns.

        Item ``i`` is drawn from a generator seeded by ``(task, knobs, seed, i)``; items whose
        content belongs to another split (see :func:`split_of`) or repeats an earlier one
        are skipped, so splits never share a problem and a split has no duplicates.
        """
        self._check_known(knobs)
        if split not in SPLIT_FRACTIONS:
            raise ConfigError(f"split must be one of {list(SPLIT_FRACTIONS)}, got {split!r}")
        difficulty = json.dumps(knobs, sort_keys=True)
        rows, seen = [], set()
        i = start
        limit = start + max(100, n * 200)
        while len(rows) < n:
            if i >= limit:
                raise ConfigError(
                    f"task {self.name!r} {difficulty}: could only make {len(rows)} distinct {split} problems."
                )
            rng = random.Random(seed_for(self.name, difficulty, seed, i))
            item = self.make_item(rng, **knobs)
            key = self.dedup_key(item)
            if key not in seen and split_of(f"{self.name}|{key}") == split:
                seen.add(key)
                question, answer = item.pop("question"), item.pop("answer")
                rows.append(
                    {
                        "problem_id": problem_id(self.name, question, answer),
                        "task": self.name,
                        "question": question,
                        "answer": answer,
                        "split": split,
                        "difficulty": difficulty,
                        "seed": seed,
                        "index": i,
                        "meta": json.dumps(item, sort_keys=True),
                    }
                )
            i += 1
        return rows

    def example(self) -> str:
        """One question of the task at its default difficulty (``tracekit tasks list``)."""
        return self.problem_rows(1, seed=0)[0]["question"]


MAX_HUNG_CHECKS = 8  # checks still running past their timeout before a run stops
_HUNG: list[threading.Thread] = []


def _bounded_check(task: Task, answer: str, meta: dict[str, Any]) -> Check:
    """``task.check(answer, meta)`` bounded by ``task.verifier_timeout`` seconds.

    The check runs in a daemon thread (in-process: a user's verifier is the user's own code);
    one that does not return in time is the verdict ``timeout`` and is left to finish on its
    own. More than :data:`MAX_HUNG_CHECKS` such checks still running is an error rather than a
    pile of busy threads.
    """
    _HUNG[:] = [t for t in _HUNG if t.is_alive()]
    if len(_HUNG) >= MAX_HUNG_CHECKS:
        msg = (
            f"task {task.name!r}: {len(_HUNG)} verifier calls are still running past verifier_timeout "
            f"({task.verifier_timeout} s); stopping rather than starting more."
        )
        raise ConfigError(msg + "\nHint: fix the verifier's slow case, or raise verifier_timeout.")
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, task.check(answer, meta)))
        except BaseException as exc:  # handed to the caller as it is
            box.append((False, exc))

    worker = threading.Thread(target=run, name=f"tracekit-check-{task.name}", daemon=True)
    worker.start()
    worker.join(task.verifier_timeout)
    if not box:
        _HUNG.append(worker)
        return Check(False, "timeout", answer[:100])
    ok, value = box[0]
    if not ok:
        raise value
    return value


TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "list[int]": "a list of integers",
    "list[str]": "a list of strings",
}


# a value of exactly this type has the kind (a sufficient test; _has_type decides the rest)
_EXACT: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list[int]": int,
    "list[str]": str,
}


def _has_types(value: Any, kinds: str) -> bool:
    """Whether ``value`` has one of the types ``kinds`` (``"str|int"``): exact types first."""
    exact = _EXACT.get(kinds)
    if exact is not None:
        if kinds[0] == "l":
            if type(value) is list and all(type(v) is exact for v in value):
                return True
        elif type(value) is exact:
            return True
    return any(_has_type(value, k) for k in kinds.split("|"))


def _has_type(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    inner = kind[len("list[") : -1]
    return isinstance(value, list) and all(_has_type(v, inner) for v in value)


def parse_integer(text: str) -> int | None:
    """An integer written plainly (``1234``, ``1,234``, ``-12``), or None."""
    t = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    if t.startswith("+"):
        t = t[1:]
    neg = t.startswith("-")
    digits = t[1:] if neg else t
    if not digits or len(digits) > 40 or not (digits.isascii() and digits.isdigit()):
        return None
    return -int(digits) if neg else int(digits)
