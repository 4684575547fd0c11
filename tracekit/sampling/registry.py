"""The backend registry: every sampling backend by name (``model.backend`` in a run config).

Each entry imports its backend only when it is built, so heavy libraries (torch, vllm) load
only for the backend in use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracekit.errors import ConfigError, unknown_name
from tracekit.sampling.base import Sampler


def _transformers(**kw):
    from tracekit.sampling.hf import TransformersSampler

    return TransformersSampler(**kw)


def _vllm(**kw):
    from tracekit.sampling.vllm import VLLMSampler

    return VLLMSampler(**kw)


def _http(**kw):
    from tracekit.sampling.http import HTTPSampler

    return HTTPSampler(**kw)


def _scripted(**kw):
    from tracekit.sampling.scripted import ScriptedSampler

    return ScriptedSampler(**kw)


BACKENDS: dict[str, Callable[..., Sampler]] = {
    "transformers": _transformers,
    "vllm": _vllm,
    "http": _http,
    "scripted": _scripted,
}


def make_sampler(backend: str, **options: Any) -> Sampler:
    """Build a backend by name with its options (see each backend's class)."""
    if backend not in BACKENDS:
        raise unknown_name("sampling backend", backend, list(BACKENDS))
    try:
        return BACKENDS[backend](**options)
    except TypeError as exc:
        raise ConfigError(f"backend {backend!r}: {exc}") from None
