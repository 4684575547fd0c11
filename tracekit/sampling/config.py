"""The model section of a config: which backend samples, with which options (``model:`` in a run
config, every entry of ``models:`` in an eval config).

Checked when the config is read (:func:`tracekit.sampling.registry.check_backend`: the name, every
option's name and value), before any problem is built or any model loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracekit.sampling.registry import check_backend


@dataclass(frozen=True)
class ModelConfig:
    """backend: transformers | vllm | http | scripted (see :data:`~tracekit.sampling.registry.BACKENDS`);
    options: the backend's keyword arguments, checked against its constructor when the config is read
    (with their defaults: transformers: model (null), gguf_file (null), device ("auto"), dtype (null),
    batch_size (16), threads (null), prefix_cache (true); vllm: model (required), revision (null), engine
    (null); http: base_url (required), model (required), api_key_env ("OPENAI_API_KEY"), concurrency (8),
    timeout (120.0), max_retries (5), backoff (0.5), vllm_extras (true); scripted: respond (null), model_id
    ("scripted")). No model = the embedded SmolLM2-135M; http's base_url may list several endpoints. The
    list of options is :func:`~tracekit.sampling.registry.options_doc`'s text, which a test keeps equal."""

    backend: str = "transformers"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_backend(self.backend, self.options)  # checked, not built: no model is loaded here
