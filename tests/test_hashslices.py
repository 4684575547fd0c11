"""Id hashes in slices of the hash space (tracekit.store.hashslices): every hash lands in its
slice once, whether the slices stay in memory or go to scratch files, and the files go away."""

import numpy as np
import polars as pl
import pytest

from tracekit.store import hashslices
from tracekit.store.hashslices import HashSlices, missing, repeats


@pytest.mark.parametrize("k", [1, 2, 7])
@pytest.mark.parametrize("flush_rows", [1, 5, 1_000_000])
def test_every_hash_lands_in_its_slice_once(monkeypatch, k, flush_rows):
    monkeypatch.setattr(hashslices, "FLUSH_ROWS", flush_rows)
    rng = np.random.default_rng(k * flush_rows)
    chunks = [rng.integers(0, 2**64 - 1, n, dtype=np.uint64) for n in (0, 1, 9, 40)]
    chunks.append(chunks[2][:3])  # repeats are kept
    with HashSlices(k) as hashes:
        for chunk in chunks:
            hashes.add(chunk)
        slices = [hashes.slice(p) for p in range(k)]
        folder = hashes._folder
        assert hashes.rows == sum(len(c) for c in chunks)
    for p, piece in enumerate(slices):
        assert piece.dtype == pl.UInt64
        assert all(h % k == p for h in piece.to_list())
    assert sorted(pl.concat(slices).to_list()) == sorted(np.concatenate(chunks).tolist())
    assert folder is None or not folder.exists()
    assert (folder is not None) == (k > 1 and flush_rows <= 50)


def test_missing_and_repeats():
    have = np.array([5, 1, 9], dtype=np.uint64)
    assert missing(np.array([1, 2, 9, 2], dtype=np.uint64), have).to_list() == [False, True, False, True]
    assert missing(np.array([3], dtype=np.uint64), np.empty(0, dtype=np.uint64)).to_list() == [True]
    assert repeats(np.array([4, 4, 4, 2, 2, 7], dtype=np.uint64)) == 3
