"""Thin TRL SFT adapter: train on ``tracekit export --to trl-sft`` output.

The exported rows are TRL's conversational prompt-completion layout, so TRL computes the
loss on the completion (the trace) only. Traces are long: ``max_length`` defaults to
8192 here instead of TRL's 1024.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracekit.errors import require


def load_sft_dataset(path: str | Path):
    """The exported SFT parquet as a ``datasets.Dataset`` with only ``prompt`` and ``completion``."""
    import datasets

    files = str(Path(path) / "train.parquet") if Path(path).is_dir() else str(path)
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    return ds.select_columns(["prompt", "completion"])


def train_sft(data: str | Path, model: Any, output_dir: str | Path, *, tokenizer: Any = None, **config: Any):
    """Run TRL's ``SFTTrainer`` on exported traces; ``config`` goes to ``SFTConfig`` unchanged.

    ``model`` is a model id, a folder or a loaded model. Returns the trainer (after ``train()``).
    """
    trl = require("trl", "train")
    args = trl.SFTConfig(output_dir=str(output_dir), **{"max_length": 8192, "report_to": "none", **config})
    trainer = trl.SFTTrainer(
        model=model, args=args, train_dataset=load_sft_dataset(data), processing_class=tokenizer
    )
    trainer.train()
    return trainer
