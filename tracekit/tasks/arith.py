"""Safe exact arithmetic over model text: a bounded tokenizer and recursive-descent parser.

Grammar (``+ - * /``, parentheses, non-negative integer literals, unary minus)::

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
MAX_DIGITS = 12
MAX_TOKENS = 400
MAX_DEPTH = 40

MAX_BITS = 512  # numerator/denominator size past which a value is rejected

_TOKEN_RE = re.compile(r"[0-9]+|[-+*/()]|\S", re.ASCII)
_SYNONYMS = str.maketrans({"×": "*", "∗": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "x": "*", "X": "*"})
_OPS = frozenset("+-*/()")


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
    tokens = _TOKEN_RE.findall(text.translate(_SYNONYMS))
    if not tokens:
        raise ArithError("unparseable", "empty expression")
    if len(tokens) > MAX_TOKENS:
        raise ArithError("too_long", f"{len(tokens)} tokens")
    for tok in tokens:
        if tok in _OPS:
            continue
        if not tok.isdigit() or not tok.isascii():
            raise ArithError("unparseable", f"unexpected {tok!r}")
        if len(tok) > MAX_DIGITS:
            raise ArithError("literal_too_large", f"{len(tok)} digits")
    return tokens


class _Parser:
    """Recursive descent over tokens; values are (numerator, denominator>0) int pairs."""

    __slots__ = ("tokens", "i", "n", "literals")

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0
        self.n = len(tokens)
        self.literals: list[int] = []

    def expr(self, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise ArithError("too_deep", f"nesting deeper than {MAX_DEPTH}")
        a, b = self.term(depth)
        tokens = self.tokens
        while self.i < self.n and tokens[self.i] in ("+", "-"):
            op = tokens[self.i]
            self.i += 1
            c, d = self.term(depth)
            a, b = (a * d + c * b, b * d) if op == "+" else (a * d - c * b, b * d)
            a, b = _check(a, b)
        return a, b

    def term(self, depth: int) -> tuple[int, int]:
        a, b = self.factor(depth)
        tokens = self.tokens
        while self.i < self.n and tokens[self.i] in ("*", "/"):
            op = tokens[self.i]
            self.i += 1
            c, d = self.factor(depth)
            if op == "*":
                a, b = a * c, b * d
            else:
                if c == 0:
                    raise ArithError("division_by_zero")
                a, b = (a * d, b * c) if c > 0 else (-a * d, -b * c)
            a, b = _check(a, b)
        return a, b

    def factor(self, depth: int) -> tuple[int, int]:
        if self.i >= self.n:
            raise ArithError("unparseable", "unexpected end of expression")
        tok = self.tokens[self.i]
        self.i += 1
        if tok == "(":
            value = self.expr(depth + 1)
            if self.i >= self.n or self.tokens[self.i] != ")":
                raise ArithError("unparseable", "missing ')'")
            self.i += 1
            return value
        if tok == "-":
            if depth > MAX_DEPTH:
                raise ArithError("too_deep", "too many unary minus signs")
            a, b = self.factor(depth + 1)
            return -a, b
        if tok[0].isdigit():
            value = int(tok)
            self.literals.append(value)
            return value, 1
        raise ArithError("unparseable", f"unexpected {tok!r}")


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
    """Like :func:`evaluate`, but returns ``(numerator, denominator, literals)`` unreduced (faster)."""
    parser = _Parser(tokenize(text))
    a, b = parser.expr(0)
    if parser.i != parser.n:
        raise ArithError("unparseable", f"unexpected {parser.tokens[parser.i]!r} after the expression")
    return a, b, tuple(parser.literals)


def format_fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
