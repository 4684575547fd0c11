"""verl's reward entry point: ``compute_score`` for rows written by ``tracekit export --to verl``.

verl 0.9 loads it with::

    reward.custom_reward_function.path=pkg://tracekit.trainers.verl_reward
    reward.custom_reward_function.name=compute_score

(the older top-level ``custom_reward_function.*`` keys are ignored by 0.9's PPO entry point;
a file path, ``python -c 'import tracekit.trainers.verl_reward as m; print(m.__file__)'``,
works as ``path`` too). verl calls it by keyword with the decoded response only (no prompt);
``data_source`` is the task name and ``ground_truth`` the problem's verifier fields (JSON),
as the export writes them; for a task from outside the package, ``extra_info["task_source"]``
says how to load it (its ``file.py:Class`` or ``module:Class``). The score is the same as
everywhere else in tracekit: the final ``<answer>`` after ``</think>``, checked by the task's exact verifier.
"""

from __future__ import annotations

from typing import Any

from tracekit.trainers.rewards import score_text


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str | dict,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> float:
    """1.0 when ``solution_str``'s final answer is right for the problem, else 0.0.

    ``extra_info`` (``split``, ``index``, ``problem_id``, ``task_source`` for a task from outside
    the package, and whatever verl adds, such as ``num_turns`` or ``rollout_reward_scores``) and
    any other keyword are accepted; only ``task_source`` is used.

    Examples
    --------
    >>> compute_score(data_source="countdown", solution_str="<think>...</think><answer>(1 + 2) * 3</answer>",
    ...               ground_truth='{"numbers": [1, 2, 3], "target": 9}', extra_info={"num_turns": 1})
    1.0
    """
    source = extra_info.get("task_source") if isinstance(extra_info, dict) else None
    return score_text(data_source, solution_str or "", ground_truth, source)
