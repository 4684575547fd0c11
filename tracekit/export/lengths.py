"""Trace lengths in tokens, with a model's tokenizer or a documented approximation.

With a tokenizer, a trace's length is the number of tokens of its conversation (the user
question and the assistant trace) through the tokenizer's chat template when it has one,
else of the two texts joined. That is what an SFT trainer sees. Without one, the length is
approximated as UTF-8 bytes / 4 (``APPROX``), the usual rule of thumb for BPE tokenizers
on English text and numbers; the card says which was used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

APPROX = "approx. tokens: UTF-8 bytes / 4"
BYTES_PER_TOKEN = 4


def approx_tokens(prompts: list[str], completions: list[str]) -> np.ndarray:
    """Approximate token counts of ``prompt + completion`` pairs.

    Examples
    --------
    >>> approx_tokens(["12 * 3?"], ["<answer>36</answer>"]).tolist()
    [7]
    """
    sizes = [len(p.encode()) + len(c.encode()) for p, c in zip(prompts, completions)]
    return np.array([math.ceil(s / BYTES_PER_TOKEN) for s in sizes], dtype=np.int64)


def tokenizer_tokens(prompts: list[str], completions: list[str], tokenizer: Any) -> np.ndarray:
    """Token counts of each ``[user prompt, assistant completion]`` conversation with ``tokenizer``."""
    out = []
    templated = bool(getattr(tokenizer, "chat_template", None))
    for prompt, completion in zip(prompts, completions):
        if templated:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}],
                tokenize=True,
            )
            if isinstance(ids, dict) or hasattr(ids, "keys"):  # some versions return a BatchEncoding
                ids = ids["input_ids"]
        else:
            ids = tokenizer(prompt + completion)["input_ids"]
        out.append(len(ids))
    return np.array(out, dtype=np.int64)


def load_tokenizer(name: str | None) -> Any:
    """A tokenizer from a local folder or model id (``None``: no tokenizer, use the approximation)."""
    if not name:
        return None
    from tracekit.errors import ConfigError, require

    transformers = require("transformers", "hf")
    try:
        return transformers.AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        msg = f"cannot load the tokenizer {name!r}: {exc}\nHint: give a local model folder or a cached model id."
        raise ConfigError(msg) from None


def trace_lengths(
    prompts: list[str], completions: list[str], tokenizer: Any = None
) -> tuple[np.ndarray, str]:
    """``(lengths, how)``: token counts and a description of how they were counted."""
    if tokenizer is None:
        return approx_tokens(prompts, completions), APPROX
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return tokenizer_tokens(prompts, completions, tokenizer), f"tokens of {name} (chat template)"
