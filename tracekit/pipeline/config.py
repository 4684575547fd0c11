"""Run configuration: frozen dataclasses loaded strictly from YAML.

Every field is documented once, here. An unknown key fails and lists the valid ones;
defaults are deterministic (``seed: 0``).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tracekit.errors import ConfigError
from tracekit.rearrange.stage import RearrangeConfig
from tracekit.sampling.base import SamplingParams


@dataclass(frozen=True)
class ModelConfig:
    """backend: transformers | vllm | http | scripted; options: the backend's keyword arguments
    (transformers: model, gguf_file, device, dtype, batch_size; vllm: model, revision, engine;
    http: base_url, model, concurrency, timeout, max_retries). No model = the embedded SmolLM2-135M."""

    backend: str = "transformers"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """name: a registered task; n: problems to make (or load); split: train | validation | test;
    options: the task's difficulty knobs (see `tracekit tasks list`); path: data file for dataset tasks."""

    name: str
    n: int = 16
    split: str = "train"
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


@dataclass(frozen=True)
class SampleConfig:
    """variants: prompt variant names; variants_file: extra variants (YAML); samples_per_variant: k;
    few_shot: solved demonstrations shown before each question; params: decoding settings
    (temperature, top_p, top_k, repetition_penalty, max_tokens, stop)."""

    variants: tuple[str, ...] = ("plain", "plan", "alternatives", "rephrase")
    variants_file: str | None = None
    samples_per_variant: int = 16
    few_shot: int = 0
    params: SamplingParams = field(default_factory=lambda: SamplingParams(stop=("</answer>",)))


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


@dataclass(frozen=True)
class RunConfig:
    """store: output directory; seed: every random choice (tasks, sampling, reflection and, unless
    ``rearrange.seed`` overrides it, rearrangement); chunk_problems: problems per atomic write
    (the unit of resume); model, tasks, sampling, reflection, rearrange: see each section."""

    store: str
    tasks: tuple[TaskSpec, ...]
    seed: int = 0
    chunk_problems: int = 8
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SampleConfig = field(default_factory=SampleConfig)
    reflection: ReflectConfig = field(default_factory=ReflectConfig)
    rearrange: RearrangeConfig = field(default_factory=RearrangeConfig)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("config: at least one task is needed")
        if self.chunk_problems < 1:
            raise ConfigError("config: chunk_problems must be >= 1")

    @property
    def rearrangement(self) -> RearrangeConfig:
        """The rearrangement settings with their seed resolved (``rearrange.seed``, else ``seed``)."""
        return self.rearrange.with_seed(self.seed)


def _build(cls, data: Any, where: str):
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}. Valid keys: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        kwargs = {name: _build(hints[name], value, f"{where}.{name}") for name, value in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    origin = typing.get_origin(cls)
    if origin is tuple:
        inner = typing.get_args(cls)[0]
        if not isinstance(data, (list, tuple)):
            data = [data]
        return tuple(_build(inner, v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(cls) if a is not type(None)]
        return None if data is None else _build(args[0], data, where)
    if cls is int and not isinstance(data, bool) and isinstance(data, int):
        return data
    if cls is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if cls in (str, bool) and isinstance(data, cls):
        return data
    if origin is dict or cls is dict:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return dict(data)
    if cls in (int, float, str, bool):
        raise ConfigError(f"{where}: expected {cls.__name__}, got {data!r}")
    return data


def load_config(path: str | Path, **overrides: Any) -> RunConfig:
    """Read a run configuration from YAML (``overrides`` replace top-level keys)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {p}: {exc}") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    return _build(RunConfig, data, p.name)


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_hash(cfg: RunConfig) -> str:
    """Hash of what a run makes: the configuration without the store's location."""
    from tracekit.ids import stable_hash

    return stable_hash({k: v for k, v in config_dict(cfg).items() if k != "store"})
