"""The backend registry: every sampling backend by name (``model.backend`` in a run config).

Each entry names the module and class of its backend. The modules are light (heavy libraries
such as torch or vllm are imported inside the class when it is built), so a backend's name and
options can be checked (:func:`check_backend`) before anything is loaded or written, even
under ``--dry-run``.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

from tracekit.errors import ConfigError, did_you_mean, unknown_name
from tracekit.sampling.base import Sampler

BACKENDS: dict[str, str] = {
    "transformers": "tracekit.sampling.hf:TransformersSampler",
    "vllm": "tracekit.sampling.vllm:VLLMSampler",
    "http": "tracekit.sampling.http:HTTPSampler",
    "scripted": "tracekit.sampling.scripted:ScriptedSampler",
}


def backend_class(backend: str) -> type:
    """The class of backend ``backend`` (its module is imported; its heavy libraries are not)."""
    if backend not in BACKENDS:
        hint = "set backend to one of these names."
        raise unknown_name("sampling backend", backend, list(BACKENDS), hint=hint)
    module, name = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module), name)


def backend_options(backend: str) -> dict[str, inspect.Parameter]:
    """The options backend ``backend`` takes: its class's keyword parameters, in signature order.

    Read from the signature (the backend's module is imported, its heavy libraries are not), so
    the checks and the docs follow the constructor.

    Examples
    --------
    >>> list(backend_options("vllm"))
    ['model', 'revision', 'engine']
    """
    params = inspect.signature(backend_class(backend).__init__).parameters
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n: p for n, p in params.items() if n != "self" and p.kind in named}


def _default(param: inspect.Parameter) -> str:
    """An option's default as YAML would spell it (``required`` when it has none)."""
    if param.default is param.empty:
        return "required"
    try:
        return json.dumps(param.default)
    except TypeError:
        return repr(param.default)


def options_doc() -> str:
    """Every backend's options with their defaults, as one line: ``backend: option (default), ...``
    for each backend, joined by ``; ``. :class:`~tracekit.sampling.config.ModelConfig`'s docstring
    holds this text (a test keeps it equal).

    Examples
    --------
    >>> options_doc().split("; ")[1]
    'vllm: model (required), revision (null), engine (null)'
    """
    return "; ".join(
        f"{backend}: " + ", ".join(f"{name} ({_default(p)})" for name, p in backend_options(backend).items())
        for backend in BACKENDS
    )


def options_table() -> str:
    """Every backend's options as a Markdown table (backend, option, type, default): what the docs
    show in the Backends section of the ``run`` page (``<!-- tracekit-backend-options -->``)."""
    rows = ["| backend | option | type | default |", "|---|---|---|---|"]
    for backend in BACKENDS:
        for name, p in backend_options(backend).items():
            kind = "" if p.annotation is p.empty else str(p.annotation).replace(" | ", " or ")
            rows.append(f"| `{backend}` | `{name}` | {kind} | `{_default(p)}` |")
    return "\n".join(rows)


def check_backend(backend: str, options: dict[str, Any]) -> None:
    """Raise unless ``backend`` is registered and takes every one of ``options`` (with every
    option it requires), and the backend's own ``check_options(options)`` (when it has one)
    accepts their values.

    Examples
    --------
    >>> check_backend("http", {"base_url": "http://localhost:8000/v1", "model": "m"})
    >>> check_backend("http", {"base_url": "http://x", "model": "m", "concurency": 4})
    Traceback (most recent call last):
    ...
    tracekit.errors.ConfigError: backend 'http' has no option 'concurency'. Did you mean 'concurrency'?
    Hint: its options are ['api_key_env', 'backoff', 'base_url', 'concurrency', ...
    """
    cls = backend_class(backend)
    takes = backend_options(backend)
    for name in options:
        if name not in takes:
            msg = f"backend {backend!r} has no option {name!r}.{did_you_mean(name, takes)}"
            raise ConfigError(msg + f"\nHint: its options are {sorted(takes)}.")
    missing = sorted(n for n, p in takes.items() if p.default is p.empty and n not in options)
    if missing:
        msg = f"backend {backend!r} needs the option(s) {missing}."
        raise ConfigError(msg + f"\nHint: its options are {sorted(takes)}.")
    check_values = getattr(cls, "check_options", None)
    if check_values is not None:  # a backend may check its option values itself (e.g. http's base_url)
        check_values(options)
    _check_option_values(backend, cls, options)


def _check_option_values(backend: str, cls: type, options: dict[str, Any]) -> None:
    """Each option of the type its parameter declares (``model: str``, ``batch_size: int``), and
    at least the class's ``OPTION_MINIMUMS`` (``{"batch_size": 1}``): checked here, so that a
    ``--dry-run``, which builds no backend, refuses them too."""
    import types
    import typing

    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that cannot be resolved here: leave its check to the class
        hints = {}
    simple = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a mapping"}
    for name, value in options.items():
        hint = hints.get(name)
        args = (
            typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        )
        allowed = [typing.get_origin(a) or a for a in args]
        if value is None and type(None) in allowed:
            continue
        kinds = [a for a in allowed if a in simple]
        if not kinds or len(kinds) < len([a for a in allowed if a is not type(None)]):
            continue  # a type this check does not know (a callable, Any): the class decides
        fits = any(
            isinstance(value, kind)
            and (kind is bool or not isinstance(value, bool))
            or (kind is float and isinstance(value, int) and not isinstance(value, bool))
            for kind in kinds
        )
        if not fits:
            wanted = " or ".join(simple[k] for k in kinds)
            msg = f"backend {backend!r}: option {name!r} must be {wanted}, got {value!r}."
            hint = f"quote it to make it text: {name}: '{value}'" if str in kinds else f"give {name} {wanted}"
            raise ConfigError(msg + f"\nHint: {hint}.")
    for name, low in getattr(cls, "OPTION_MINIMUMS", {}).items():
        value = options.get(name)
        if value is not None and value < low:
            msg = f"backend {backend!r}: option {name!r} must be >= {low}, got {value!r}."
            raise ConfigError(msg + f"\nHint: set {name}: {low} or more, or leave it out.")


def make_sampler(backend: str, **options: Any) -> Sampler:
    """Build a backend by name with its options (see each backend's class)."""
    check_backend(backend, options)
    try:
        return backend_class(backend)(**options)
    except TypeError as exc:
        raise ConfigError(f"backend {backend!r}: {exc}") from None
