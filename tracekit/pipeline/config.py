"""Run configuration: frozen dataclasses loaded strictly from YAML.

Every field is documented once, here. An unknown key fails and lists the valid ones;
defaults are deterministic (``seed: 0``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit.configfile import check_planned, from_mapping, read_yaml_mapping
from tracekit.errors import ConfigError
from tracekit.executor.config import ExecutorConfig
from tracekit.ids import check_seed, stable_hash
from tracekit.prompts import load_variants, pick_variants
from tracekit.rearrange.config import RearrangeConfig
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.config import ModelConfig
from tracekit.tasks import check_task_config


@dataclass(frozen=True)
class TaskSpec:
    """name: a registered task, path/to/file.py:ClassName or package.module:ClassName (see
    docs/custom-tasks.md); n: problems to make (or load); split: train | validation | test;
    options: the task's difficulty knobs (see `tracekit tasks list`; the `dataset` task: its
    column mapping and checker); path: data file for dataset tasks; verifier_timeout: seconds
    one verifier call may take (a slower one is the verdict `timeout`; default: unbounded)."""

    name: str
    n: int = 16
    split: str = "train"
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    verifier_timeout: float | None = None

    def __post_init__(self) -> None:
        check_task_config(
            self.name,
            n=self.n,
            split=self.split,
            path=self.path,
            verifier_timeout=self.verifier_timeout,
            difficulties=[self.options],
        )


@dataclass(frozen=True)
class SampleConfig:
    """variants: prompt variant names; variants_file: extra variants (YAML); samples_per_variant: k;
    few_shot: solved demonstrations shown before each question; params: decoding settings
    (a ``SamplingParams``; stop at </answer> by default)."""

    variants: tuple[str, ...] = ("plain", "plan", "alternatives", "rephrase")
    variants_file: str | None = None
    samples_per_variant: int = 16
    few_shot: int = 0
    params: SamplingParams = field(default_factory=lambda: SamplingParams(stop=("</answer>",)))

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(self.variants))
        if not self.variants:
            msg = "variants: at least one prompt variant is needed."
            raise ConfigError(
                msg + "\nHint: e.g. variants: [plain, plan] (built in: plain, plan, alternatives, rephrase)."
            )
        repeated = sorted({v for v in self.variants if self.variants.count(v) > 1})
        if repeated:
            raise ConfigError(f"variants: {repeated} listed more than once.\nHint: name each variant once.")
        pick_variants(list(self.variants), load_variants(self.variants_file))  # names and file, checked now
        _at_least("samples_per_variant", self.samples_per_variant, 1)
        _at_least("few_shot", self.few_shot, 0)


@dataclass(frozen=True)
class ReflectConfig:
    """per_sample: reflections per sample (paper: 4); few_shot: demonstrations (alternating a correct
    and an incorrect example); call_size: samples per backend call, each call written atomically
    (small: a livelier progress bar and finer resume; large: a busy GPU); params: decoding settings
    (stop at </verdict> by default)."""

    per_sample: int = 4
    few_shot: int = 0
    call_size: int = 256
    params: SamplingParams = field(
        default_factory=lambda: SamplingParams(max_tokens=512, stop=("</verdict>",))
    )

    def __post_init__(self) -> None:
        _at_least("per_sample", self.per_sample, 0)
        _at_least("few_shot", self.few_shot, 0)
        _at_least("call_size", self.call_size, 1)


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        msg = f"{name} must be >= {low}, got {value}."
        raise ConfigError(msg + f"\nHint: set {name} to {max(low, 1)} or more.")


@dataclass(frozen=True)
class RunConfig:
    """store: output directory; seed: every random choice (tasks, sampling, reflection and, unless
    ``rearrange.seed`` overrides it, rearrangement); chunk_problems: problems per atomic write
    (the unit of resume); model, tasks, sampling, reflection, rearrange: see each section;
    executor: where the model calls run (this process, or Ray actors: see
    :class:`~tracekit.executor.config.ExecutorConfig`); it changes no row."""

    store: str
    tasks: tuple[TaskSpec, ...]
    seed: int = 0
    chunk_problems: int = 8
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SampleConfig = field(default_factory=SampleConfig)
    reflection: ReflectConfig = field(default_factory=ReflectConfig)
    rearrange: RearrangeConfig = field(default_factory=RearrangeConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError(
                "tasks: at least one task is needed.\nHint: tasks: [{name: multiplication, n: 8}]"
            )
        _at_least("chunk_problems", self.chunk_problems, 1)
        check_seed(self.seed, "seed")
        samples = (
            sum(t.n for t in self.tasks) * len(self.sampling.variants) * self.sampling.samples_per_variant
        )
        check_planned(
            {"samples": samples, "reflections": samples * self.reflection.per_sample},
            "lower tasks[].n, sampling.samples_per_variant or reflection.per_sample",
        )

    def rearrange_with_seed(self) -> RearrangeConfig:
        """The ``rearrange`` section with its seed resolved (``rearrange.seed``, else the run's ``seed``):
        what the run rearranges with. ``rearrange`` itself stays as written, and the config hash covers
        it so."""
        return self.rearrange.with_seed(self.seed)


def load_config(path: str | Path, **overrides: Any) -> RunConfig:
    """Read a run configuration from YAML (``overrides`` replace top-level keys) and check all of
    it (tasks, variants and their file, backend and options, every value) before anything runs."""
    data = read_yaml_mapping(
        path, "run config", "a run config needs at least 'store' and 'tasks' (see configs/demo-cpu.yaml)"
    )
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(RunConfig, data, f"{Path(path).name}: ")


def with_executor(cfg, backend: str | None):
    """``cfg`` (a run or eval config) with ``executor.backend`` replaced (``--executor``), checked;
    ``local`` drops the Ray settings (one process has no replicas)."""
    if backend is None:
        return cfg
    executor = ExecutorConfig() if backend == "local" else dataclasses.replace(cfg.executor, backend=backend)
    return dataclasses.replace(cfg, executor=executor)


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# what does not change a row: where the store is, where the model calls run
NOT_HASHED = ("store", "executor")


def config_hash(cfg: RunConfig) -> str:
    """Hash of what a run makes: the configuration without the store's location and the executor."""
    return stable_hash({k: v for k, v in config_dict(cfg).items() if k not in NOT_HASHED})
