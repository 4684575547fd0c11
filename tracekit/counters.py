"""The run report's counters: one ``Counter`` keyed ``"<what>/<reason>"``, and the one place
that says what its keys mean.

* :func:`seen` (``"<table>/total"``) counts every row a stage looked at, :func:`passed`
  (``reflections/kept``, ``samples/survived``, ``problems/usable``) the rows that went on;
* :func:`drop` (``"<table>/<reason>"``; trace formats ``"traces/<format>:<reason>"``) counts
  rows left out, by reason;
* :func:`built` (``"built/<format>"``) counts the traces a rearrangement laid out, and
  :data:`WRITTEN` the traces the store took.

The counter is stored as ``runs.drops_json``; readers split it with :func:`drops` and
:func:`built_counts` rather than matching suffixes themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

PASSED = ("total", "kept", "survived", "usable")  # the reasons that count rows seen or passed
WRITTEN = "traces/written"
_BUILT = "built/"


def seen(table: str) -> str:
    """Every row of ``table`` a stage looked at."""
    return f"{table}/total"


def passed(table: str, word: str) -> str:
    """Rows of ``table`` that went on (``word``: kept, survived, usable)."""
    if word not in PASSED[1:]:
        raise ValueError(f"counters: {word!r} is not one of {PASSED[1:]}")
    return f"{table}/{word}"


def drop(table: str, reason: str) -> str:
    """Rows of ``table`` left out for ``reason``."""
    return f"{table}/{reason}"


def format_drop(fmt: str, reason: str) -> str:
    """Problems (or traces) a trace format left out for ``reason``."""
    return f"traces/{fmt}:{reason}"


def built(fmt: str) -> str:
    """Traces of format ``fmt`` laid out."""
    return f"{_BUILT}{fmt}"


def is_drop(key: str) -> bool:
    """Does ``key`` count rows left out (not rows seen, passed, built or written)?"""
    return not (key.startswith(_BUILT) or key == WRITTEN or key.rpartition("/")[2] in PASSED)


def drops(counts: Mapping[str, int]) -> dict[str, int]:
    """The non-zero drops of ``counts``, sorted by key.

    >>> drops({"samples/total": 9, "samples/truncated": 2, "built/0C": 4, "traces/written": 4, "x/none": 0})
    {'samples/truncated': 2}
    """
    return {k: v for k, v in sorted(counts.items()) if v and is_drop(k)}


def built_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Traces laid out per format (non-zero), sorted by format."""
    return {k[len(_BUILT) :]: v for k, v in sorted(counts.items()) if k.startswith(_BUILT) and v}
