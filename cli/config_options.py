"""Command-line options generated from a config dataclass: one source of names, defaults and help.

A command that runs a stage takes the stage's frozen config dataclass as its options: every
field becomes ``--field-name`` (underscores as dashes), its help is the field's entry in the
class docstring's numpy ``Parameters`` section, and its default is the field's default. The
run config YAML uses the same field names, so the CLI and the YAML never restate each other.

Types map plainly: ``bool`` is a flag (``--x``, or ``--x/--no-x`` when it defaults to true),
``int``/``str`` take a value, a
``tuple[str, ...]`` is repeatable and comma-separated. An option left out is not passed to
the dataclass at all, so the dataclass alone decides defaults (and recipes, see
:class:`tracekit.rearrange.RearrangeConfig`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any

import typer

from tracekit.cli.app import listed


def field_docs(cls) -> dict[str, str]:
    """Each field's description from the numpy ``Parameters`` section of ``cls``'s docstring, one line each.

    Examples
    --------
    >>> from tracekit.rearrange import RearrangeConfig
    >>> field_docs(RearrangeConfig)["repeats"]
    'How many times each format is drawn per problem.'
    """
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    try:
        start = lines.index("Parameters") + 2
    except ValueError:
        return {}
    docs: dict[str, list[str]] = {}
    name = None
    for line in lines[start:]:
        if line and not line.startswith(" "):
            if set(line) <= {"-"} or (name is not None and line.endswith(":")):
                break
            name = line.split(":")[0].strip()
            docs[name] = []
        elif name is not None and line.strip():
            docs[name].append(line.strip())
    return {k: re.sub(r"\s+", " ", " ".join(v)) for k, v in docs.items()}


def _option_type(hint) -> tuple[Any, str]:
    """The type typer parses for a field's type hint, and its kind (flag, list, value)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        return list[str] | None, "list"
    if hint is bool:
        return bool | None, "flag"
    if hint in (int, str, float):
        return hint | None, "value"
    msg = f"config_options: no command-line form for a field of type {hint!r}"
    raise TypeError(msg)


def _shown(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return None  # typer shows the flag pair; the doc says what the default does
    return str(value)


def config_options(cls, *, short: dict[str, str] | None = None, panel: str | None = None):
    """Decorate a command ``f(..., **fields)``: add one option per field of the dataclass ``cls``.

    The command receives the fields the user gave as keyword arguments (others as ``None``);
    :func:`given` picks them out.
    """
    short = short or {}
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)

    def decorate(func: Callable) -> Callable:
        sig = inspect.signature(func)
        params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        annotations = {p.name: p.annotation for p in params}
        for f in dataclasses.fields(cls):
            annotation, kind = _option_type(hints[f.name])
            flag = f.name.replace("_", "-")
            names = [f"--{flag}/--no-{flag}" if kind == "flag" and f.default else f"--{flag}"]
            names += [short[f.name]] if f.name in short else []
            help_text = docs.get(f.name, "")
            if kind == "list":
                help_text += " Comma-separated or repeated."
            if _shown(f.default) is not None:
                help_text += f" (default: {_shown(f.default)})"
            option = typer.Option(None, *names, help=help_text, show_default=False, rich_help_panel=panel)
            params.append(
                inspect.Parameter(
                    f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
                )
            )
            annotations[f.name] = annotation
        func.__signature__ = sig.replace(parameters=params)
        func.__annotations__ = {**annotations, "return": None}
        return func

    return decorate


def given(cls, values: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` the user gave on the command line, converted for the dataclass."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = values.get(f.name)
        if value is None:
            continue
        if _option_type(hints[f.name])[1] == "list":
            value = tuple(listed(value, "--" + f.name.replace("_", "-")))
        out[f.name] = value
    return out
