"""The task registry: every task by name, with did-you-mean for unknown names.

Procedural tasks (``countdown``, ``multiplication``, ``letter_countdown``, ``acronym``)
generate problems from a seed; dataset tasks (``gsm8k``, ``commonsenseqa``, ``math``)
load local files. All share :meth:`Task.score`: one answer extraction and one exact
verifier per task, used by the data filter, SFT validation, GRPO rewards and evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.errors import unknown_name
from tracekit.tasks.acronym import Acronym
from tracekit.tasks.base import Check, Task
from tracekit.tasks.countdown import Countdown
from tracekit.tasks.letters import LetterCountdown
from tracekit.tasks.loaders import GSM8K, BoxedMath, CommonsenseQA
from tracekit.tasks.multiplication import Multiplication

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Countdown(),
        Multiplication(),
        LetterCountdown(),
        Acronym(),
        GSM8K(),
        CommonsenseQA(),
        BoxedMath(),
    )
}


def get_task(name: str) -> Task:
    """The task registered as ``name``.

    Examples
    --------
    >>> get_task("countdown").name
    'countdown'
    >>> get_task("countdwn")
    Traceback (most recent call last):
    ...
    tracekit.errors.UnknownNameError: unknown task 'countdwn'. Did you mean 'countdown'...
    """
    try:
        return TASKS[name]
    except KeyError:
        raise unknown_name("task", name, list(TASKS)) from None


def task_problems(
    name: str,
    n: int,
    *,
    seed: int,
    split: str,
    path: str | Path | None = None,
    difficulties: Iterable[Mapping[str, Any]] = ({},),
) -> pl.DataFrame:
    """The problems a config asks of task ``name``: the first ``n`` rows of the local file
    ``path`` (dataset tasks), or else ``n`` generated problems at each difficulty in turn.
    The run pipeline and evaluation both build their problems here."""
    task = get_task(name)
    if path:
        return task.load(path, split=split).head(n)
    return pl.concat([task.generate(n, seed=seed, split=split, **knobs) for knobs in difficulties])


__all__ = ["TASKS", "Check", "Task", "get_task", "task_problems"]
