"""The English dictionary of the word tasks, from the ``english-words`` package.

Verification accepts any lower-case alphabetic word of the ``web2`` list; generation
draws target words from the more common words found in both ``web2`` and ``gcide``.
Loading those lists takes about half a second, so the common words are also kept in the
user's cache folder (``$XDG_CACHE_HOME/tracekit``, else ``~/.cache/tracekit``), under a name
that changes with the installed lists: ``tracekit tasks list`` and a run's problem
generation then read one small file. The cache is only ever a copy: when it cannot be read
or written the lists are read again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from tracekit.tasks.base import Check


@lru_cache(maxsize=1)
def dictionary() -> frozenset[str]:
    """Every accepted word (lower case, ASCII letters only)."""
    from english_words import get_english_words_set

    return frozenset(w for w in get_english_words_set(["web2"], lower=True) if w.isascii() and w.isalpha())


def common_words(length: int) -> tuple[str, ...]:
    """Sorted words of ``length`` letters present in both word lists (targets for generation)."""
    return _common_by_length().get(length, ())


@lru_cache(maxsize=1)
def _common_by_length() -> dict[int, tuple[str, ...]]:
    cache = _cache_file()
    try:
        return {int(n): tuple(ws) for n, ws in json.loads(cache.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # no cache yet, or an unreadable one: read the lists
    from english_words import get_english_words_set

    gcide = get_english_words_set(["gcide"], lower=True)
    out: dict[int, list[str]] = {}
    for w in sorted(dictionary() & gcide):
        out.setdefault(len(w), []).append(w)
    try:  # best effort, atomic: a reader never sees half a file
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass
    return {n: tuple(ws) for n, ws in out.items()}


def _cache_file() -> Path:
    """The cache's name: it changes with the installed word lists (their sizes and times)."""
    import importlib.util

    spec = importlib.util.find_spec("english_words")  # found without importing it
    data = Path(spec.origin).parent / "data" if spec and spec.origin else None
    stamp = (
        [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in sorted(data.iterdir())] if data else []
    )
    from tracekit.ids import stable_hash

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tracekit"
    return root / f"common-words-{stable_hash(stamp)[:16]}.json"


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
