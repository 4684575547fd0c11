"""Stable row ids: a short hash of the fields that define a row.

Ids never depend on Python's per-process hash seed, on polars' version or on row
order, so re-running the same work yields the same ids and the store can skip
rows it already holds.
"""

from __future__ import annotations

import json
from typing import Any

import xxhash


def stable_hash(*parts: Any) -> str:
    """80-bit hex digest (20 characters) of ``parts`` (xxh3-128 of a type-tagged encoding, truncated).

    Examples
    --------
    >>> h = stable_hash("countdown", "Use 1, 2 to make 3", "1 + 2")
    >>> len(h), all(c in "0123456789abcdef" for c in h)
    (20, True)
    >>> stable_hash("a", 1) == stable_hash("a", 1) != stable_hash("a", "1")
    True
    """
    payload = "\x1f".join(map(_encode, parts))
    return xxhash.xxh3_128_hexdigest(payload.encode("utf-8"))[:20]


def _encode(part: Any) -> str:
    # type-tagged so that "1" and 1 differ; plain values skip the (slow) JSON encoder
    if isinstance(part, str):
        return "s" + part
    if isinstance(part, bool):
        return "b1" if part else "b0"
    if isinstance(part, int):
        return "i" + str(part)
    if part is None:
        return "n"
    return "j" + json.dumps(part, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


def text_hash(text: str) -> str:
    """Fast 80-bit digest of one string (for ids defined by long texts)."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))[:20]


MAX_SEED = 2**63 - 1  # seeds are stored in Int64 columns (problems.seed, runs.seed)


def check_seed(seed: Any, where: str) -> None:
    """Raise a :class:`~tracekit.errors.ConfigError` unless ``seed`` is an integer in ``[0, 2**63 - 1]``.

    Examples
    --------
    >>> check_seed(0, "seed")
    >>> check_seed(2**63, "seed")
    Traceback (most recent call last):
    ...
    tracekit.errors.ConfigError: seed must be an integer from 0 to 9223372036854775807, got 9223372036854775808.
    Hint: seeds are stored as 64-bit signed integers; any smaller number draws as well.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        from tracekit.errors import ConfigError

        msg = (
            f"{where} must be an integer from 0 to {MAX_SEED}, got {seed!r}.\n"
            "Hint: seeds are stored as 64-bit signed integers; any smaller number draws as well."
        )
        raise ConfigError(msg)


def seed_for(*parts: Any) -> int:
    """A 63-bit integer seed derived from ``parts`` (for per-item random generators)."""
    return int(stable_hash(*parts)[:16], 16) >> 1


def problem_id(task: str, question: str, answer: str) -> str:
    """Id of a problem: its task, question text and ground-truth answer."""
    return "p-" + stable_hash(task, question, answer)


def hash_strings(values) -> list[str]:
    """:func:`text_hash` of every string of ``values`` (a polars Series or a list), in order."""
    h = xxhash.xxh3_128_hexdigest
    if not hasattr(values, "to_arrow"):
        return [h(v.encode("utf-8"))[:20] for v in values]
    # a polars Series: hash slices of its UTF-8 buffer in place (no Python object per string)
    import numpy as np
    import pyarrow as pa

    if values.null_count():
        raise ValueError("hash_strings: the values contain nulls")
    arrow = values.to_arrow()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if not pa.types.is_large_string(arrow.type):
        arrow = arrow.cast(pa.large_string())
    if len(arrow) == 0:
        return []
    ends = np.frombuffer(arrow.buffers()[1], dtype=np.int64)[
        arrow.offset : arrow.offset + len(arrow) + 1
    ].tolist()
    data = memoryview(arrow.buffers()[2])
    return [h(data[a:b])[:20] for a, b in zip(ends, ends[1:])]
