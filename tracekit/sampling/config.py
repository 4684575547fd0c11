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
    """backend: transformers | vllm | http | scripted; options: the backend's keyword arguments
    (transformers: model, gguf_file, device, dtype, batch_size; vllm: model, revision, engine;
    http: base_url (one URL or a list of endpoints), model, concurrency, timeout, max_retries). No model = the
    embedded SmolLM2-135M."""

    backend: str = "transformers"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_backend(self.backend, self.options)  # checked, not built: no model is loaded here
