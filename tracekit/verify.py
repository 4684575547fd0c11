"""Stage: verify. Responses in, verdict columns out: ``extracted_answer``, ``is_correct``, ``reason``.

The one place where model text meets a task's exact verifier (:meth:`tracekit.tasks.Task.score`:
the final ``<answer>`` after any ``</think>``, the shared answer guards, the task's check).
The sample stage verifies every new sample here, ``tracekit score`` scores jsonl files here,
and evaluation scores model outputs here.

Only what model text can cause becomes a verdict (``no_answer``, ``unparseable``,
``wrong_value``...): a problem that lacks a field its verifier needs raises
:class:`~tracekit.errors.InputFormatError`, and a verifier bug raises as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.errors import InputFormatError
from tracekit.schemas import polars_schema
from tracekit.tasks import Task, get_task

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


def score_jsonl(task: Task, src, dst) -> tuple[int, list[str]]:
    """Score every line of a jsonl file: each line holds the task's fields and a ``response``.

    Writes each input line plus ``is_correct`` and ``reason`` to ``dst``. A malformed line
    (not UTF-8 text, not JSON, nested too deep, a missing field, a field of the wrong type, a
    string that is not valid Unicode) is skipped and reported (``"line N: ..."``) without stopping the
    others. Returns the number of scored lines and the problems found.

    Examples
    --------
    >>> import io
    >>> from tracekit.tasks import get_task
    >>> lines = ['{"a": 6, "b": 7, "response": "<answer>42</answer>"}', '{"a": "6", "b": 7, "response": ""}']
    >>> out = io.StringIO()
    >>> score_jsonl(get_task("multiplication"), io.StringIO("\\n".join(lines)), out)
    (1, ["line 2: field 'a' must be an integer, got '6'"])
    >>> json.loads(out.getvalue())["reason"]
    'ok'
    """
    errors: list[str] = []
    scored = 0
    for number, line in enumerate(src, start=1):
        if not line.strip():
            continue
        if isinstance(line, bytes):  # a file read as bytes: text that is not UTF-8 is this line's problem
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                errors.append(
                    f"line {number}: not UTF-8 text (byte 0x{line[exc.start]:02x} at column {exc.start + 1})"
                )
                continue
        record, problem = _read_line(task, line)
        if problem is None:
            try:
                check = task.score(record["response"], record)
            except (TypeError, KeyError, AttributeError, InputFormatError) as exc:
                # fields of the right types that the verifier still cannot read: an input error, not a verdict
                errors.append(f"line {number}: the fields {list(task.fields)} cannot be verified ({exc!r})")
                continue
            record.update(is_correct=check.is_correct, reason=check.reason)
            text = json.dumps(record, ensure_ascii=False)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # "\\ud800": JSON allows it, UTF-8 cannot hold it
                problem = (
                    f"a string holds a lone surrogate ({text[exc.start]!a}), which is not valid Unicode text"
                )
        if problem is not None:
            errors.append(f"line {number}: {problem}")
            continue
        dst.write(text + "\n")
        scored += 1
    return scored, errors


def _read_line(task: Task, line: str) -> tuple[dict[str, Any], str | None]:
    """One jsonl line as a record, or what makes it malformed."""
    try:
        record = json.loads(line)
    except RecursionError:
        return {}, "nested too deeply to read (JSON arrays or objects inside each other)"
    except ValueError as exc:
        return {}, f"not valid JSON ({exc})"
    if not isinstance(record, dict):
        return {}, f"expected a JSON object, got {type(record).__name__}"
    if "response" not in record:
        return (
            record,
            f"missing field 'response' (task {task.name!r} needs {list(task.fields)} and 'response')",
        )
    if record["response"] is not None and not isinstance(record["response"], str):
        return record, "'response' must be a string"
    return record, task.field_error(record)


def score_file(task: str, src: str | Path, out: str | Path) -> tuple[int, list[str]]:
    """The ``score`` command: score the jsonl file ``src`` with ``task``'s verifier into ``out``.

    Paths are checked before any work (``src`` a file, ``out`` a writable file path); ``out`` is
    written as it goes, under a temporary name, and appears whole at the end (flat memory).
    Returns the number of scored lines and the malformed ones (see :func:`score_jsonl`).
    """
    from tracekit.places import check_input_file, check_output_file
    from tracekit.store.files import atomic_write

    verifier = get_task(task)
    src = check_input_file(src, "score: input", "give a jsonl file: one JSON object per line.")
    out = check_output_file(out, "score --out")
    result: list[tuple[int, list[str]]] = []

    def write(tmp: Path) -> None:
        with open(src, "rb") as fh, open(tmp, "w", encoding="utf-8") as dst:
            result.append(score_jsonl(verifier, fh, dst))

    atomic_write(out, write)
    return result[0]
