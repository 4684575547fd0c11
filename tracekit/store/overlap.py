"""Overlapping I/O with work: a background writer and a read-ahead iterator.

polars and pyarrow release the GIL while they decode, validate, compress and write, so
on a machine with a few cores reading the next batch, working on this one and writing
the last one can run at the same time. The import and the rearrangement both stream
through these two helpers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import polars as pl

from tracekit.store.tables import Store

T = TypeVar("T")


class BackgroundWriter:
    """Write parts of a store on one background thread, in submission order.

    polars and pyarrow release the GIL while they validate, compress and write, so a
    caller can prepare the next frame meanwhile. ``frame`` may also be a function that
    makes the frame: it then runs on the writer thread too (the last, heavy step of
    building it). At most one write is pending; an error in a write is raised at the next
    ``submit`` or on leaving the ``with`` block. ``store`` may also be a
    :class:`~tracekit.store.transaction.Transaction` (its parts then appear in its one commit).
    :attr:`written` counts the rows each table took (rows another writer committed first
    are not counted).
    """

    def __init__(self, store: Store) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.store = store
        self.written: Counter = Counter()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracekit-writer")
        self._pending = None

    def submit(self, table: str, frame: pl.DataFrame | Callable[[], pl.DataFrame]) -> None:
        self.wait()
        self._pending = self._pool.submit(self._write, table, frame)

    def _write(self, table: str, frame) -> int:
        if callable(frame):
            frame = frame()
        n = self.store.write(table, frame)
        self.written[table] += n
        return n

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let an in-flight write finish (atomically) before leaving
        finally:
            self._pool.shutdown(wait=True)


def prefetch(items: Iterable[T], *, name: str = "tracekit-reader") -> Iterator[T]:
    """Iterate ``items`` one step ahead on a background thread: the next read overlaps the caller's work.

    The read-side twin of :class:`BackgroundWriter` (polars and pyarrow release the GIL
    while they decode). At most one item waits; an error of the producer is raised where
    the caller iterates; stopping early stops (and closes) the producer.
    """
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        box.put((item, None), timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((done, None))
        except BaseException as exc:  # handed to the consumer
            box.put((done, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, exc = box.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to put, then let it finish
            try:
                box.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()
