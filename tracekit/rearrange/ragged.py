"""Ragged arrays: consecutive runs of given lengths in one flat numpy array.

The planners and the layout keep variable-length groups (a problem's pool rows, a trace's
slots, a trace's text pieces) as one flat array plus the length of every run. These are
the few index helpers over that shape, defined once.

Examples
--------
>>> import numpy as np
>>> lengths = np.array([2, 0, 3])
>>> offsets(lengths).tolist()
[0, 2, 2, 5]
>>> starts(lengths).tolist()
[0, 2, 2]
>>> ragged_arange(lengths).tolist()
[0, 1, 0, 1, 2]
>>> ragged_cumsum(np.array([1, 1, 5, 1, 1]), lengths).tolist()
[1, 2, 5, 6, 7]
>>> take_runs(np.array([10, 11, 20, 21, 22]), np.array([2]), np.array([3])).tolist()
[20, 21, 22]
"""

from __future__ import annotations

import numpy as np


def offsets(lengths: np.ndarray) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]``: where each run starts, and the end (``len(lengths) + 1`` values, int64).

    >>> offsets(np.array([3, 1])).tolist()
    [0, 3, 4]
    """
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def starts(lengths: np.ndarray) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]`` without the end: where each run starts.

    >>> starts(np.array([3, 1])).tolist()
    [0, 3]
    """
    return offsets(lengths)[:-1]


def ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """``[0..l0-1, 0..l1-1, ...]``: every element's position within its own run.

    >>> ragged_arange(np.array([3, 1])).tolist()
    [0, 1, 2, 0]
    """
    return np.arange(int(lengths.sum())) - np.repeat(starts(lengths), lengths)


def ragged_cumsum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Running sums of ``values`` that restart at every run of the given lengths.

    >>> ragged_cumsum(np.array([1, 2, 3, 4]), np.array([3, 1])).tolist()
    [1, 3, 6, 4]
    """
    total = np.cumsum(values)
    before = np.concatenate([[0], total])[starts(lengths)]
    return total - np.repeat(before, lengths)


def take_runs(values: np.ndarray, run_starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The runs of ``values`` that start at ``run_starts`` with the given lengths, one after the other.

    >>> take_runs(np.array([5, 6, 7, 8]), np.array([2, 0]), np.array([2, 1])).tolist()
    [7, 8, 5]
    """
    return values[np.repeat(run_starts, lengths) + ragged_arange(lengths)]
