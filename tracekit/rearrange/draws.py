"""Counter-based random draws: every number is a pure function of a key and counters.

Rearrangement draws millions of small random choices. Instead of a generator object
per problem (whose state must be advanced in order), each draw is computed directly as
``uniform(key, trace, stream, j)``: a 64-bit key per (seed, problem, format, repeat)
mixed with three counters by the splitmix64 finaliser. Draws are therefore

* **vectorised**: whole numpy arrays of draws at once, no Python loop per choice;
* **order-free**: a draw never depends on which other draws were made before it, on
  other problems in the same batch, or on how a store was split into buckets;
* **reproducible**: the same key and counters give the same number on every platform.

Streams name what a draw is for (the last sample, the other samples, a reflection, a
glue phrase, ...), so changing one kind of choice never shifts another.

Examples
--------
>>> import numpy as np
>>> k = problem_key(0, "p-1", "*C_full", 0)
>>> u = uniform(np.array([k, k]), 0, S_LAST, np.array([0, 1]))
>>> bool(((0 <= u) & (u < 1)).all() and u[0] != u[1])
True
>>> bool((uniform(np.array([k]), 0, S_LAST, 0) == u[0]).all())
True
"""

from __future__ import annotations

import numpy as np
import xxhash

# streams: one per kind of choice
S_N, S_LAST, S_OTHERS, S_SECOND, S_INSERT, S_VARIANT, S_SHUFFLE, S_NNEG = range(8)
S_REFLECTION, S_GLUE, S_ENDING, S_TAIL = range(16, 20)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


def problem_key(seed: int, problem_id: str, fmt: str, repeat: int) -> int:
    """The 64-bit key of one (seed, problem, format, repeat): every draw of its traces derives from it."""
    return xxhash.xxh3_64_intdigest(f"{seed}|{problem_id}|{fmt}|{repeat}".encode())


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniform(key, trace, stream: int, j) -> np.ndarray:
    """Uniform floats in ``[0, 1)``, one per element of the broadcast inputs.

    ``key`` is a problem key (uint64), ``trace`` the ordinal of the trace within its
    (problem, format, repeat) (< 2**24), ``stream`` the kind of draw (< 256) and ``j`` the
    index of the draw within that trace and stream (< 2**32).
    """
    with np.errstate(over="ignore"):
        counter = (
            (np.asarray(trace, dtype=np.uint64) << np.uint64(40))
            | np.uint64(stream << 32)
            | np.asarray(j, dtype=np.uint64)
        )
        x = _mix(np.asarray(key, dtype=np.uint64) ^ _mix(counter + _GOLDEN))
    return (x >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def below(u: np.ndarray, n) -> np.ndarray:
    """``floor(u * n)`` as int64: a uniform index in ``[0, n)`` for each draw ``u``."""
    return np.minimum((u * n).astype(np.int64), np.asarray(n, dtype=np.int64) - 1)
