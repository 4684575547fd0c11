"""Config files: a YAML mapping read strictly, then built into frozen dataclasses.

The one loader under every config (run, eval): :func:`read_yaml_mapping` reads the file's
top-level mapping (through :func:`tracekit.yamlfile.read_yaml`), :func:`from_mapping` builds a
dataclass from it, checking every key and value against the dataclass's fields and types (an
unknown key fails and lists the valid ones), and :func:`check_planned` bounds the rows a config
may plan. Light on purpose: no numpy or polars, so reading a config loads none of the stages.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     n: int = 1
>>> from_mapping(Demo, {"n": 3}, "demo.yaml: ")
Demo(n=3)
>>> from_mapping(Demo, {"m": 3}, "demo.yaml: ")
Traceback (most recent call last):
...
tracekit.errors.ConfigError: demo.yaml: unknown key(s) ['m']. Valid keys: ['n']
Hint: remove it.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, TracekitError, close_names
from tracekit.yamlfile import read_yaml

MAX_PLANNED_ROWS = 100_000_000
"""The most rows of one kind (samples, reflections, eval responses) a config may plan: more could not
finish (at 1,000 responses a second, 10**8 take more than a day) and is almost always a typo."""


def check_planned(planned: dict[str, int], hint: str) -> None:
    """Raise a :class:`ConfigError` naming the count when a config plans more than
    :data:`MAX_PLANNED_ROWS` rows of a kind (``planned``: kind -> rows); ``hint`` says what to lower."""
    for kind, rows in planned.items():
        if rows > MAX_PLANNED_ROWS:
            msg = f"this config plans {rows:,} {kind}, more than the bound of {MAX_PLANNED_ROWS:,}."
            raise ConfigError(msg + f"\nHint: {hint}.")


def _missing(cls, data: dict[str, Any]) -> list[str]:
    """The fields of ``cls`` that have no default and are not in ``data``."""
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in data
    ]


def _join(where: str, key: str) -> str:
    return f"{where}{key}" if key.startswith("[") or where.endswith(": ") else f"{where}.{key}"


def from_mapping(cls, data: Any, where: str):
    """``data`` (parsed YAML) as an instance of ``cls``, checked strictly; errors name ``where``
    (the file, then the key path)."""
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            msg = f"{where.rstrip(': ')}: expected a mapping of keys to values, got {_kind(data)}."
            raise ConfigError(msg + f"\nHint: the keys are {[f.name for f in dataclasses.fields(cls)]}.")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            close = [m for k in unknown for m in close_names(k, fields, n=1)]
            msg = f"{where.rstrip(': ')}: unknown key(s) {unknown}. Valid keys: {sorted(fields)}"
            msg += f"\nHint: did you mean {' or '.join(map(repr, close))}?" if close else "\nHint: remove it."
            raise ConfigError(msg)
        missing = _missing(cls, data)
        if missing:
            msg = f"{where.rstrip(': ')}: missing key(s) {missing}."
            raise ConfigError(msg + "\nHint: see configs/demo-cpu.yaml for a complete example.")
        hints = typing.get_type_hints(cls)
        kwargs = {name: from_mapping(hints[name], value, _join(where, name)) for name, value in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{where.rstrip(': ')}: {exc}") from None
        except TracekitError as exc:
            raise type(exc)(f"{where.rstrip(': ')}: {exc}") from None
    origin = typing.get_origin(cls)
    if origin is tuple:
        inner = typing.get_args(cls)[0]
        if isinstance(data, dict):
            msg = f"{where.rstrip(': ')}: expected a list, got a mapping."
            raise ConfigError(msg + "\nHint: write each item on its own line starting with '- '.")
        if not isinstance(data, (list, tuple)):
            data = [data]
        return tuple(from_mapping(inner, v, _join(where, f"[{i}]")) for i, v in enumerate(data))
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(cls) if a is not type(None)]
        return None if data is None else from_mapping(args[0], data, where)
    if cls is int and not isinstance(data, bool) and isinstance(data, int):
        return data
    if cls is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if cls in (str, bool) and isinstance(data, cls):
        return data
    if origin is dict or cls is dict:
        if not isinstance(data, dict):
            raise ConfigError(f"{where.rstrip(': ')}: expected a mapping, got {_kind(data)}.")
        return dict(data)
    if cls in (int, float, str, bool):
        hint = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}[cls]
        if cls in (int, float) and isinstance(data, str):
            hint += " in plain digits (YAML reads 1e9 as text: write 1000000000)"
        raise ConfigError(f"{where.rstrip(': ')}: expected {cls.__name__}, got {data!r}.\nHint: give {hint}.")
    return data


def _kind(data: Any) -> str:
    if data is None:
        return "nothing (an empty value)"
    return {list: "a list", dict: "a mapping", str: "a string"}.get(type(data), type(data).__name__)


def read_yaml_mapping(
    path: str | Path, what: str, example: str = "a run config needs at least 'store' and 'tasks'"
) -> dict[str, Any]:
    """The top-level mapping of a YAML file, read strictly (:func:`tracekit.yamlfile.read_yaml`:
    no repeated keys, no non-finite numbers, bounded size); a :class:`ConfigError` naming the file
    (and line) when it cannot be read, is not UTF-8, is empty or is not a mapping. ``example`` is the hint
    an empty file gets (what such a file needs at least, and where one is)."""
    p = Path(path)
    data = read_yaml(p, what)
    if data is None:
        msg = f"{what} {p} is empty."
        raise ConfigError(msg + f"\nHint: {example}.")
    if not isinstance(data, dict):
        msg = f"{what} {p}: expected a mapping of keys to values at the top level, got {_kind(data)}."
        raise ConfigError(msg + "\nHint: write 'key: value' lines (store: ..., tasks: ...), not a list.")
    return data
