"""The executor seam: where the work of a run's plans is done.

A run and an eval go chunk by chunk through three steps: **plan** (a plain value saying what
is missing: :class:`~tracekit.sample.SamplePlan`, :class:`~tracekit.reflect.ReflectPlan`, an
eval's forcing plan), **work** (the only step that calls a model: ``work(plan, sampler)``, a
module-level function such as :func:`~tracekit.sample.draw_samples`) and **commit** (on the
driver, through the store). An :class:`Executor` owns the samplers and decides where the work
runs: :class:`~tracekit.executor.local.LocalExecutor` in this process, one job at a time (up to
``max_in_flight`` for a sampler that takes calls from several threads: the http backend);
:class:`~tracekit.executor.ray.RayExecutor` on Ray actors, several at once. The driver commits
each result as it comes back and is the only writer of the store, so a job done twice (a
redelivery after an actor died) never duplicates a row: ids decide.

``Executor.map`` asks its jobs for the next one whenever it has room, and again after every
result it yields; it ends when the jobs have nothing more and nothing is in flight. A
:class:`Feed` lets the driver add jobs while it iterates: the follow-ups of a committed result
(a chunk's reflections after its samples) go before the next chunk, so sampling of chunk k+1
overlaps reflection of chunk k wherever the executor runs more than one job at a time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from tracekit.sampling.base import Sampler


@dataclass(frozen=True)
class Job:
    """One unit of work: ``work(plan, sampler)``. ``key`` groups jobs of the same problems (a chunk):
    an executor sends them to the same replica when it can (prefix-cache hits). ``note`` is the
    driver's own (what to commit); only ``work`` and ``plan`` travel to a replica."""

    work: Callable[[Any, Sampler], Any]
    plan: Any
    key: Hashable = None
    note: Any = None


@dataclass(frozen=True)
class ModelInfo:
    """What the driver records about the model the replicas serve."""

    model_id: str
    model_revision: str | None
    source: str
    batch_invariant: bool | None = None  # a sample's text is independent of its batch (None: unknown)

    @classmethod
    def of(cls, sampler: Sampler) -> ModelInfo:
        source = getattr(sampler, "source", "generate")
        return cls(
            sampler.model_id, sampler.model_revision, source, getattr(sampler, "batch_invariant", None)
        )


@dataclass(frozen=True)
class Build:
    """How a replica gets its sampler: a backend name and its options (each replica builds its
    own and its executor closes it), or a ``ready`` sampler (tests, dry runs: used as it is in
    this process, copied to each Ray actor; its maker closes it)."""

    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    ready: Sampler | None = None

    def __call__(self) -> Sampler:
        if self.ready is not None:
            return self.ready
        from tracekit.sampling.registry import make_sampler

        return make_sampler(self.backend, **self.options)

    @property
    def owned(self) -> bool:
        """Whether the executor built (and so closes) the sampler."""
        return self.ready is None


class Executor(Protocol):
    """Where work runs (see the module docstring)."""

    def start(self, build: Build) -> ModelInfo:
        """Build the replicas' samplers; the model they serve."""
        ...

    def map(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Any]]:
        """Each job with its result, as the results come (not necessarily in order)."""
        ...

    def close(self) -> None:
        """Close the samplers the executor built and let its replicas go (idempotent)."""
        ...


class Feed:
    """Jobs for :meth:`Executor.map`: those the driver :meth:`push`\\ es first, then the next of
    ``source``. Running out is not final: after a push it yields again.

    Examples
    --------
    >>> feed = Feed(["chunk 0", "chunk 1"])
    >>> next(feed)
    'chunk 0'
    >>> feed.push("reflections of chunk 0")
    >>> list(feed)
    ['reflections of chunk 0', 'chunk 1']
    >>> feed.push("reflections of chunk 1")
    >>> list(feed)
    ['reflections of chunk 1']
    """

    def __init__(self, source: Iterable[Any]) -> None:
        self._source = iter(source)
        self._pushed: deque = deque()

    def push(self, *jobs: Any) -> None:
        self._pushed.extend(jobs)

    def __iter__(self) -> Feed:
        return self

    def __next__(self) -> Any:
        if self._pushed:
            return self._pushed.popleft()
        return next(self._source)


def timed(
    results: Iterable[tuple[Job, Any]], timings: dict[str, float], stage_of: Callable[[Job], str]
) -> Iterator[tuple[Job, Any]]:
    """``results`` as they come, the time spent waiting for each added to ``timings[stage_of(job)]``
    (a run's stage timings: the model's time goes to the stage whose result it was)."""
    it = iter(results)
    while True:
        t = time.perf_counter()
        try:
            job, result = next(it)
        except StopIteration:
            return
        stage = stage_of(job)
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - t, 3)
        yield job, result
