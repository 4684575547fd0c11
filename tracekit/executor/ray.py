"""The Ray executor: work on Ray Core actors, one long-lived sampler (engine) each.

Each actor builds its sampler once (:class:`~tracekit.executor.base.Build`: from the model
config, so a vLLM engine per actor with ``num_gpus=gpus_per_replica``) and keeps it for every
stage of the command. The driver hands out jobs (a chunk's samples, a call's reflections:
batches of whole problems), sends a job to the actor that already served its chunk when that
actor has room (prefix-cache hits), keeps at most ``max_in_flight`` jobs per actor
(backpressure: nothing is planned further ahead), and takes results as they finish. A job
whose actor died is sent again (to another actor when one is alive; at most ``max_attempts``
times), and Ray restarts the actor (``max_restarts``), which rebuilds its sampler; an actor
lost more often than that gets no more jobs. Work is
at-least-once; rows are exactly-once because only the driver writes, and ids decide.

Ray Data's LLM processor is not used: it keeps only the first of ``n`` outputs and builds an
engine pool per stage, where tracekit reuses one engine for sampling and reflection.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from tracekit.errors import TracekitError, require
from tracekit.executor.base import Build, Job, ModelInfo
from tracekit.executor.config import ExecutorConfig


class ExecutorError(TracekitError):
    """The executor could not do the work (actors that keep dying, a cluster that cannot be reached)."""


class _Replica:
    """The actor's body (made a Ray actor class by :func:`_actor_class`)."""

    def __init__(self, build: Build) -> None:
        self.error: BaseException | None = None
        try:
            self.sampler = build()
        except Exception as exc:  # reported by info(): one clear error on the driver, no restart loop
            self.sampler, self.error = None, exc
        self.owned = build.owned

    def info(self) -> tuple[ModelInfo, int]:
        if self.error is not None:
            raise self.error
        return ModelInfo.of(self.sampler), os.getpid()

    def work(self, fn, plan):
        return fn(plan, self.sampler)

    def close(self) -> None:
        if self.sampler is not None and self.owned:
            self.sampler.close()
        self.sampler = None


_ACTOR: Any = None


def _actor_class(ray):
    global _ACTOR
    if _ACTOR is None:
        _ACTOR = ray.remote(_Replica)
    return _ACTOR


def vllm_options(options: dict[str, Any], gpus: float) -> dict[str, Any]:
    """The vllm backend's options for an actor holding ``gpus`` GPUs: above one, tensor parallel
    over them (with vLLM's own worker processes inside the actor) unless the engine options say
    otherwise.

    Examples
    --------
    >>> vllm_options({"model": "m"}, 2)["engine"]
    {'tensor_parallel_size': 2, 'distributed_executor_backend': 'mp'}
    >>> vllm_options({"model": "m", "engine": {"tensor_parallel_size": 1}}, 2)["engine"]
    {'tensor_parallel_size': 1, 'distributed_executor_backend': 'mp'}
    >>> vllm_options({"model": "m"}, 1)
    {'model': 'm'}
    """
    if gpus <= 1:
        return options
    engine = {
        "tensor_parallel_size": int(gpus),
        "distributed_executor_backend": "mp",
        **options.get("engine", {}),
    }
    return {**options, "engine": engine}


class RayExecutor:
    """Run jobs on ``cfg.replicas`` Ray actors (see the module docstring)."""

    def __init__(self, cfg: ExecutorConfig) -> None:
        self.cfg = cfg
        self.actors: list[Any] = []
        self.pids: list[int] = []
        self.requeued = 0  # jobs sent again after their actor died
        self._started_ray = False
        self._ray = None

    def _connect(self):
        ray = require("ray", "ray")
        if not ray.is_initialized():
            try:
                ray.init(address=self.cfg.address, include_dashboard=False, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.cfg.address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
                msg = f"executor: cannot start or join the Ray cluster at {where}: {exc}"
                raise ExecutorError(
                    msg + "\nHint: start it with `ray start --head`, then set executor.address: auto."
                ) from None
            self._started_ray = True
        self._ray = ray
        return ray

    def start(self, build: Build) -> ModelInfo:
        ray = self._connect()
        gpus = self.cfg.gpus(build.backend or "")
        if build.backend == "vllm":
            build = Build(build.backend, vllm_options(build.options, gpus))
        actor = _actor_class(ray).options(
            num_gpus=gpus, max_restarts=self.cfg.max_restarts, max_task_retries=0
        )
        self.actors = [actor.remote(build) for _ in range(self.cfg.replicas)]
        try:
            infos = ray.get([a.info.remote() for a in self.actors])
        except Exception as exc:
            self.close()
            raise _cause(ray, exc) from None
        self.pids = [pid for _, pid in infos]
        return infos[0][0]

    def map(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Any]]:
        ray = self._ray
        source = iter(jobs)
        load = [0] * len(self.actors)
        failures = [0] * len(self.actors)  # calls lost to each actor's deaths since it last returned
        gone = self.cfg.max_restarts + 1  # more losses than restarts: the actor is not coming back
        home: dict[Any, int] = {}  # chunk key -> the actor that served it last
        inflight: dict[Any, tuple[Job, int, int]] = {}  # ref -> job, actor, attempt
        again: deque = deque()  # (job, attempt, actor it failed on)

        def pick(job: Job, avoid: int | None) -> int | None:
            room = [
                i for i in range(len(self.actors)) if load[i] < self.cfg.max_in_flight and failures[i] < gone
            ]
            if not room:
                return None
            if home.get(job.key) in room and home.get(job.key) != avoid:
                return home[job.key]
            others = [i for i in room if i != avoid] or room
            return min(others, key=lambda i: (load[i], i))

        while True:
            while True:  # fill every actor up to max_in_flight
                if again:
                    job, attempt, avoid = again[0]
                else:
                    job = next(source, None)
                    if job is None:
                        break
                    attempt, avoid = 0, None
                    again.appendleft((job, attempt, avoid))
                i = pick(job, avoid)
                if i is None:
                    break
                again.popleft()
                ref = self.actors[i].work.remote(job.work, job.plan)
                inflight[ref] = (job, i, attempt)
                load[i] += 1
                home[job.key] = i
            if not inflight:
                if again:  # cannot happen: an empty pipeline always has room
                    raise ExecutorError("executor: jobs are waiting but no actor takes them")
                return
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            job, i, attempt = inflight.pop(ref)
            load[i] -= 1
            try:
                result = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                if attempt + 1 >= self.cfg.max_attempts:
                    msg = f"executor: a batch failed {attempt + 1} times because its actor died: {exc}"
                    raise ExecutorError(
                        msg
                        + "\nHint: see the actors' logs (ray logs); raise executor.max_attempts to retry more."
                    ) from None
                failures[i] += 1
                if all(f >= gone for f in failures):
                    msg = f"executor: every actor died more than max_restarts={self.cfg.max_restarts} times: {exc}"
                    raise ExecutorError(
                        msg + "\nHint: see the actors' logs (ray logs), then run again."
                    ) from None
                self.requeued += 1
                again.append((job, attempt + 1, i))
                continue
            except ray.exceptions.RayTaskError as exc:
                raise _cause(ray, exc) from None
            failures[i] = 0
            yield job, result

    def close(self) -> None:
        ray, actors, self.actors = self._ray, self.actors, []
        if ray is None:
            return
        if actors:
            try:  # free each engine's memory before the actor goes
                ray.get([a.close.remote() for a in actors], timeout=60)
            except Exception:  # a dead or stuck actor: killing it frees its memory too
                pass
            for a in actors:
                ray.kill(a, no_restart=True)
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _cause(ray, exc: BaseException) -> BaseException:
    """The error a replica raised (a tracekit error stays one clear error line on the driver)."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, BaseException):
        return cause
    if isinstance(exc, TracekitError):
        return exc
    return ExecutorError(f"executor: the Ray actors did not start: {exc}")
