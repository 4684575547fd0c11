"""Thin TRL GRPO adapter: train on ``tracekit export --to trl-grpo`` output.

Rewards are plain functions passed as ``reward_funcs`` (see :mod:`tracekit.trainers.rewards`);
the trainer is TRL's own, never subclassed. A problem whose base-model samples were all right
or all wrong gives GRPO little signal (every completion in a group tends to get the same
reward, so the advantage is zero): :func:`signal_report` counts them from the exported
``base_samples`` / ``base_correct`` columns and :func:`drop_no_signal` removes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tracekit.errors import require
from tracekit.trainers.data import load_export


def load_grpo_dataset(path: str | Path, split: str = "train"):
    """One split of the exported GRPO problems as a ``datasets.Dataset``."""
    return load_export(path)[split]


def signal_report(dataset) -> dict[str, int]:
    """Problems whose base-model samples were all right, all wrong, mixed, or absent.

    Examples
    --------
    >>> signal_report({"base_samples": [4, 4, 4, 0], "base_correct": [4, 0, 2, 0]})
    {'problems': 4, 'all_right': 1, 'all_wrong': 1, 'mixed': 1, 'no_samples': 1}
    """
    n, right = dataset["base_samples"], dataset["base_correct"]
    out = {"problems": len(n), "all_right": 0, "all_wrong": 0, "mixed": 0, "no_samples": 0}
    for total, good in zip(n, right):
        key = (
            "no_samples"
            if total == 0
            else "all_right"
            if good == total
            else "all_wrong"
            if good == 0
            else "mixed"
        )
        out[key] += 1
    return out


def drop_no_signal(dataset):
    """``dataset`` without the problems whose base-model samples were all right or all wrong."""
    return dataset.filter(
        lambda row: row["base_samples"] == 0 or 0 < row["base_correct"] < row["base_samples"]
    )


def train_grpo(
    data: str | Path | Any,
    model: Any,
    output_dir: str | Path,
    *,
    tokenizer: Any = None,
    reward_funcs: list | None = None,
    **config: Any,
):
    """Run TRL's ``GRPOTrainer`` with tracekit's verifier rewards; ``config`` goes to ``GRPOConfig``.

    ``data`` is an export (what ``export_trl_grpo`` returns, or its path) or an already loaded
    ``datasets.Dataset`` (e.g. after :func:`drop_no_signal`).
    """
    trl = require("trl", "train")
    from tracekit.trainers.rewards import correctness_reward, format_reward

    args = trl.GRPOConfig(output_dir=str(output_dir), **{"report_to": "none", **config})
    dataset = load_grpo_dataset(data) if isinstance(data, str | os.PathLike) else data
    trainer = trl.GRPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        reward_funcs=reward_funcs or [correctness_reward, format_reward],
    )
    trainer.train()
    return trainer
