"""Executors: where the model calls of ``run`` and ``eval`` happen (see :mod:`tracekit.executor.base`).

``base.py``: the protocol, :class:`Job`, :class:`Feed`, :class:`Build`; ``local.py``: this
process, one job at a time (several for a sampler that takes concurrent calls); ``ray.py``: Ray
Core actors, one sampler each; ``config.py``: the ``executor`` section of run and eval configs.
"""

from __future__ import annotations

from tracekit.executor.base import Build, Executor, Feed, Job, ModelInfo
from tracekit.executor.config import ExecutorConfig
from tracekit.executor.local import LocalExecutor


def make_executor(cfg: ExecutorConfig) -> Executor:
    """The executor ``cfg`` names (Ray is imported only for ``backend: ray``)."""
    if cfg.backend == "ray":
        from tracekit.executor.ray import RayExecutor

        return RayExecutor(cfg)
    return LocalExecutor(cfg.max_in_flight)


__all__ = [
    "Build",
    "Executor",
    "ExecutorConfig",
    "Feed",
    "Job",
    "LocalExecutor",
    "ModelInfo",
    "make_executor",
]
