"""Repeats: drawing each format several times per problem, without repeating a trace.

``repeats: R`` draws every format up to R times per problem. A draw can only differ from an
earlier one in which samples it shows, in which order, and with which reflections; when a
problem's pool is small these run out, and further draws would only copy traces (with other
glue phrases). So:

* a trace that shows the same samples, in the same order, with the same reflections and the
  same final answer as a trace of an earlier repeat of its problem and format is dropped
  (counted ``traces/<format>:repeat_duplicate``);
* repeats are planned in groups of :data:`REPEAT_GROUP`; a (problem, format) whose group gave
  no new trace draws no more (its distinct traces have run out, or nearly), so memory and time
  follow the distinct traces, not R;
* R is at most :data:`MAX_REPEATS`.

Every decision depends only on the problem's own draws, never on the other problems of a batch.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from tracekit import counters
from tracekit.rearrange.config import MAX_REPEATS  # noqa: F401  (re-exported)

REPEAT_GROUP = 8


def content_keys(frame: pl.DataFrame) -> np.ndarray:
    """A 64-bit key per trace of what its text shows apart from phrases: problem, format,
    samples in order, reflections and final answer."""
    text = frame.select(
        pl.concat_str(
            [
                "problem_id",
                "format",
                pl.col("sample_ids").list.join(","),
                pl.col("reflection_ids").list.join(","),
                pl.col("final_answer").fill_null("\x00"),
            ],
            separator="|",
        )
    ).to_series()
    return text.hash(seed=0).to_numpy()


def new_traces(frame: pl.DataFrame, seen: np.ndarray, drops: Counter) -> tuple[np.ndarray, np.ndarray]:
    """Which traces of ``frame`` (in order) repeat neither ``seen`` (sorted keys) nor an earlier
    row: a boolean mask, and ``seen`` with the new keys. Dropped rows are counted in ``drops``."""
    keys = content_keys(frame)
    first = pl.Series(keys).is_first_distinct().to_numpy()
    keep = first & ~np.isin(keys, seen)
    if not keep.all():
        for fmt, n in Counter(frame["format"].filter(pl.Series(~keep)).to_list()).items():
            drops[counters.format_drop(fmt, "repeat_duplicate")] += n
            drops[counters.built(fmt)] -= n
    return keep, np.union1d(seen, keys[keep])
