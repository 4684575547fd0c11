"""The ``executor`` section of run and eval configs (one frozen dataclass, checked on construction)."""

from __future__ import annotations

from dataclasses import dataclass

from tracekit.errors import ConfigError

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorConfig:
    """backend: local (every model call in this process, one sampler: the default) | ray (Ray Core
    actors, each building its own sampler once from the model config and keeping it for the sample
    and reflect stages); address: the Ray cluster to join (``auto``: the cluster this machine belongs
    to, started with ``ray start``; ``ray://HOST:10001``: a remote cluster through Ray Client; unset:
    ``RAY_ADDRESS`` if set, else a cluster of this machine alone, started for the run and stopped
    after it); replicas: actors (engines); gpus_per_replica: GPUs each actor holds (unset: 1 for
    the vllm backend, else 0; above 1, vLLM's ``tensor_parallel_size`` unless the engine options
    set it); max_in_flight: batches queued per actor (backpressure: the driver plans no further
    ahead; with backend local, the jobs run at once on a backend that takes concurrent calls, the
    http backend, so its endpoints never wait for the tail of a batch); max_attempts: times one
    batch is tried when its actor dies; max_restarts: times Ray restarts a dead actor (which
    rebuilds its sampler). None of these change a row: the tables of
    one config and seed are the same on every executor."""

    backend: str = "local"
    address: str | None = None
    replicas: int = 1
    gpus_per_replica: float | None = None
    max_in_flight: int = 2
    max_attempts: int = 3
    max_restarts: int = 3

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            from tracekit.errors import unknown_name

            hint = "executor.backend is local (one process) or ray (Ray actors)."
            raise unknown_name("executor backend", self.backend, list(BACKENDS), hint=hint)
        for name, low in (("replicas", 1), ("max_in_flight", 1), ("max_attempts", 1), ("max_restarts", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                msg = f"executor.{name} must be an integer >= {low}, got {value!r}."
                raise ConfigError(msg + f"\nHint: set executor.{name}: {max(low, 1)} or more.")
        gpus = self.gpus_per_replica
        if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or gpus < 0):
            msg = f"executor.gpus_per_replica must be a number >= 0, got {gpus!r}."
            raise ConfigError(msg + "\nHint: 1 for one GPU per engine, 2 or more for tensor parallelism.")
        if self.backend == "local" and (self.replicas != 1 or self.address is not None):
            msg = "executor.replicas and executor.address need executor.backend: ray."
            raise ConfigError(msg + "\nHint: add backend: ray to the executor section (or --executor ray).")

    def gpus(self, model_backend: str) -> float:
        """GPUs per actor for a model served by ``model_backend``."""
        if self.gpus_per_replica is not None:
            return float(self.gpus_per_replica)
        return 1.0 if model_backend == "vllm" else 0.0
