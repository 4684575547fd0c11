"""Sets of 64-bit id hashes too big to hold at once, cut into slices of the hash space.

A check over every id of a big table (does a view name every row? how many rows does no view
name? which ids repeat?) compares ids slice by slice: the ids whose hash is ``p`` modulo ``k``
can only match ids in the same slice. :class:`HashSlices` takes hashes in chunks as they are read
(one pass over the data), writes each flush of the slices to files (one per slice) in local temporary
space (never the store), and hands the slices back one at a time, so a check holds one slice of
each side, however big the table: memory is flat, and the data is read once.

Hashes are polars ``UInt64`` series (numpy is not loaded: ``tracekit info`` starts faster).

Examples
--------
>>> import polars as pl
>>> with HashSlices(3) as hashes:
...     hashes.add(pl.Series(range(10), dtype=pl.UInt64))
...     [sorted(hashes.slice(p).to_list()) for p in range(3)]
[[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

FLUSH_ROWS = 1_000_000  # hashes held before they are written to the slice files (8 MB)


def slices_for(rows: int, slice_rows: int) -> int:
    """How many slices keep each one near ``slice_rows`` hashes when ``rows`` are cut."""
    return max(1, -(-rows // max(1, slice_rows)))


def hash_series(values) -> pl.Series:
    """``values`` (a series, an array or a list of 64-bit hashes) as a ``UInt64`` series."""
    if isinstance(values, pl.Series):
        return values.cast(pl.UInt64) if values.dtype != pl.UInt64 else values
    return pl.Series("hash", values, dtype=pl.UInt64)


class HashSlices:
    """64-bit hashes (polars ``UInt64`` series) in ``k`` slices (``hash % k``); one slice is
    kept in memory, more go to files in a temporary folder, removed on :meth:`close` (use ``with``)."""

    def __init__(self, k: int) -> None:
        self.k = max(1, int(k))
        self.rows = 0
        self._held: list[list[pl.Series]] = [[] for _ in range(self.k)]
        self._held_rows = 0
        self._flushes = 0
        self._folder: Path | None = None

    def __enter__(self) -> HashSlices:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, hashes) -> None:
        """Add a chunk of hashes (any order; repeats are kept)."""
        hashes = hash_series(hashes).rename("hash")
        self.rows += len(hashes)
        if self.k == 1:
            self._held[0].append(hashes)
            return
        which = (hashes % self.k).cast(pl.UInt32).rename("slice")
        for (p,), piece in pl.DataFrame([hashes, which]).partition_by("slice", as_dict=True).items():
            self._held[p].append(piece["hash"])
        self._held_rows += len(hashes)
        if self._held_rows >= FLUSH_ROWS:
            self._flush()

    def slice(self, p: int) -> pl.Series:
        """The hashes of slice ``p`` (those whose hash is ``p`` modulo ``k``), in no set order."""
        pieces = []
        if self._folder is not None:
            pieces = [pl.read_ipc(f)["hash"] for f in sorted(self._folder.glob(f"{p}-*.arrow"))]
        pieces += self._held[p]
        return pl.concat(pieces) if pieces else pl.Series("hash", [], dtype=pl.UInt64)

    def _flush(self) -> None:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tracekit-hashes-"))
        for p, pieces in enumerate(self._held):
            if pieces:
                pl.concat(pieces).to_frame().write_ipc(self._folder / f"{p}-{self._flushes:06d}.arrow")
                pieces.clear()
        self._flushes += 1
        self._held_rows = 0

    def close(self) -> None:
        """Remove the slice files."""
        self._held = [[] for _ in range(self.k)]
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def all_in(hashes: pl.Series, among: pl.Series) -> bool:
    """Whether every one of ``hashes`` occurs in ``among``."""
    return not missing(hashes, among).any()


def missing(hashes: pl.Series, among: pl.Series) -> pl.Series:
    """A mask of those of ``hashes`` that ``among`` lacks."""
    return ~hash_series(hashes).is_in(hash_series(among).implode())


def repeats(hashes: pl.Series) -> int:
    """How many of ``hashes`` repeat an earlier one."""
    hashes = hash_series(hashes)
    return len(hashes) - hashes.n_unique()


def frame_hashes(frame: pl.LazyFrame, column: str) -> Iterator[pl.Series]:
    """The 64-bit hashes of ``column`` of ``frame``, streamed in batches (never the whole column)."""
    for batch in frame.select(pl.col(column).hash(seed=0)).collect_batches():
        yield batch.to_series()


def count_missing(rows: pl.LazyFrame, among: pl.LazyFrame, column: str, *, k: int) -> int:
    """How many of ``rows`` have a ``column`` value that no row of ``among`` has, compared as
    64-bit hashes (a miss goes uncounted only on a hash collision) in ``k`` slices: each side
    is read once, and memory holds one slice of each."""
    with HashSlices(k) as have, HashSlices(k) as need:
        for chunk in frame_hashes(among, column):
            have.add(chunk)
        for chunk in frame_hashes(rows, column):
            need.add(chunk)
        return sum(int(missing(need.slice(p), have.slice(p)).sum()) for p in range(k))
