"""Thin TRL GRPO adapter: train on ``tracekit export --to trl-grpo`` output.

Rewards are plain functions passed as ``reward_funcs`` (see :mod:`tracekit.trainers.rewards`);
the trainer is TRL's own, never subclassed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracekit.errors import require


def load_grpo_dataset(path: str | Path):
    import datasets

    files = str(Path(path) / "train.parquet") if Path(path).is_dir() else str(path)
    return datasets.load_dataset("parquet", data_files=files, split="train")


def train_grpo(
    data: str | Path,
    model: Any,
    output_dir: str | Path,
    *,
    tokenizer: Any = None,
    reward_funcs: list | None = None,
    **config: Any,
):
    """Run TRL's ``GRPOTrainer`` with tracekit's verifier rewards; ``config`` goes to ``GRPOConfig``."""
    trl = require("trl", "train")
    from tracekit.trainers.rewards import correctness_reward, format_reward

    args = trl.GRPOConfig(output_dir=str(output_dir), **{"report_to": "none", **config})
    trainer = trl.GRPOTrainer(
        model=model,
        args=args,
        train_dataset=load_grpo_dataset(data),
        processing_class=tokenizer,
        reward_funcs=reward_funcs or [correctness_reward, format_reward],
    )
    trainer.train()
    return trainer
