"""The task registry: every task by name, with did-you-mean for unknown names.

Procedural tasks (``countdown``, ``multiplication``, ``letter_countdown``, ``acronym``)
generate problems from a seed; dataset tasks (``gsm8k``, ``commonsenseqa``, ``math``, and
the generic ``dataset``: any file, a column mapping and a named checker) load local files.
All share :meth:`Task.score`: one answer extraction and one exact verifier per task,
used by the data filter, SFT validation, GRPO rewards and evaluation.

A task from outside the package (``path/to/file.py:ClassName``, ``package.module:ClassName``
or a name an installed package registers under the ``tracekit.tasks`` entry points) is
loaded, contract-checked and then known by name: see :mod:`tracekit.tasks.custom`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.tasks import custom
from tracekit.tasks.acronym import Acronym
from tracekit.tasks.base import Check, Task
from tracekit.tasks.countdown import Countdown
from tracekit.tasks.custom import check_task, task_source
from tracekit.tasks.dataset import DatasetTask
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
        DatasetTask(),
    )
}


def get_task(name: str) -> Task:
    """The task registered as ``name``, or the one a ``file.py:Class`` / ``module:Class`` names
    (imported and contract-checked once, then also known by its own ``name``).

    Examples
    --------
    >>> get_task("countdown").name
    'countdown'
    >>> get_task("countdwn")
    Traceback (most recent call last):
    ...
    tracekit.errors.UnknownNameError: unknown task 'countdwn'. Did you mean 'countdown'...
    """
    task = TASKS.get(name)
    return task if task is not None else custom.resolve(name, TASKS)


def task_names() -> list[str]:
    """Every task name known now: built-in, loaded from a file or module, installed as a plugin."""
    return [*TASKS, *sorted((set(custom._LOADED) | set(custom.plugin_names())) - set(TASKS))]


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
    The run pipeline and evaluation both build their problems here; the first rows of a
    dataset task from outside the package are contract-checked (their answers score right)."""
    task = get_task(name)
    if path:
        frames = [task.load(path, split=split, **knobs).head(n) for knobs in difficulties]
        loaded = pl.concat(frames).unique("problem_id", keep="first", maintain_order=True)
        custom.check_loaded(task, loaded, path)
        return loaded
    return pl.concat([task.generate(n, seed=seed, split=split, **knobs) for knobs in difficulties])


__all__ = ["TASKS", "Check", "Task", "check_task", "get_task", "task_names", "task_problems", "task_source"]
