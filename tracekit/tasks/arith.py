"""Safe exact arithmetic over model text: a bounded tokenizer and recursive-descent parser.

Grammar (``+ - * /``, parentheses, non-negative integer literals, unary minus), evaluated
with two explicit stacks (operator precedence, left-associative), never by recursion::

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := NUMBER | "(" expr ")" | "-" factor

Values are :class:`fractions.Fraction`, so ``7 / 2 * 2 == 7`` exactly. Every literal
is recorded (for the multiset check of Countdown). Limits bound the work on hostile
input: the text length, the digits of a literal, the number of tokens and the nesting
depth; anything past them is rejected with a reason before any arithmetic is done.
Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from math import gcd

MAX_CHARS = 2_000
MAX_DIGITS = 12  # longest literal (see _LONG_LITERAL_RE)
MAX_TOKENS = 400
MAX_DEPTH = 40

MAX_BITS = 512  # numerator/denominator size past which a value is rejected

_TOKEN_RE = re.compile(r"[0-9]+|[-+*/()]", re.ASCII)
_VALID_RE = re.compile(r"[0-9+\-*/()\s]*", re.ASCII)
_BAD_CHAR_RE = re.compile(r"[^0-9+\-*/()\s]", re.ASCII)
_LONG_LITERAL_RE = re.compile(rf"[0-9]{{{MAX_DIGITS + 1},}}", re.ASCII)
_SYNONYMS = str.maketrans({"×": "*", "∗": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "x": "*", "X": "*"})


class ArithError(ValueError):
    """The text is not a well-formed, bounded expression; ``reason`` says why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Evaluated:
    value: Fraction
    literals: tuple[int, ...]


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_CHARS:
        raise ArithError("too_long", f"{len(text)} characters")
    text = text.translate(_SYNONYMS)
    if not _VALID_RE.fullmatch(text):
        bad = _BAD_CHAR_RE.search(text)
        raise ArithError("unparseable", f"unexpected {bad.group() if bad else text[:1]!r}")
    if _LONG_LITERAL_RE.search(text):
        raise ArithError("literal_too_large", f"more than {MAX_DIGITS} digits")
    tokens = _TOKEN_RE.findall(text)
    if not tokens:
        raise ArithError("unparseable", "empty expression")
    if len(tokens) > MAX_TOKENS:
        raise ArithError("too_long", f"{len(tokens)} tokens")
    return tokens


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "u": 3}


def _apply(op: str, nums: list[tuple[int, int]]) -> None:
    if op == "u":
        a, b = nums.pop()
        nums.append((-a, b))
        return
    c, d = nums.pop()
    a, b = nums.pop()
    if op == "+":
        r = (a * d + c * b, b * d)
    elif op == "-":
        r = (a * d - c * b, b * d)
    elif op == "*":
        r = (a * c, b * d)
    else:
        if c == 0:
            raise ArithError("division_by_zero")
        r = (a * d, b * c) if c > 0 else (-a * d, -b * c)
    nums.append(_check(*r))


def _evaluate_tokens(tokens: list[str]) -> tuple[int, int, list[int]]:
    """Operator-precedence evaluation with explicit stacks (no recursion, bounded depth)."""
    nums: list[tuple[int, int]] = []
    ops: list[str] = []
    literals: list[int] = []
    expect_operand = True
    depth = unary = 0
    for tok in tokens:
        if expect_operand:
            if tok == "(":
                depth += 1
                if depth > MAX_DEPTH:
                    raise ArithError("too_deep", f"nesting deeper than {MAX_DEPTH}")
                ops.append("(")
            elif tok == "-":
                unary += 1
                if unary > MAX_DEPTH:
                    raise ArithError("too_deep", "too many unary minus signs")
                ops.append("u")
            elif tok[0] in "0123456789":
                value = int(tok)
                literals.append(value)
                nums.append((value, 1))
                expect_operand = False
                unary = 0
            else:
                raise ArithError("unparseable", f"unexpected {tok!r}")
        elif tok == ")":
            while ops and ops[-1] != "(":
                _apply(ops.pop(), nums)
            if not ops:
                raise ArithError("unparseable", "unbalanced ')'")
            ops.pop()
            depth -= 1
        elif tok in _PREC:
            prec = _PREC[tok]
            while ops and ops[-1] != "(" and _PREC[ops[-1]] >= prec:
                _apply(ops.pop(), nums)
            ops.append(tok)
            expect_operand = True
        else:
            raise ArithError("unparseable", f"unexpected {tok!r} after a number")
    if expect_operand:
        raise ArithError("unparseable", "unexpected end of expression")
    while ops:
        op = ops.pop()
        if op == "(":
            raise ArithError("unparseable", "missing ')'")
        _apply(op, nums)
    a, b = nums[0]
    return a, b, literals


def _check(a: int, b: int) -> tuple[int, int]:
    if a.bit_length() > 64 or b.bit_length() > 64:
        g = gcd(a, b)
        a, b = a // g, b // g
        if a.bit_length() > MAX_BITS or b.bit_length() > MAX_BITS:
            raise ArithError("value_too_large")
    return a, b


def evaluate(text: str) -> Evaluated:
    """Evaluate an arithmetic expression exactly, or raise :class:`ArithError`.

    Examples
    --------
    >>> evaluate("(25 - 5) * 3 / 4")
    Evaluated(value=Fraction(15, 1), literals=(25, 5, 3, 4))
    >>> evaluate("1 / (2 - 2)")
    Traceback (most recent call last):
    ...
    tracekit.tasks.arith.ArithError: division_by_zero
    >>> evaluate("__import__('os')").value
    Traceback (most recent call last):
    ...
    tracekit.tasks.arith.ArithError: unparseable: unexpected '_'
    """
    a, b, literals = evaluate_raw(text)
    return Evaluated(value=Fraction(a, b), literals=literals)


def evaluate_raw(text: str) -> tuple[int, int, tuple[int, ...]]:
    """Like :func:`evaluate`, but returns ``(numerator, denominator, literals)`` unreduced (faster).

    Well-formed ASCII expressions whose values fit in 63 bits are read by the compiled
    fast path when it was built (:mod:`tracekit.tasks._arith`); everything else, errors
    included, by :func:`evaluate_python`. Both give identical results (property-tested).
    """
    if _native is not None:
        result = _native(text)
        if result is not None:
            return result
    return evaluate_python(text)


def evaluate_python(text: str) -> tuple[int, int, tuple[int, ...]]:
    """The pure-Python evaluator behind :func:`evaluate_raw` (the reference for the fast path)."""
    a, b, literals = _evaluate_tokens(tokenize(text))
    return a, b, tuple(literals)


def _load_native():
    try:
        from tracekit.tasks import _arith
    except ImportError:  # built without a C compiler: the Python evaluator does everything
        return None
    _arith.configure(MAX_CHARS, MAX_DIGITS, MAX_TOKENS, MAX_DEPTH)
    return _arith.evaluate


_native = _load_native()
