"""Countdown: combine the given numbers with + - * / to reach the target.

SkillFactory trains on 3 numbers and tests on 4, 5 and 6. Every generated problem is
solvable (a witness expression is stored) and no (sorted numbers, target) pair repeats
within a split or appears in two splits.

Accepted answers:

* an expression, ``(a + b) * c``, optionally followed by ``= target``;
* step lines, ``Step 1: a + b = x`` ... where each step may use the given numbers and
  earlier results, and the last result is the target.

Each given number may be used at most once (``require_all=True``: exactly once).
Arithmetic is exact (:mod:`tracekit.tasks.arith`); nothing is evaluated by Python.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from tracekit.tasks.arith import ArithError, evaluate_raw
from tracekit.tasks.base import Check, Task

_STEP_RE = re.compile(r"^\s*step\s*\d+\s*:\s*(.+?)\s*=\s*([^=]+?)\s*$", re.IGNORECASE | re.ASCII)
_HAS_OP_RE = re.compile(r"[-+*/×÷−]")


def _wrap(expr: str, prec: int, need: int) -> str:
    return f"({expr})" if prec < need else expr


def _combine(rng: random.Random, values: list[int]) -> tuple[int, str]:
    """Fold the numbers into one positive integer with random steps; return it and a witness.

    Items are (value, expression, precedence: 3 literal, 2 product, 1 sum), so the witness
    has only the parentheses it needs.
    """
    items = [(v, str(v), 3) for v in values]
    while len(items) > 1:
        rng.shuffle(items)
        (a, ea, pa), (b, eb, pb) = items.pop(), items.pop()
        ops = ["+", "*"]
        if a != b:
            ops.append("-")
        if b not in (0, 1) and a % b == 0:
            ops.append("/")
        op = rng.choice(ops)
        if op == "+":
            items.append((a + b, f"{ea} + {eb}", 1))
        elif op == "*":
            items.append((a * b, f"{_wrap(ea, pa, 2)} * {_wrap(eb, pb, 2)}", 2))
        elif op == "-":
            if a < b:
                (a, ea, pa), (b, eb, pb) = (b, eb, pb), (a, ea, pa)
            items.append((a - b, f"{ea} - {_wrap(eb, pb, 2)}", 1))
        else:
            items.append((a // b, f"{_wrap(ea, pa, 2)} / {_wrap(eb, pb, 3)}", 2))
    return items[0][0], items[0][1]


class Countdown(Task):
    name = "countdown"
    fields = ("numbers", "target")
    field_types = {"numbers": "list[int]", "target": "int", "require_all": "bool"}
    description = "Reach the target with + - * / over the given numbers (each used at most once)."
    knobs = {
        "n_numbers": "how many numbers (3 to 6; paper: train 3, test 4-6)",
        "max_number": "largest given number (default 100)",
        "max_target": "largest target (default 1000)",
        "require_all": "the answer must use every number (default false)",
    }

    def make_item(
        self,
        rng,
        n_numbers: int = 3,
        max_number: int = 100,
        max_target: int = 1000,
        require_all: bool = False,
    ) -> dict[str, Any]:
        from tracekit.errors import ConfigError

        if not 2 <= int(n_numbers) <= 8:
            raise ConfigError(f"countdown: n_numbers must be in [2, 8], got {n_numbers}")
        for _ in range(1000):
            numbers = [rng.randint(1, max_number) for _ in range(int(n_numbers))]
            target, expr = _combine(rng, numbers)
            if 10 <= target <= max_target and target not in numbers:
                break
        else:  # pragma: no cover - practically unreachable
            raise ConfigError("countdown: could not find a solvable problem")
        listed = ", ".join(map(str, numbers))
        question = (
            f"Using the numbers [{listed}], write an arithmetic expression that equals {target}. "
            f"You may use +, -, * and /, and each number at most once"
            f"{' (all of them must be used)' if require_all else ''}. "
            "Give your final answer in <answer> </answer> tags, for example <answer>(1 + 2) * 3</answer>."
        )
        return {
            "question": question,
            "answer": expr,
            "numbers": numbers,
            "target": target,
            "require_all": bool(require_all),
        }

    def dedup_key(self, item: dict[str, Any]) -> str:
        return f"{sorted(item['numbers'])}|{item['target']}"

    def fields_from_question(self, question: str) -> dict[str, Any] | None:
        """``numbers`` and ``target`` read from a Countdown question written elsewhere, or None.

        The numbers are the first bracketed list of integers, or else the integers listed
        after the word "numbers"; the target is the integer after "equals", "equal to",
        "make", "reach", "get" or "target" that follows them.

        Examples
        --------
        >>> cd = Countdown()
        >>> cd.fields_from_question("Using the numbers in the list [64, 41, 42], create an equation that equals 147.")
        {'numbers': [64, 41, 42], 'target': 147}
        >>> cd.fields_from_question("Puzzle 3: using the numbers 56, 54, 7, make 770. Use each number once.")
        {'numbers': [56, 54, 7], 'target': 770}
        >>> cd.fields_from_question("What is 12 * 3?") is None
        True
        """
        return _read_question(question)

    def demo_solution(self, meta: dict[str, Any], answer: str) -> str:
        return f"{answer} = {meta['target']}."

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        numbers, target = meta["numbers"], meta["target"]
        if type(target) is not int:
            target = int(target)
        require_all = bool(meta.get("require_all", False))
        if "\n" in answer:
            lines = [ln for ln in answer.splitlines() if ln.strip()]
            if any(_STEP_RE.match(ln) for ln in lines):
                return self._check_steps(lines, numbers, target, require_all, answer)
            if len(lines) > 1:
                return Check(False, "multiple_answers", answer)
        elif answer[:4].lower() == "step" and _STEP_RE.match(answer):
            return self._check_steps([answer], numbers, target, require_all, answer)
        lhs, _, rhs = answer.partition("=")
        if "=" in rhs:
            return Check(False, "unparseable", answer)
        try:
            num, den, literals = evaluate_raw(lhs)
            if rhs and not rhs.isspace():
                r_num, r_den, _ = evaluate_raw(rhs)
                if r_num * den != num * r_den:
                    return Check(False, "wrong_value", answer)
        except ArithError as exc:
            return Check(False, exc.reason, answer)
        if not _HAS_OP_RE.search(lhs):
            return Check(False, "target_echo" if literals == (target,) else "no_expression", answer)
        reason = _numbers_reason(literals, numbers, require_all)
        if reason:
            return Check(False, reason, answer)
        if num != target * den:
            return Check(False, "wrong_value", answer)
        return Check(True, "ok", answer)

    def _check_steps(self, lines, numbers, target, require_all, answer) -> Check:
        available = Counter(numbers)
        used_given: list[int] = []
        last = None
        given = Counter(numbers)
        for ln in lines:
            m = _STEP_RE.match(ln)
            if not m:
                return Check(False, "unparseable", answer)
            try:
                num, den, literals = evaluate_raw(m.group(1))
                r_num, r_den, _ = evaluate_raw(m.group(2))
            except ArithError as exc:
                return Check(False, exc.reason, answer)
            for lit in literals:
                if available[lit] <= 0:
                    return Check(False, "wrong_numbers", answer)
                available[lit] -= 1
                if given[lit] > 0:
                    given[lit] -= 1
                    used_given.append(lit)
            if num * r_den != r_num * den:
                return Check(False, "wrong_step", answer)
            if num % den == 0:
                available[num // den] += 1
            last = (num, den)
        if last is None:
            return Check(False, "unparseable", answer)
        if require_all and sum(given.values()) > 0:
            return Check(False, "unused_numbers", answer)
        if last[0] != target * last[1]:
            return Check(False, "wrong_value", answer)
        return Check(True, "ok", answer)


_LIST_RE = re.compile(r"\[\s*(\d{1,12}(?:\s*,\s*\d{1,12})+)\s*\]", re.ASCII)
_LISTED_RE = re.compile(
    r"\bnumbers\b[^\d\[]{0,40}?(\d{1,12}(?:\s*(?:,|\band\b)\s*\d{1,12})+)", re.ASCII | re.I
)
_TARGET_RE = re.compile(
    r"\b(?:equals?|equal\s+to|makes?|reach(?:es)?|gets?|target(?:\s+number)?(?:\s+(?:is|of))?)\s*:?\s*(-?\d{1,12})\b",
    re.ASCII | re.I,
)


def _read_question(question: str) -> dict[str, Any] | None:
    """See :meth:`Countdown.fields_from_question`."""
    found = _LIST_RE.search(question) or _LISTED_RE.search(question)
    if found is None:
        return None
    numbers = [int(n) for n in re.findall(r"\d+", found.group(1), re.ASCII)]
    target = _TARGET_RE.search(question, found.end())
    if target is None:
        return None
    return {"numbers": numbers, "target": int(target.group(1))}


def _numbers_reason(literals: tuple[int, ...], numbers: list[int], require_all: bool) -> str | None:
    left = list(numbers)
    for lit in literals:  # multiset containment; the lists are tiny
        try:
            left.remove(lit)
        except ValueError:
            return "wrong_numbers"
    if require_all and left:
        return "unused_numbers"
    return None
