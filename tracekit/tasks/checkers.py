"""Named answer checkers for dataset tasks: ``exact``, ``number``, ``choice``, ``math``, ``regex``.

Each checker takes the extracted final answer (a non-empty string) and the problem's fields
(``meta``: ``answer``, the reference, a string or a list of accepted strings; ``labels`` and
``choices`` for ``choice``; ``pattern`` for ``regex``) and returns a :class:`Check`. None of
them evaluates model text: numbers are read by a strict pattern into exact
:class:`~fractions.Fraction` values, math answers are normalised as strings (and, where the
optional ``math-verify`` is installed, compared in a sandboxed worker process, see
:mod:`tracekit.tasks.mathverify`), and a user's pattern runs under the ``regex`` package's
timeout.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from tracekit.tasks.base import Check, several_candidates

REGEX_TIMEOUT = 1.0  # seconds one user pattern may take on one answer

_NUMBER_RE = re.compile(
    r"^[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:/\d+)?$|^[-+]?\d+/[-+]?\d+$", re.ASCII
)
_UNITS_RE = re.compile(r"(?<=[\d.])\s*[A-Za-z][A-Za-z ]*$")


def parse_number(text: str) -> Fraction | None:
    """An exact rational from a plainly written number, or None.

    Accepts ``42``, ``-3.5``, ``1.50``, ``1,234`` (commas only between groups of three
    digits), ``3/4``, a leading ``$`` and a trailing ``%``, ``.`` or unit words
    (``12 apples``). Nothing is evaluated: a strict pattern, then :class:`~fractions.Fraction`.

    Examples
    --------
    >>> parse_number("1,234"), parse_number("1.50"), parse_number("-3/4"), parse_number("$12")
    (Fraction(1234, 1), Fraction(3, 2), Fraction(-3, 4), Fraction(12, 1))
    >>> parse_number("12,34") is None, parse_number("1/0") is None, parse_number("2**8") is None
    (True, True, True)
    """
    t = text.strip().rstrip(".").strip()
    if len(t) > 80:
        return None
    t = _UNITS_RE.sub("", t)
    t = t.removesuffix("%")
    t = "-" + t[2:] if t.startswith("-$") else t.removeprefix("$")
    t = t.replace(" ", "")
    if not t or not _NUMBER_RE.match(t):
        return None
    try:
        return Fraction(t.replace(",", ""))
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


def normalise_text(text: str) -> str:
    """A string compared by ``exact``: Unicode NFKC, case-folded, inner whitespace collapsed,
    surrounding quotes, markdown bold and a final ``.`` removed.

    Examples
    --------
    >>> normalise_text('  **New   York.** '), normalise_text('"Paris"')
    ('new york', 'paris')
    """
    t = unicodedata.normalize("NFKC", text).casefold().strip()
    t = t.strip("*").strip()
    t = re.sub(r"\s+", " ", t).rstrip(".").strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'`":
        t = t[1:-1].strip().rstrip(".").strip()
    return t


def _references(meta: dict[str, Any]) -> list[str]:
    ref = meta["answer"]
    return [str(r) for r in ref] if isinstance(ref, list) else [str(ref)]


def _verdict(ok: bool, answer: str) -> Check:
    return Check(True, "ok", answer) if ok else Check(False, "wrong_value", answer)


def check_exact(answer: str, meta: dict[str, Any]) -> Check:
    """Right when the normalised answer equals a normalised reference (see :func:`normalise_text`).

    Examples
    --------
    >>> check_exact("new york", {"answer": ["New York", "NYC"]}).is_correct
    True
    """
    got = normalise_text(answer)
    return _verdict(any(got == normalise_text(r) for r in _references(meta)), answer)


def check_number(answer: str, meta: dict[str, Any]) -> Check:
    """Right when the answer and a reference are the same exact rational (see :func:`parse_number`).

    Examples
    --------
    >>> check_number("0.75", {"answer": "3/4"}).is_correct, check_number("three", {"answer": "3"}).reason
    (True, 'not_a_number')
    """
    if several_candidates(answer):  # "12 or 13": a hedge, not a number with a unit word
        return Check(False, "multiple_answers", answer)
    got = parse_number(answer)
    if got is None:
        return Check(False, "not_a_number", answer)
    return _verdict(any(got == parse_number(r) for r in _references(meta)), answer)


_LETTER_RE = re.compile(r"^\(?([A-Za-z])\)?[.):]?(?:\s.*)?$", re.DOTALL)


def check_choice(answer: str, meta: dict[str, Any]) -> Check:
    """Right when the answer names the right choice: its label (``B``, ``(B)``, ``B)``, ``B.``,
    ``B) text``) or, where the problem lists the choice texts (``choices``), its text.

    Examples
    --------
    >>> meta = {"answer": "B", "labels": ["A", "B"], "choices": ["sky", "sea"]}
    >>> check_choice("(B)", meta).is_correct, check_choice("The sea", meta).reason, check_choice("sea", meta).is_correct
    (True, 'not_a_choice', True)
    """
    labels = [str(label) for label in meta.get("labels") or []]
    m = _LETTER_RE.match(answer.strip())
    if m and m.group(1).upper() in {label.upper() for label in labels}:
        return _verdict(m.group(1).upper() == str(meta["answer"]).upper(), answer)
    texts = meta.get("choices") or []
    got = normalise_text(answer)
    for label, text in zip(labels, texts):
        if got == normalise_text(str(text)):
            return _verdict(label.upper() == str(meta["answer"]).upper(), answer)
    return Check(False, "not_a_choice", answer)


def check_math(answer: str, meta: dict[str, Any]) -> Check:
    """Right when the answer's last ``\\boxed{}`` (or the answer) equals a reference after LaTeX
    normalisation, as strings or exact rationals; else, where ``math-verify`` is installed,
    when it finds them equal in its sandboxed worker (a worker that runs out of time is a
    ``timeout``).

    Examples
    --------
    >>> check_math("\\\\boxed{\\\\dfrac{1}{2}}", {"answer": "0.5"}).is_correct
    True
    """
    from tracekit.tasks import mathverify

    got = normalise_math(answer)
    if not got:
        return Check(False, "empty_answer", answer)
    refs = _references(meta)
    for ref in refs:
        want = normalise_math(ref)
        if got == want:
            return Check(True, "ok", answer)
        a, b = parse_number(got), parse_number(want)
        if a is not None and b is not None and a == b:
            return Check(True, "ok", answer)
    if mathverify.available():
        for ref in refs:
            same = mathverify.equivalent(ref, answer)
            if same is None:
                return Check(False, "timeout", answer)
            if same:
                return Check(True, "ok", answer)
    return Check(False, "wrong_value", answer)


def compile_pattern(pattern: str):
    """``pattern`` compiled by the ``regex`` package (which bounds a match by a timeout)."""
    from tracekit.errors import require

    regex = require("regex", "math")  # a transformers dependency; listed in the `math` extra too
    return regex.compile(pattern)


_COMPILED: dict[str, Any] = {}


def check_regex(answer: str, meta: dict[str, Any]) -> Check:
    """Right when the answer matches the problem's ``pattern`` whole; a match that takes longer than
    :data:`REGEX_TIMEOUT` seconds is a ``timeout`` (the ``regex`` package's bound, no signals).

    Examples
    --------
    >>> check_regex("colour", {"answer": "color", "pattern": "colou?r"}).is_correct
    True
    """
    pattern = meta["pattern"]
    compiled = _COMPILED.get(pattern)
    if compiled is None:
        if len(_COMPILED) > 4096:
            _COMPILED.clear()
        compiled = _COMPILED[pattern] = compile_pattern(pattern)
    try:
        ok = compiled.fullmatch(answer, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        return Check(False, "timeout", answer)
    return _verdict(ok, answer)


CHECKERS: dict[str, Callable[[str, dict[str, Any]], Check]] = {
    "exact": check_exact,
    "number": check_number,
    "choice": check_choice,
    "math": check_math,
    "regex": check_regex,
}
