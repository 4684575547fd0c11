"""Stage: verify. Responses in, verdict columns out: ``extracted_answer``, ``is_correct``, ``reason``.

The one place where model text meets a task's exact verifier (:meth:`tracekit.tasks.Task.score`:
the final ``<answer>`` after any ``</think>``, the shared answer guards, the task's check).
The sample stage verifies every new sample here, evaluation scores model outputs here, and
``tracekit score`` reads jsonl files with the same verifiers (:mod:`tracekit.score`).

Only what model text can cause becomes a verdict (``no_answer``, ``unparseable``,
``wrong_value``...): a problem that lacks a field its verifier needs raises
:class:`~tracekit.errors.InputFormatError`, and a verifier bug raises as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from tracekit.errors import InputFormatError
from tracekit.schemas import polars_schema
from tracekit.tasks import get_task

VERDICT_COLUMNS = ("extracted_answer", "is_correct", "reason")


def verify_responses(
    responses: Sequence[str | None], tasks: Sequence[str], metas: Sequence[Mapping[str, Any]]
) -> pl.DataFrame:
    """The verdict columns of every response (row-aligned), each checked by its task's verifier.

    Examples
    --------
    >>> verify_responses(["6 * 7 = 42 <answer>42</answer>", "no tags"], ["multiplication"] * 2,
    ...                  [{"a": 6, "b": 7}] * 2).rows()
    [('42', True, 'ok'), (None, False, 'no_answer')]
    """
    checks = [get_task(t).score(r, m) for r, t, m in zip(responses, tasks, metas, strict=True)]
    schema = polars_schema("samples")
    return pl.DataFrame(
        {
            "extracted_answer": [c.answer for c in checks],
            "is_correct": [c.is_correct for c in checks],
            "reason": [c.reason for c in checks],
        },
        schema={c: schema[c] for c in VERDICT_COLUMNS},
    )


def verify(samples: pl.DataFrame, problems: pl.DataFrame) -> pl.DataFrame:
    """``samples`` (``problem_id``, ``response``, ...) with fresh verdict columns, checked against
    the ``task`` and ``meta`` of their rows in ``problems``."""
    known = dict(
        (pid, (task, meta)) for pid, task, meta in problems.select("problem_id", "task", "meta").iter_rows()
    )
    missing = sorted(set(samples["problem_id"].to_list()) - set(known))
    if missing:
        msg = f"verify: {len(missing)} sample problem(s) are not among the problems given, first: {missing[0]!r}."
        raise InputFormatError(msg)
    parsed = {pid: (task, json.loads(meta)) for pid, (task, meta) in known.items()}
    pids = samples["problem_id"].to_list()
    verdicts = verify_responses(
        samples["response"].to_list(), [parsed[p][0] for p in pids], [parsed[p][1] for p in pids]
    )
    return samples.drop([c for c in VERDICT_COLUMNS if c in samples.columns]).hstack(verdicts)
