"""Thin TRL SFT adapter: train on ``tracekit export --to trl-sft`` (or ``--to hf``, config ``sft``) output.

The exported rows are TRL's conversational prompt-completion layout, so TRL computes the
loss on the completion (the trace) only. Traces are long: ``max_length`` defaults to
8192 here instead of TRL's 1024, and :func:`length_report` says how many traces exceed
it with the model's own tokenizer before training starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracekit.errors import require
from tracekit.export.lengths import tokenizer_tokens
from tracekit.trainers.data import load_export

DEFAULT_MAX_LENGTH = 8192


def load_sft_dataset(path: str | Path, split: str = "train"):
    """One split of the exported SFT data as a ``datasets.Dataset`` with only ``prompt`` and ``completion``."""
    return load_export(path)[split].select_columns(["prompt", "completion"])


def length_report(dataset, tokenizer: Any, max_length: int) -> dict[str, int]:
    """How many rows of ``dataset`` (prompt-completion) have more than ``max_length`` tokens with ``tokenizer``."""
    prompts = [p[0]["content"] for p in dataset["prompt"]]
    completions = [c[0]["content"] for c in dataset["completion"]]
    lengths = tokenizer_tokens(prompts, completions, tokenizer)
    return {
        "rows": int(lengths.size),
        "over": int((lengths > max_length).sum()),
        "longest": int(lengths.max()) if lengths.size else 0,
        "max_length": max_length,
    }


def train_sft(data: str | Path, model: Any, output_dir: str | Path, *, tokenizer: Any = None, **config: Any):
    """Run TRL's ``SFTTrainer`` on exported traces; ``config`` goes to ``SFTConfig`` unchanged.

    ``model`` is a model id, a folder or a loaded model. An exported ``test`` (or ``validation``)
    split becomes the eval set when ``eval_strategy`` asks for evaluation. Returns the trainer
    (after ``train()``).
    """
    trl = require("trl", "train")
    args = trl.SFTConfig(
        output_dir=str(output_dir), **{"max_length": DEFAULT_MAX_LENGTH, "report_to": "none", **config}
    )
    splits = load_export(data)
    evaluates = getattr(args.eval_strategy, "value", args.eval_strategy) != "no"
    held_out = next((s for s in ("test", "validation") if s in splits), None)
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"].select_columns(["prompt", "completion"]),
        eval_dataset=splits[held_out].select_columns(["prompt", "completion"])
        if evaluates and held_out
        else None,
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer
