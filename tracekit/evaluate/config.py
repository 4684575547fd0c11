"""Evaluation configuration: frozen dataclasses loaded strictly from YAML (``tracekit eval``).

Every field is documented once, here. An unknown key fails and lists the valid ones (the
same loader as run configurations); defaults are deterministic (``seed: 0``).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit.configfile import check_planned, from_mapping, read_yaml_mapping
from tracekit.errors import ConfigError
from tracekit.executor.config import ExecutorConfig
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.config import ModelConfig
from tracekit.tasks import check_task_config


@dataclass(frozen=True)
class EvalModel(ModelConfig):
    """label: the model's name in result tables (default: the backend's model id); backend and
    options: as in a run config (see :class:`~tracekit.sampling.config.ModelConfig`, whose check
    they pass when the config is read; a local checkpoint folder is ``options: {model: DIR}``);
    few_shot: overrides the config's few_shot for this model."""

    label: str | None = None
    few_shot: int | None = None


@dataclass(frozen=True)
class EvalTask:
    """name: a registered task, path/to/file.py:ClassName or package.module:ClassName; n: held-out
    problems per difficulty; options: the task's knobs, where a list value sweeps difficulties
    (``n_numbers: [3, 4, 5, 6]`` is four difficulties); path: data file for dataset tasks
    (dataset, GSM8K, CommonsenseQA, math); split: the held-out split (``test``); verifier_timeout:
    seconds one verifier call may take (a slower one is the verdict ``timeout``; default: unbounded)."""

    name: str
    n: int = 50
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    split: str = "test"
    verifier_timeout: float | None = None

    def __post_init__(self) -> None:
        check_task_config(  # the run config's check of a task entry, at every difficulty
            self.name,
            n=self.n,
            split=self.split,
            path=self.path,
            verifier_timeout=self.verifier_timeout,
            difficulties=self.difficulties(),
        )

    def difficulties(self) -> list[dict[str, Any]]:
        """One knob mapping per difficulty (the cartesian product of list-valued options)."""
        keys = sorted(self.options)
        values = [v if isinstance(v, list) else [v] for v in (self.options[k] for k in keys)]
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


@dataclass(frozen=True)
class BudgetForcing:
    """trigger: text inserted where the model stopped thinking (SkillFactory models: a new
    ``<sample>``; s1-style: ``Wait``); cut_before: the first response is cut before the last of
    these markers (default ``</think>``), else before its final ``<answer>``, else at its end;
    forces: how many times the trigger is inserted; total_tokens: budget of every token generated
    for one response, the first generation and the discarded tails included."""

    trigger: str = "\n<sample>\n"
    cut_before: tuple[str, ...] = ("</think>",)
    forces: int = 1
    total_tokens: int = 4096

    def __post_init__(self) -> None:
        object.__setattr__(self, "cut_before", tuple(self.cut_before))
        if self.forces < 1 or self.total_tokens < 1 or not self.trigger:
            raise ConfigError(f"budget_forcing: needs a trigger, forces >= 1 and total_tokens >= 1: {self}")


@dataclass(frozen=True)
class Decontamination:
    """enabled: drop evaluation problems found among training problems; against: stores whose
    ``problems`` are the training problems (default: the eval store itself); ngram: word n-gram
    size of the overlap check for dataset tasks (8)."""

    enabled: bool = True
    against: tuple[str, ...] = ()
    ngram: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "against", tuple(self.against))
        if self.ngram < 1:
            raise ConfigError(f"decontaminate.ngram must be >= 1, got {self.ngram}")


@dataclass(frozen=True)
class EvalConfig:
    """store: where the ``evals`` table goes (and, by default, the training problems to decontaminate
    against); models: one or more models evaluated side by side; tasks: held-out problems; k: samples
    per problem; pass_k: the k of pass@k (default: k); variant, variants_file, few_shot: the prompt
    (``question``: the bare question, as in SFT exports; or a prompt variant of run configs); params:
    decoding settings; chunk_problems: problems per atomic write (the unit of resume); seed: every
    random choice; budget_forcing: optional, see :class:`BudgetForcing`; decontaminate: see
    :class:`Decontamination`; executor: where the model calls run (see
    :class:`~tracekit.executor.config.ExecutorConfig`; it changes no row and is not hashed)."""

    store: str
    models: tuple[EvalModel, ...]
    tasks: tuple[EvalTask, ...]
    seed: int = 0
    k: int = 4
    pass_k: int | None = None
    variant: str = "question"
    variants_file: str | None = None
    few_shot: int = 0
    params: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=2048))
    chunk_problems: int = 16
    budget_forcing: BudgetForcing | None = None
    decontaminate: Decontamination = field(default_factory=Decontamination)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("eval config: at least one model is needed")
        if not self.tasks:
            raise ConfigError("eval config: at least one task is needed")
        if self.k < 1 or self.chunk_problems < 1:
            raise ConfigError("eval config: k and chunk_problems must be >= 1")
        if self.pass_k is not None and not 1 <= self.pass_k <= self.k:
            raise ConfigError(f"eval config: pass_k must be in [1, k={self.k}], got {self.pass_k}")
        bf = self.budget_forcing
        if bf is not None and bf.total_tokens <= self.params.max_tokens:
            msg = (
                f"eval config: budget_forcing.total_tokens ({bf.total_tokens}) must exceed the first "
                f"budget params.max_tokens ({self.params.max_tokens})"
            )
            raise ConfigError(msg)
        per_model = sum(t.n * len(t.difficulties()) for t in self.tasks) * self.k
        check_planned({"responses": per_model * len(self.models)}, "lower tasks[].n, the difficulties or k")
        labels = [m.label for m in self.models if m.label]
        if len(labels) != len(set(labels)):
            raise ConfigError(f"eval config: model labels must differ, got {labels}")

    def to_json(self) -> str:
        import dataclasses

        data = dataclasses.asdict(self)
        for task in data["tasks"]:  # unset, it leaves the hash of configs written before it existed
            if task["verifier_timeout"] is None:
                del task["verifier_timeout"]
        return json.dumps(data, sort_keys=True, default=str)

    def hashed(self) -> dict[str, Any]:
        """The configuration as its rows' ``config_hash`` covers it (the executor left out: it changes no row)."""
        out = json.loads(self.to_json())
        out.pop("executor")
        return out


def load_eval_config(path: str | Path, **overrides: Any) -> EvalConfig:
    """Read an evaluation configuration from YAML (``overrides`` replace top-level keys)."""
    p = Path(path)
    data = read_yaml_mapping(
        p, "eval config", "an eval config needs at least 'store', 'models' and 'tasks' (see configs/eval/)"
    )
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(EvalConfig, data, f"{p.name}: ")
