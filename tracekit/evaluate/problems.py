"""Held-out evaluation problems.

Problems come from the task registry: generators on the held-out split (a problem's split
is a function of its content, so generated test problems never equal generated training
problems) and dataset loaders for GSM8K, CommonsenseQA and boxed math. Evaluation problems
are not written to the ``problems`` table, which holds the training problems.
"""

from __future__ import annotations

import json

import polars as pl

from tracekit.evaluate.config import EvalConfig
from tracekit.tasks import task_problems


def difficulty_label(difficulty: str) -> str:
    """A short display name of a stored difficulty (the knobs' JSON).

    Examples
    --------
    >>> difficulty_label('{"digits": 2, "digits_b": 1}')
    'digits=2 digits_b=1'
    >>> difficulty_label("")
    '-'
    """
    try:
        knobs = json.loads(difficulty) if difficulty else {}
    except ValueError:
        return difficulty
    if not isinstance(knobs, dict) or not knobs:
        return difficulty or "-"
    return " ".join(f"{k}={v}" for k, v in knobs.items())


def eval_problems(cfg: EvalConfig) -> pl.DataFrame:
    """The held-out problems of ``cfg``: ``n`` per task and difficulty, in config order."""
    problems = pl.concat(
        task_problems(
            spec.name,
            spec.n,
            seed=cfg.seed,
            split=spec.split,
            path=spec.path,
            difficulties=spec.difficulties(),
        )
        for spec in cfg.tasks
    )
    return problems.unique("problem_id", keep="first", maintain_order=True)
