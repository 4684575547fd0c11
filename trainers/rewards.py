"""Reward functions in TRL's shape, backed by tracekit's exact verifiers.

TRL calls ``reward(prompts=..., completions=..., completion_ids=..., **dataset_columns)``
and wants one float (or None) per completion. The dataset written by
``tracekit export --to trl-grpo`` carries ``task`` and ``meta`` (the task's fields as
JSON), so one reward serves every task. Completions may be strings or chat messages.
Problems of a task from outside the package also carry ``task_source`` (its
``file.py:Class`` or ``module:Class``), from which the task is loaded here, once per process.
"""

from __future__ import annotations

import json
from typing import Any

from tracekit.extract import final_region_start
from tracekit.tasks import get_task


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""


def find_task(task: str, source: str | None = None):
    """The task ``task``, loaded from ``source`` first where it is not known yet (a task from
    outside the package, as an export records it)."""
    from tracekit.tasks import TASKS, task_source

    if source and task not in TASKS and task_source(task) != source:
        get_task(source)
    return get_task(task)


def score_text(task: str, text: str, meta: str | dict, source: str | None = None) -> float:
    """1.0 when ``text``'s final answer passes ``task``'s verifier for the fields ``meta``, else 0.0.

    The one scoring rule behind every reward here (TRL and verl): the final answer is the
    last ``<answer>`` after ``</think>``, checked by the task's exact verifier.

    Examples
    --------
    >>> score_text("multiplication", "<think>12*3</think><answer>36</answer>", '{"a": 12, "b": 3}')
    1.0
    """
    fields = json.loads(meta) if isinstance(meta, str) else meta
    return 1.0 if find_task(task, source).score(text, fields).is_correct else 0.0


def correctness_reward(
    completions: list,
    task: list[str],
    meta: list[str],
    task_source: list[str | None] | None = None,
    **kwargs: Any,
) -> list[float]:
    """1.0 when the completion's final answer passes the task's verifier, else 0.0.

    ``task_source`` (a column of exports with tasks from outside the package) says how to load
    each row's task.

    Examples
    --------
    >>> correctness_reward(["<answer>(1 + 2) * 3</answer>", [{"role": "assistant", "content": "<answer>9</answer>"}]],
    ...                    task=["countdown"] * 2, meta=['{"numbers": [1, 2, 3], "target": 9}'] * 2)
    [1.0, 0.0]
    """
    sources = task_source if task_source is not None else [None] * len(task)
    return [
        score_text(name, _text(c), fields, source)
        for c, name, fields, source in zip(completions, task, meta, sources, strict=True)
    ]


def format_reward(completions: list, **kwargs: Any) -> list[float]:
    """0.2 when the completion ends its reasoning and gives exactly one final ``<answer>``, else 0.0.

    Examples
    --------
    >>> format_reward(["<think>hm</think>\\n<answer>4</answer>", "4"])
    [0.2, 0.0]
    """
    out = []
    for completion in completions:
        text = _text(completion)
        tail = text[final_region_start(text) :]  # the region final_answer reads
        out.append(0.2 if tail.count("<answer>") == 1 and tail.count("</answer>") == 1 else 0.0)
    return out


REWARDS = {"correctness": correctness_reward, "format": format_reward}
