"""Sets of 64-bit id hashes too big to hold at once, cut into slices of the hash space.

A check over every id of a big table (does a view name every row? how many rows does no view
name? which ids repeat?) compares ids slice by slice: the ids whose hash is ``p`` modulo ``k``
can only match ids in the same slice. :class:`HashSlices` takes hashes in chunks as they are read
(one pass over the data), appends each chunk's slices to one file per slice in local temporary
space (never the store), and hands the slices back one at a time, so a check holds one slice of
each side, however big the table: memory is flat, and the data is read once.

Examples
--------
>>> import numpy as np
>>> with HashSlices(3) as hashes:
...     hashes.add(np.arange(10, dtype=np.uint64))
...     [hashes.slice(p).tolist() for p in range(3)]
[[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

FLUSH_ROWS = 1_000_000  # hashes held before they are appended to the slice files (8 MB)


def slices_for(rows: int, slice_rows: int) -> int:
    """How many slices keep each one near ``slice_rows`` hashes when ``rows`` are cut."""
    return max(1, -(-rows // max(1, slice_rows)))


class HashSlices:
    """64-bit hashes (numpy ``uint64``) in ``k`` slices (``hash % k``); one slice is kept in
    memory, more go to files in a temporary folder, removed on :meth:`close` (use ``with``)."""

    def __init__(self, k: int) -> None:
        self.k = max(1, int(k))
        self.rows = 0
        self._held: list[list[np.ndarray]] = [[] for _ in range(self.k)]
        self._held_rows = 0
        self._folder: Path | None = None

    def __enter__(self) -> HashSlices:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, hashes: np.ndarray) -> None:
        """Add a chunk of hashes (any order; repeats are kept)."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        self.rows += len(hashes)
        if self.k == 1:
            self._held[0].append(hashes)
            return
        which = hashes % np.uint64(self.k)
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(self.k + 1, dtype=np.uint64))
        ordered = hashes[order]
        for p in range(self.k):
            if bounds[p + 1] > bounds[p]:
                self._held[p].append(ordered[bounds[p] : bounds[p + 1]])
        self._held_rows += len(hashes)
        if self._held_rows >= FLUSH_ROWS:
            self._flush()

    def slice(self, p: int) -> np.ndarray:
        """The hashes of slice ``p`` (those whose hash is ``p`` modulo ``k``), in no set order."""
        pieces = list(self._held[p])
        if self._folder is not None and (self._folder / f"{p}").exists():
            pieces.insert(0, np.fromfile(self._folder / f"{p}", dtype=np.uint64))
        return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint64)

    def _flush(self) -> None:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tracekit-hashes-"))
        for p, pieces in enumerate(self._held):
            if pieces:
                with open(self._folder / f"{p}", "ab") as f:
                    for piece in pieces:
                        piece.tofile(f)
                pieces.clear()
        self._held_rows = 0

    def close(self) -> None:
        """Remove the slice files."""
        self._held = [[] for _ in range(self.k)]
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def all_in(hashes: np.ndarray, among: np.ndarray) -> bool:
    """Whether every one of ``hashes`` occurs in ``among``."""
    return not missing(hashes, among).any()


def missing(hashes: np.ndarray, among: np.ndarray) -> np.ndarray:
    """A mask of those of ``hashes`` that ``among`` lacks."""
    return (~pl.Series(hashes).is_in(pl.Series(among).implode())).to_numpy()


def repeats(hashes: np.ndarray) -> int:
    """How many of ``hashes`` repeat an earlier one."""
    return len(hashes) - pl.Series(hashes).n_unique()


def frame_hashes(frame: pl.LazyFrame, column: str) -> Iterator[np.ndarray]:
    """The 64-bit hashes of ``column`` of ``frame``, streamed in batches (never the whole column)."""
    for batch in frame.select(pl.col(column).hash(seed=0)).collect_batches():
        yield batch.to_series().to_numpy()


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
