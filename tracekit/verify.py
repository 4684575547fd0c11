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

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

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
