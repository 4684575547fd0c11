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

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from tracekit.errors import ConfigError, TracekitError, warn
from tracekit.tasks import custom
from tracekit.tasks.acronym import Acronym
from tracekit.tasks.base import SPLIT_FRACTIONS, Check, Task
from tracekit.tasks.countdown import Countdown
from tracekit.tasks.custom import check_task, set_verifier_timeout, task_source
from tracekit.tasks.dataset import DatasetTask
from tracekit.tasks.letters import LetterCountdown
from tracekit.tasks.loaders import GSM8K, BoxedMath, CommonsenseQA
from tracekit.tasks.multiplication import Multiplication

if TYPE_CHECKING:  # polars loads where a task builds or reads problems, not to list tasks
    import polars as pl

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
    return [*TASKS, *sorted((set(custom.loaded_names()) | set(custom.plugin_names())) - set(TASKS))]


def task_sources(names: Iterable[str]) -> dict[str, str]:
    """How to load each task from outside the package among ``names``: task name -> source
    (see :func:`task_source`). Commands record it in their ``runs`` row and exports carry it, so
    a later command, a reward function or verl's ``compute_score`` loads the same task."""
    out = {}
    for name in names:
        task = get_task(name)
        source = task_source(task.name)
        if source is not None:
            out[task.name] = source
    return out


def load_recorded_tasks(store) -> dict[str, str]:
    """Load the tasks from outside the package that the commands recorded in ``store``'s ``runs``
    used (their ``task_sources``), so that its rows' task names resolve in this process.
    Returns them (name -> source); a source that no longer loads is a warning, and its task's
    name then stays unknown."""
    if not store.count("runs"):
        return {}
    found: dict[str, str] = {}
    for text in store.read("runs", columns=["config_json"])["config_json"]:
        try:
            sources = json.loads(text).get("task_sources") or {}
        except ValueError:
            continue
        if isinstance(sources, dict):
            found.update({str(k): str(v) for k, v in sources.items()})
    for name, source in found.items():
        if name in TASKS or task_source(name) == source:
            continue
        try:
            get_task(source)
        except TracekitError as exc:
            warn(
                f"task {name!r} of {store.root} was loaded from {source}, which fails now: {str(exc).splitlines()[0]}"
            )
    return found


class Listed(NamedTuple):
    """A task as ``tracekit tasks list`` shows it: the task and where it comes from (None: built in)."""

    task: Task
    source: str | None


def listed_tasks(names: Iterable[str] = ()) -> dict[str, Listed]:
    """The tasks ``names`` name (loaded and contract-checked), or, given none, every built-in task
    and every task installed packages register (one that fails to load is a warning, not an error).
    """
    if names:
        picked = [get_task(n) for n in names]
        return {t.name: Listed(t, task_source(t.name)) for t in picked}
    out = {name: Listed(t, None) for name, t in TASKS.items()}
    for name in sorted(custom.plugin_names()):
        try:
            task = get_task(name)
        except TracekitError as exc:
            warn(f"installed task {name!r} cannot be loaded: {str(exc).splitlines()[0]}")
            continue
        out[name] = Listed(task, task_source(name))
    return out


def check_task_config(
    name: str,
    *,
    n: int,
    split: str,
    path: str | None = None,
    verifier_timeout: float | None = None,
    difficulties: Iterable[Mapping[str, Any]] = ({},),
) -> Task:
    """Raise a :class:`~tracekit.errors.ConfigError` unless a config's task entry can make its
    problems: a known task, ``n`` >= 1, a known split, ``path`` given for a dataset task and only
    for one, knobs the task takes at every difficulty (for a task from outside the package, its
    contract at them) and a valid ``verifier_timeout`` (set on the task). Returns the task.

    The run config's and the eval config's task entries both call it when the config is read,
    so a bad entry is one error before any problem is built.

    Examples
    --------
    >>> check_task_config("multiplication", n=4, split="test", difficulties=[{"digits": 2}]).name
    'multiplication'
    >>> check_task_config("multiplication", n=4, split="test", difficulties=[{"digitz": 2}])
    Traceback (most recent call last):
    ...
    tracekit.errors.ConfigError: task 'multiplication': unknown option(s) ['digitz']. Known: ['digits', 'digits_b']
    Hint: `tracekit tasks list` shows every task's options.
    """
    task = get_task(name)
    set_verifier_timeout(task, verifier_timeout, f"task {name!r}")
    if n < 1:
        msg = f"task {name!r}: n must be >= 1 (problems to make), got {n}."
        raise ConfigError(msg + "\nHint: n: 16 makes 16 problems.")
    if split not in SPLIT_FRACTIONS:
        msg = f"task {name!r}: split must be one of {list(SPLIT_FRACTIONS)}, got {split!r}."
        raise ConfigError(msg + "\nHint: splits are decided by content, so each holds different problems.")
    if task.generated and path is not None:
        msg = f"task {name!r} is generated; 'path' is only for dataset tasks (dataset, gsm8k, math, ...)."
        raise ConfigError(msg + "\nHint: remove 'path', or name a dataset task.")
    if not task.generated and path is None:
        msg = f"task {name!r} loads an existing dataset and needs 'path' (a local file or owner/name)."
        raise ConfigError(msg + f"\nHint: add path: to the task, e.g. path: data/{name}.jsonl")
    for knobs in difficulties:
        task.check_knobs(dict(knobs))
        if task_source(task.name) is not None:  # a task from outside the package: its contract at these knobs
            check_task(task, dict(knobs), where=f"task {name!r} with options {dict(knobs)}")
    return task


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
    import polars as pl

    task = get_task(name)
    if path:
        # a dataset task's options arrive as one mapping (a `split` column is an option of `dataset`)
        frames = [task.load(path, split=split, **({"options": k} if k else {})).head(n) for k in difficulties]
        loaded = pl.concat(frames).unique("problem_id", keep="first", maintain_order=True)
        custom.check_loaded(task, loaded, path)
        return loaded
    return pl.concat([task.generate(n, seed=seed, split=split, **knobs) for knobs in difficulties])


__all__ = [
    "TASKS",
    "Check",
    "Listed",
    "Task",
    "check_task",
    "check_task_config",
    "get_task",
    "listed_tasks",
    "load_recorded_tasks",
    "task_names",
    "task_problems",
    "task_source",
    "task_sources",
]
