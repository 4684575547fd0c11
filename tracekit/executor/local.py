"""The local executor: every job in this process, one at a time, in the order asked (today's loop)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tracekit.executor.base import Build, Job, ModelInfo
from tracekit.sampling.base import Sampler


class LocalExecutor:
    """Run each job on one sampler in this process as soon as it is asked for.

    Results come back in the order of the jobs, and a job is asked for only after the
    previous result was committed: a chunk's reflections run before the next chunk's samples.
    """

    def __init__(self) -> None:
        self.sampler: Sampler | None = None
        self._owned = False

    def start(self, build: Build) -> ModelInfo:
        self.sampler, self._owned = build(), build.owned
        return ModelInfo.of(self.sampler)

    def map(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Any]]:
        for job in jobs:
            yield job, job.work(job.plan, self.sampler)

    def close(self) -> None:
        sampler, self.sampler = self.sampler, None
        if sampler is not None and self._owned:
            sampler.close()
