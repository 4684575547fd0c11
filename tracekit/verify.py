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

import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from json.decoder import scanstring as _scanstring
from json.encoder import encode_basestring as _encode_string
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.errors import InputFormatError
from tracekit.extract import MAX_SCAN_CHARS, final_answer
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


READ_BYTES = (
    256 << 10
)  # score_jsonl reads this much at a time (to the end of a line): small enough to reuse memory
CHUNK_BYTES = 8 << 20  # the share of a file a worker process scores at a time (score_file)
_CACHE_LIMIT = 20_000  # cached spellings and verdicts before the caches start over (memory flat, ~20 MB)
_SENTINEL = "\x00response\x00"  # stands for a line's response while its other fields are parsed
_SENTINEL_JSON = json.dumps(_SENTINEL)


def score_jsonl(task: Task, src, dst, *, chunk_bytes: int = READ_BYTES) -> tuple[int, list[str]]:
    """Score every line of a jsonl file: each line holds the task's fields and a ``response``.

    Writes each input line plus ``is_correct`` and ``reason`` to ``dst``. A malformed line
    (not UTF-8 text, not JSON, nested too deep, a missing field, a field of the wrong type, a
    string that is not valid Unicode) is skipped and reported (``"line N: ..."``) without stopping the
    others. Returns the number of scored lines and the problems found.

    ``src`` is read ``chunk_bytes`` at a time and ``dst`` written a chunk at a time (flat memory).
    Each line is read as :func:`json.loads` reads it and written as :func:`json.dumps` writes it,
    but a line's other fields are parsed, checked and laid out once per distinct spelling, and
    the verdict is computed once per (other fields, final answer): the task's verifier reads the
    answer and the problem's fields (:meth:`Task.score`), so lines that share both share it.

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
    scorer = None
    number = 0
    for lines, last_ends, binary in _line_blocks(src, chunk_bytes):
        if scorer is None:  # a line of a binary file is blank as bytes are (ASCII whitespace), of text as str
            scorer = _Scorer(task, _ASCII_BLANK if binary else None)
        out = scorer.block(lines, number, last_ends)
        number += len(lines)
        if out:
            dst.write(out)
    if scorer is None:
        return 0, []
    return scorer.scored, [f"line {number}: {problem}" for number, problem in scorer.errors]


def _line_blocks(src, chunk_bytes: int):
    """``src`` as blocks of whole lines (without their ``\\n``), about ``chunk_bytes`` each:
    ``(lines, last_ends, binary)``, where ``last_ends`` says whether the block's last line ended
    with a newline and ``binary`` whether ``src`` gives bytes. A line that is not UTF-8 text
    stays ``bytes``; the others are ``str``."""
    while True:
        piece = src.read(chunk_bytes)
        if not piece:
            return
        binary = isinstance(piece, bytes)
        newline = b"\n" if binary else "\n"
        ends = piece.endswith(newline)
        if not ends:
            piece += src.readline()  # the rest of the last line (to the end of the file, at most)
            ends = piece.endswith(newline)
        block = piece[:-1] if ends else piece
        if binary:
            try:
                block = block.decode("utf-8")
            except UnicodeDecodeError:  # decode line by line: the bad ones are their lines' problem
                lines: list = block.split(b"\n")
                for k, line in enumerate(lines):
                    try:
                        lines[k] = line.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
                yield lines, ends, True
                continue
        yield block.split("\n"), ends, binary


class _Scorer:
    """The state of one :func:`score_jsonl` run: counts, errors and the per-spelling caches."""

    def __init__(self, task: Task, blank: str | None) -> None:
        self.task = task
        self.blank = blank
        self.scored = 0
        self.errors: list[tuple[int, str]] = []  # (line number, problem)
        # (line up to the response's text, line after it) -> the other fields' verdicts by answer,
        # or a problem (str), or None: read such lines one at a time
        self.spellings: dict[tuple[str, str], Any] = {}
        self.cached = 0
        self.verdicts: dict[tuple[bool, str], str] = {}  # (is_correct, reason) -> _verdict_text
        declared = {*task.fields, *task.field_types}
        self.fast = "response" not in declared
        # a verdict depends on the response only through its final answer unless a task scores
        # otherwise, and a check bounded by a timeout may give another verdict next time
        self.share = type(task).score is Task.score and task.verifier_timeout is None

    def block(self, lines: list, first: int, last_ends: bool) -> str:
        """Score ``lines`` (numbered from ``first + 1``); the output text of the scored ones."""
        out: list[str] = []
        emit = out.extend
        rewritten = _REWRITTEN.search
        spellings = self.spellings
        fast = self.fast
        last = len(lines) - 1
        scored = 0
        for k, line in enumerate(lines):
            # the fast path: a response spelt '"response": "..."', its text inside the extraction
            # window, other fields already seen; anything else is read alone (_score_line)
            i = line.find('"response"') if fast and type(line) is str else -1
            if i >= 0:
                if line.startswith(': "', i + 10):
                    v = i + 13
                elif line.startswith(':"', i + 10):
                    v = i + 12
                else:
                    v = 0
                if v:
                    try:
                        response, end = _scanstring(line, v)
                    except ValueError:
                        v = 0
                if v and len(response) <= MAX_SCAN_CHARS:
                    key = (line[:v], line[end:])
                    entry = spellings.get(key, _MISSING)
                    if entry is _MISSING:
                        entry = self._spelling(*key)
                    if type(entry) is str:
                        self.errors.append((first + k + 1, entry))
                        continue
                    if entry is not None:
                        answer = final_answer(response)
                        done = entry.get(answer)
                        if done is None:
                            done = self._verdict(entry, answer, response)
                        if type(done) is str:
                            self.errors.append((first + k + 1, done))
                            continue
                        if done:
                            if rewritten(line, v, end) is None:  # json.dumps would write it as it is
                                emit((done[0], line[v - 1 : end], done[1]))
                                scored += 1
                                continue
                            token = _encode_string(response)
                            if token.isascii() or _encodable(token):  # else a lone surrogate
                                emit((done[0], token, done[1]))
                                scored += 1
                                continue
            text, problem = _score_line(self.task, line, k < last or last_ends, self.blank)
            if problem is not None:
                self.errors.append((first + k + 1, problem))
            elif text is not None:
                emit((text, "\n"))
                scored += 1
        self.scored += scored
        return "".join(out)

    def _spelling(self, head: str, tail: str):
        """What the other fields of lines spelt ``head + <response> + tail`` are: a dict (the
        parsed fields, their output layout, verdicts by answer), a problem (str), or None (read
        these lines one at a time)."""
        if len(self.spellings) >= _CACHE_LIMIT or self.cached >= _CACHE_LIMIT:
            self.spellings.clear()
            self.cached = 0
        entry: Any = None
        # no other string can hold the sentinel's NUL: JSON writes it only as \\u0000
        if "\\u0000" not in head and "\\u0000" not in tail:
            try:
                # the line with a sentinel as the response's text: valid exactly when the line is
                record = json.loads(head + _SENTINEL_JSON[1:] + tail)
            except (ValueError, RecursionError):
                record = None
            if type(record) is dict and record.get("response") == _SENTINEL:
                problem = self.task.field_error(record)
                entry = problem if problem is not None else {_RECORD: record, _LAYOUT: _layout(record)}
        self.spellings[(head, tail)] = entry
        return entry

    def _verdict(self, entry: dict, answer: str | None, response: str):
        """The output around a response (prefix, suffix), a problem (str), or () (read the
        line alone); kept in ``entry`` by answer where verdicts are shared."""
        record = dict(entry[_RECORD])
        record["response"] = response
        try:
            if self.share:  # what Task.score does with a response inside the extraction window
                check = self.task.score_answer(answer, record)
            else:
                check = self.task.score(response, record)
        except (TypeError, KeyError, AttributeError, InputFormatError) as exc:
            done: Any = f"the fields {list(self.task.fields)} cannot be verified ({exc!r})"
        else:
            layout = entry[_LAYOUT]
            if layout is not None:  # json.dumps appends the two new fields: the same text
                verdict = (check.is_correct, check.reason)
                fields = self.verdicts.get(verdict) if type(verdict[0]) is bool else None
                if fields is None:  # (1, "ok") would hash as (True, "ok") does: bools only
                    fields = _verdict_text(*verdict)
                    if type(verdict[0]) is bool and type(verdict[1]) is str and len(self.verdicts) < 10_000:
                        self.verdicts[verdict] = fields
                done = (layout[0], layout[1] + fields) if fields else ()
            else:
                record["response"] = _SENTINEL
                record.update(is_correct=check.is_correct, reason=check.reason)
                done = _layout(record, closed=True) or ()
        if self.share:
            entry[answer] = done
            self.cached += 1
        return done


def _verdict_text(is_correct, reason) -> str:
    """``, "is_correct": ..., "reason": ...}`` and the newline, as json.dumps writes them ("" where
    that text is not UTF-8: a lone surrogate)."""
    text = f', "is_correct": {json.dumps(is_correct)}, "reason": {json.dumps(reason, ensure_ascii=False)}}}\n'
    return text if _encodable(text) else ""


def _layout(record: dict, closed: bool = False) -> tuple[str, str] | None:
    """``json.dumps(record)`` around its response (the sentinel): the text before it and after
    it (``closed``: to the end of the line; else up to the closing brace, where the verdict
    fields go), or None where that would not be the same text (verdict fields already there,
    a lone surrogate, the sentinel twice)."""
    if not closed and ("is_correct" in record or "reason" in record):
        return None
    text = json.dumps(record, ensure_ascii=False)
    at = text.find(_SENTINEL_JSON)
    if at < 0 or text.count(_SENTINEL_JSON) != 1 or not _encodable(text):
        return None
    after = text[at + len(_SENTINEL_JSON) :]
    return text[:at], (after + "\n" if closed else after[:-1])


# the escapes of a JSON string that json.dumps (ensure_ascii=False) writes otherwise: \/ as / and
# \u0041 as A; it writes the others (\" \\ \b \f \n \r \t) as they are
_REWRITTEN = re.compile(r"\\[u/]")
_ASCII_BLANK = " \t\n\r\x0b\x0c"  # what bytes.strip() removes
_MISSING = object()
_RECORD = object()  # an entry's keys for the parsed other fields and their layout (answers: str or None)
_LAYOUT = object()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _score_line(
    task: Task, line: str | bytes, newline: bool, blank: str | None
) -> tuple[str | None, str | None]:
    """One line read alone, as ``tracekit score`` defines it: the output text (None for a
    blank line: only ``blank`` characters, or only whitespace where that is None) or the
    line's problem."""
    raw = line + (b"\n" if type(line) is bytes else "\n") if newline else line
    if not (raw.strip(blank.encode() if type(raw) is bytes else blank) if blank is not None else raw.strip()):
        return None, None
    if type(raw) is bytes:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    record, problem = _read_line(task, raw)
    if problem is not None:
        return None, problem
    try:
        check = task.score(record["response"], record)
    except (TypeError, KeyError, AttributeError, InputFormatError) as exc:
        # fields of the right types that the verifier still cannot read: an input error, not a verdict
        return None, f"the fields {list(task.fields)} cannot be verified ({exc!r})"
    record.update(is_correct=check.is_correct, reason=check.reason)
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # "\\ud800": JSON allows it, UTF-8 cannot hold it
        return None, f"a string holds a lone surrogate ({text[exc.start]!a}), which is not valid Unicode text"
    return text, None


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
    A file of several chunks is scored by worker processes, one chunk each at a time (see
    :func:`score_jsonl`; the same output and errors), where the system has three CPUs or more.
    Returns the number of scored lines and the malformed ones (see :func:`score_jsonl`).
    """
    from tracekit.places import check_input_file, check_output_file
    from tracekit.store.files import atomic_write

    verifier = get_task(task)
    src = check_input_file(src, "score: input", "give a jsonl file: one JSON object per line.")
    out = check_output_file(out, "score --out")
    result: list[tuple[int, list[str]]] = []
    chunks = -(-src.stat().st_size // CHUNK_BYTES)
    # workers where they leave a CPU to this process (it takes their output and writes it): on a
    # two-CPU machine two workers scored slower than one process (the output crosses a pipe)
    workers = min(_cpus() - 1, chunks, MAX_WORKERS) if "fork" in _start_methods() else 1

    def write(tmp: Path) -> None:
        if workers > 1:
            with open(tmp, "wb") as dst:
                result.append(_score_in_workers(verifier, src, dst, chunks, workers))
            return
        with open(src, "rb") as fh, open(tmp, "w", encoding="utf-8") as dst:
            result.append(score_jsonl(verifier, fh, dst))

    atomic_write(out, write)
    return result[0]


MAX_WORKERS = 8


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _score_in_workers(task: Task, src: Path, dst, chunks: int, workers: int) -> tuple[int, list[str]]:
    """:func:`score_jsonl` of the file ``src`` by ``workers`` forked processes, each scoring one
    chunk (the lines that start in it) at a time; the output is written in order and at most
    two chunks per worker are in flight (flat memory)."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")  # the task as loaded here, custom ones too
    scored, errors, number = 0, [], 0
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(task,)
    ) as pool:
        pending: deque = deque()
        nxt = 0
        while nxt < chunks or pending:
            while nxt < chunks and len(pending) < 2 * workers:
                pending.append(pool.submit(_score_chunk, str(src), nxt))
                nxt += 1
            text, lines, found, problems = pending.popleft().result()
            dst.write(text)
            scored += found
            errors += [f"line {number + n}: {problem}" for n, problem in problems]
            number += lines
    return scored, errors


_WORKER: list = []  # the scorer of a worker process


def _start_worker(task: Task) -> None:
    _WORKER[:] = [_Scorer(task, _ASCII_BLANK)]


def _score_chunk(path: str, index: int) -> tuple[bytes, int, int, list[tuple[int, str]]]:
    """Score the lines of ``path`` that start in its ``index``-th chunk of ``CHUNK_BYTES``: the
    output (UTF-8), the number of lines, the number scored and the problems (numbered from 1)."""
    scorer = _WORKER[0]
    start, stop = index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES
    with open(path, "rb") as fh:
        if start:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # the rest of a line that started in an earlier chunk
        begin = fh.tell()
        if begin >= stop:
            return b"", 0, 0, []
        data = fh.read(stop - begin)
        if data and not data.endswith(b"\n"):
            data += fh.readline()  # the end of the last line that starts here
    scorer.scored, scorer.errors = 0, []
    parts, lines = [], 0
    for block, last_ends, _ in _line_blocks(io.BytesIO(data), READ_BYTES):
        parts.append(scorer.block(block, lines, last_ends))
        lines += len(block)
    return "".join(parts).encode("utf-8"), lines, scorer.scored, scorer.errors
