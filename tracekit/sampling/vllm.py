"""The vLLM backend: offline ``LLM.generate``, n samples per prompt, prefix caching (GPU).

Stop strings are kept in the output (``include_stop_str_in_output``); each request's
seed is passed to vLLM. A seeded request's text still depends on the requests it was
batched with (the kernels' reduction order changes with the batch), unless vLLM's batch
invariance is on (``VLLM_BATCH_INVARIANT=1``, recent NVIDIA GPUs only); the sampler says
which in :attr:`VLLMSampler.batch_invariant`, and the run manifest records it. Resume does
not depend on it: ids, not texts, decide what is done.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from tracekit.errors import require
from tracekit.sampling.base import Completion, Request, SamplingParams


def vllm_params(vllm, params: SamplingParams, n: int, seed: int):
    """The ``vllm.SamplingParams`` of one request (with structured output when ``params.regex`` is set)."""
    extra = {}
    if params.regex:
        sp = vllm.sampling_params
        if hasattr(sp, "StructuredOutputsParams"):  # vLLM >= 0.11
            extra["structured_outputs"] = sp.StructuredOutputsParams(regex=params.regex)
        else:  # older releases
            extra["guided_decoding"] = sp.GuidedDecodingParams(regex=params.regex)
    return vllm.SamplingParams(
        n=n,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        repetition_penalty=params.repetition_penalty,
        max_tokens=params.max_tokens,
        stop=list(params.stop) or None,
        include_stop_str_in_output=True,
        seed=seed,
        **extra,
    )


def _free_memory() -> None:
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def batch_invariant() -> bool:
    """Whether vLLM runs batch invariant (``VLLM_BATCH_INVARIANT=1``): a seeded request's text
    then does not depend on the other requests in its batch. vLLM's own reading of the
    variable when it has one, else the variable read the same way."""
    try:
        return bool(importlib.import_module("vllm.envs").VLLM_BATCH_INVARIANT)
    except (ImportError, AttributeError):
        value = os.environ.get("VLLM_BATCH_INVARIANT", "0").strip()
        return value.isdigit() and int(value) != 0


class VLLMSampler:
    """Sample with vLLM's offline engine.

    Parameters
    ----------
    model
        Hub id or local folder.
    engine
        Extra ``vllm.LLM`` keyword arguments (``tensor_parallel_size``, ``max_model_len``,
        ``gpu_memory_utilization``, ...). Prefix caching is on unless set here.
    """

    def __init__(self, model: str, revision: str | None = None, engine: dict[str, Any] | None = None) -> None:
        self._vllm = require("vllm", "vllm")
        options = {"enable_prefix_caching": True, **(engine or {})}
        self.llm = self._vllm.LLM(model=model, revision=revision, **options)
        self.tokenizer = self.llm.get_tokenizer()
        self.model_id = model
        self.model_revision = revision
        self.source = "generate"
        self.batch_invariant = batch_invariant()

    def close(self) -> None:
        """Shut the engine down and drop it, so its GPU memory can go to the next model."""
        llm, self.llm = getattr(self, "llm", None), None
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):  # vLLM V1: the engine core runs in its own process
            shutdown()
        del llm, engine
        _free_memory()

    def render(self, messages) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        # a partial assistant turn is continued: the rendered chat ends where the assistant's text begins
        prompts = [self.render(r.messages) + r.prefix for r in requests]
        params = [vllm_params(self._vllm, r.params, r.n, r.seed) for r in requests]
        outputs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        results = []
        for out in outputs:
            results.append(
                [
                    Completion(
                        text=o.text,
                        finish_reason="length" if o.finish_reason == "length" else "stop",
                        n_tokens=len(o.token_ids),
                    )
                    for o in out.outputs
                ]
            )
        return results
