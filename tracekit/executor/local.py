"""The local executor: every job in this process, on one sampler.

One job at a time, in the order asked (a chunk's reflections before the next chunk's
samples), unless the sampler can be called from several threads at once
(``concurrent_calls``, the http backend): then up to ``max_in_flight`` jobs run at once, each
on its own thread, and their results come back as they finish. The requests of all the jobs
in flight stream to the endpoints together, so an endpoint that finished its share of one
chunk starts on the next instead of waiting for the slowest request of the first.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from tracekit.executor.base import Build, Job, ModelInfo
from tracekit.sampling.base import Sampler

WAKE_SECONDS = 0.2  # a blocked driver looks for signals this often (a signal may land on another thread)


class LocalExecutor:
    """Run jobs on one sampler in this process (see the module docstring).

    A job is asked for only when there is room for it: with one job in flight, after the
    previous result was committed, so a chunk's reflections run before the next chunk's samples.
    """

    def __init__(self, max_in_flight: int = 1) -> None:
        self.max_in_flight = max_in_flight
        self.sampler: Sampler | None = None
        self._owned = False

    def start(self, build: Build) -> ModelInfo:
        self.sampler, self._owned = build(), build.owned
        return ModelInfo.of(self.sampler)

    @property
    def width(self) -> int:
        """Jobs run at once: ``max_in_flight`` for a sampler that takes concurrent calls, else 1."""
        return self.max_in_flight if getattr(self.sampler, "concurrent_calls", False) else 1

    def map(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Any]]:
        if self.width == 1:
            for job in jobs:
                yield job, job.work(job.plan, self.sampler)
            return
        yield from self._threaded(iter(jobs), self.width)

    def _threaded(self, source: Iterator[Job], width: int) -> Iterator[tuple[Job, Any]]:
        """Up to ``width`` jobs on daemon threads (an interrupted driver does not wait for them);
        the first error is raised on the driver, and the other jobs' results are dropped."""
        done: queue.SimpleQueue = queue.SimpleQueue()
        sampler, inflight = self.sampler, 0

        def run(job: Job) -> None:
            try:
                done.put((job, job.work(job.plan, sampler), None))
            except BaseException as exc:  # noqa: BLE001 - raised on the driver below
                done.put((job, None, exc))

        while True:
            while inflight < width and (job := next(source, None)) is not None:
                threading.Thread(target=run, args=(job,), daemon=True, name="tracekit-job").start()
                inflight += 1
            if not inflight:
                return
            while True:  # in slices, so that Ctrl-C reaches this (the main) thread at once
                try:
                    job, result, error = done.get(timeout=WAKE_SECONDS)
                    break
                except queue.Empty:
                    pass
            inflight -= 1
            if error is not None:
                raise error
            yield job, result

    def close(self) -> None:
        sampler, self.sampler = self.sampler, None
        if sampler is not None and self._owned:
            sampler.close()
