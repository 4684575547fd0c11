"""``tracekit train`` configuration: a YAML of TRL's own config fields plus the model and the data.

Every key is an ``SFTConfig`` / ``GRPOConfig`` field (passed to TRL unchanged), or one of
``OWN_KEYS``, documented in :class:`TrainConfig`. An unknown key is an error that lists the
valid ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, close_names, require, unknown_name

OWN_KEYS = {"sft": ("model", "data", "tokenizer"), "grpo": ("model", "data", "tokenizer", "rewards")}


@dataclass(frozen=True)
class TrainConfig:
    """A parsed ``tracekit train`` file.

    Parameters
    ----------
    kind
        ``sft`` or ``grpo``: the command's first argument, not a key of the file.
    model
        A model id or folder (required).
    data
        The exported data: a parquet file, a folder of ``<split>.parquet`` files, or an ``hf``
        export's config folder (required).
    tokenizer
        A tokenizer id or folder (default: the model's).
    rewards
        GRPO only: reward names from :data:`tracekit.trainers.rewards.REWARDS` (default
        ``[correctness, format]``).
    trl
        Every other key of the file: TRL's own ``SFTConfig`` / ``GRPOConfig`` fields, passed
        unchanged.
    """

    kind: str
    model: str
    data: str
    tokenizer: str | None = None
    rewards: tuple[str, ...] = ("correctness", "format")
    trl: dict[str, Any] = field(default_factory=dict)


def trl_config_class(kind: str):
    trl = require("trl", "train")
    return {"sft": trl.SFTConfig, "grpo": trl.GRPOConfig}[kind]


def load_train_config(path: str | Path, kind: str) -> TrainConfig:
    """Read and check ``path`` (YAML) for ``kind`` (``sft`` or ``grpo``)."""
    from tracekit.yamlfile import read_yaml

    if kind not in OWN_KEYS:
        raise unknown_name("trainer", kind, list(OWN_KEYS))
    path = Path(path)
    data = read_yaml(path, "train config")
    if not isinstance(data, dict):
        msg = f"{path}: expected a mapping of TRL config fields plus model and data."
        raise ConfigError(
            msg + "\nHint: write 'key: value' lines, e.g. model: ..., data: ..., max_length: 4096."
        )
    trl_fields = {f.name for f in dataclasses.fields(trl_config_class(kind)) if f.init}
    own = OWN_KEYS[kind]
    unknown = sorted(k for k in data if k not in trl_fields and k not in own)
    if unknown:
        hints = [
            f"{k!r} (did you mean {m[0]!r}?)" if (m := close_names(k, [*trl_fields, *own], n=1)) else repr(k)
            for k in unknown
        ]
        msg = (
            f"{path}: unknown key(s) {', '.join(hints)}.\nHint: use {list(own)} and the field names of "
            f"trl.{trl_config_class(kind).__name__}."
        )
        raise ConfigError(msg)
    length = data.get("max_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        msg = f"{path}: max_length must be a whole number of tokens >= 1, got {length!r}."
        raise ConfigError(msg + "\nHint: traces are long; e.g. max_length: 8192, or leave it out (8192).")
    for key in ("model", "data"):
        if not data.get(key):
            raise ConfigError(f"{path}: {key!r} is required.\nHint: add `{key}: ...` to the file.")
    if not Path(str(data["data"])).exists():
        msg = f"{path}: data {data['data']!r} does not exist.\n"
        raise ConfigError(msg + "Hint: point `data:` at a `tracekit export` folder or file.")
    for key in ("model", "tokenizer"):  # a path that is not there (a Hub id is left to the loader)
        value = str(data.get(key) or "")
        if value.startswith(("/", ".", "~")) and not Path(value).expanduser().exists():
            raise ConfigError(
                f"{path}: {key} {value!r} does not exist.\nHint: give a model folder or a Hub model id."
            )
    rewards = tuple(data.get("rewards") or TrainConfig.rewards)
    trl_args = {k: v for k, v in data.items() if k not in own}
    return TrainConfig(kind, str(data["model"]), str(data["data"]), data.get("tokenizer"), rewards, trl_args)
