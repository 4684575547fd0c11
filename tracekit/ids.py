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
    """A fast 80-bit digest (the first 20 hex digits of xxh3-128 of its UTF-8 bytes) of every string of
    ``values`` (a polars Series or a list), in order: for ids defined by long texts."""
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


class HashSet:
    """A growing set of 64-bit hashes (row ids or contents hashed once) with vectorised lookups.

    The hashes live in sorted numpy runs whose sizes at least double from the newest to the
    oldest (a run is merged into the one before it when that one is not twice its size), so a
    lookup searches O(log n) runs, every hash is merged O(log n) times, and memory is 8 bytes a
    hash. Adding a batch costs O(batch log n), not O(everything added so far).

    Examples
    --------
    >>> import numpy as np
    >>> seen = HashSet()
    >>> seen.add(np.array([7, 3, 7], dtype=np.uint64))
    >>> seen.contains(np.array([3, 4, 7], dtype=np.uint64)).tolist(), len(seen)
    ([True, False, True], 2)
    """

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self.runs: list = []  # sorted, disjoint numpy uint64 arrays, largest first

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs)

    def contains(self, values):
        """A boolean numpy array: which of ``values`` (uint64) are in the set."""
        np = self._np
        found = np.zeros(len(values), dtype=bool)
        if not self.runs or not len(values):
            return found
        order = None if bool((values[1:] >= values[:-1]).all()) else np.argsort(values)
        keys = values if order is None else values[order]  # sorted keys: searches stay in cache (5x)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[at] == keys
        if order is not None:
            found[order] = found.copy()
        return found

    def add(self, values, *, sorted_unique: bool = False) -> None:
        """Add ``values`` (uint64); ``sorted_unique`` when they are sorted, unique and new (a value
        already in the set, such as a hash collision, then only makes ``len`` count it twice)."""
        np = self._np
        if not sorted_unique:
            values = np.unique(values)
            values = values[~self.contains(values)]
        if not len(values):
            return
        self.runs.append(values)
        while len(self.runs) > 1 and len(self.runs[-2]) < 2 * len(self.runs[-1]):
            newest = self.runs.pop()
            self.runs[-1] = np.sort(
                np.concatenate([self.runs[-1], newest]), kind="stable"
            )  # two runs: a merge
