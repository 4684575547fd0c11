"""The English dictionary of the word tasks, from the ``english-words`` package.

Verification accepts any lower-case alphabetic word of the ``web2`` list; generation
draws target words from the more common words found in both ``web2`` and ``gcide``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tracekit.tasks.base import Check


@lru_cache(maxsize=1)
def dictionary() -> frozenset[str]:
    """Every accepted word (lower case, ASCII letters only)."""
    from english_words import get_english_words_set

    return frozenset(w for w in get_english_words_set(["web2"], lower=True) if w.isascii() and w.isalpha())


@lru_cache(maxsize=16)
def common_words(length: int) -> tuple[str, ...]:
    """Sorted words of ``length`` letters present in both word lists (targets for generation)."""
    from english_words import get_english_words_set

    gcide = get_english_words_set(["gcide"], lower=True)
    return tuple(sorted(w for w in dictionary() & gcide if len(w) == length))


@lru_cache(maxsize=1)
def words_by_initial() -> dict[str, tuple[str, ...]]:
    """Common words of 3 to 8 letters grouped by first letter (for acronym puzzles)."""
    out: dict[str, list[str]] = {}
    for n in range(3, 9):
        for w in common_words(n):
            out.setdefault(w[0], []).append(w)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def normalise_word(text: str) -> str | None:
    """A single word, lower case, or None if the answer is not one word of letters."""
    word = text.strip().strip(".!\"'`*").strip().lower()
    return word if word.isascii() and word.isalpha() else None


def check_word(answer: str, meta: dict[str, Any], fits: Callable[[str], bool]) -> Check:
    """The word tasks' verifier: one word of ``meta["length"]`` letters that ``fits`` and is in the dictionary."""
    word = normalise_word(answer)
    if word is None:
        return Check(False, "not_a_word", answer)
    if len(word) != int(meta["length"]):
        return Check(False, "wrong_length", answer)
    if not fits(word):
        return Check(False, "wrong_letters", answer)
    if word not in dictionary():
        return Check(False, "not_in_dictionary", answer)
    return Check(True, "ok", answer)
