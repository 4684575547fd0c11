"""``tracekit score``: jsonl files of model responses scored with a task's exact verifier.

Each line holds a task's fields and a ``response``; each output line is the input record plus
``is_correct`` and ``reason``, as :func:`json.dumps` writes it. The verdict is the one every
stage gives (:meth:`tracekit.tasks.Task.score`, see :mod:`tracekit.verify`). A malformed line
(not JSON, nested too deep, not an object, a missing field, a field of the wrong type, a
string that is not valid Unicode) is skipped and reported with its number; a file that is not
UTF-8 text is an input error (:class:`~tracekit.errors.InputFormatError`, naming the line and
the byte).

Speed comes from doing once what lines share, never from reading a line differently: a
line's other fields are parsed, checked and laid out once per spelling, its verdict computed
once per (other fields, final answer), and any line off that path is read alone
(:func:`_score_line`, the per-line rule). :func:`score_file` scores chunks of a file in
forked worker processes that write their output in place (:mod:`tracekit.score_files`).
No table library is imported: the command starts in a fraction of a second.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring as _scanstring
from json.encoder import encode_basestring as _encode_string
from typing import Any

from tracekit.errors import InputFormatError
from tracekit.extract import MAX_SCAN_CHARS, final_answer
from tracekit.tasks import Task

try:  # the C fast path of reading a response (built by `pip install` where a compiler is present)
    from tracekit._jsonscan import scan_string as _native_scan
except ImportError:  # json's own scanner reads every response: the same results, slower
    _native_scan = None

READ_BYTES = 256 << 10  # score_jsonl reads this much at a time (to the end of a line): memory is reused
_CACHE_LIMIT = 20_000  # cached spellings and verdicts before the caches start over (memory flat, ~20 MB)
_SENTINEL = "\x00response\x00"  # stands for a line's response while its other fields are parsed
_SENTINEL_JSON = json.dumps(_SENTINEL)
_dumps = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(obj, ensure_ascii=False), built once
UTF8_HINT = "Hint: save the file as UTF-8 (every line of a jsonl file is UTF-8 text), or remove that line."


def score_jsonl(
    task: Task, src, dst, *, chunk_bytes: int = READ_BYTES, name: str | None = None
) -> tuple[int, list[str]]:
    """Score every line of a jsonl file: each line holds the task's fields and a ``response``.

    Writes each input line plus ``is_correct`` and ``reason`` to ``dst``. A malformed line
    (not JSON, nested too deep, a missing field, a field of the wrong type, a string that is
    not valid Unicode) is skipped and reported (``"line N: ..."``) without stopping the
    others. Returns the number of scored lines and the problems found. Bytes that are not
    UTF-8 text (``src`` read in binary) raise :class:`~tracekit.errors.InputFormatError` with
    their line, column and offset in the file (prefixed with ``name`` when given).

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
    try:
        for text, last_ends, binary in line_blocks(src, chunk_bytes):
            if (
                scorer is None
            ):  # a line of a binary file is blank as bytes are (ASCII whitespace), of text as str
                scorer = Scorer(task, ASCII_BLANK if binary else None)
            out, lines = scorer.block(text, number, last_ends)
            number += lines
            if out:
                dst.write(out)
    except NotUTF8 as bad:
        raise bad.error(number, name) from None
    if scorer is None:
        return 0, []
    return scorer.scored, [f"line {number}: {problem}" for number, problem in scorer.errors]


class NotUTF8(Exception):
    """Bytes that are not UTF-8 text: the line (1-based, in its block), its column (1-based, in
    bytes), the byte and its offset in the file (0-based)."""

    def __init__(self, line: int, column: int, byte: int, offset: int) -> None:
        super().__init__(line, column, byte, offset)
        self.line, self.column, self.byte, self.offset = line, column, byte, offset

    def error(self, lines_before: int, name: str | None) -> InputFormatError:
        """The error to raise, where the block started after ``lines_before`` lines."""
        where = f"{name}: " if name else ""
        msg = (
            f"{where}line {lines_before + self.line}: not UTF-8 text (byte 0x{self.byte:02x} at column "
            f"{self.column}; byte offset {self.offset} in the file)."
        )
        return InputFormatError(f"{msg}\n{UTF8_HINT}")


def line_blocks(src, chunk_bytes: int, offset: int = 0):
    """``src`` as blocks of whole lines, about ``chunk_bytes`` each: ``(text, last_ends, binary)``,
    where every line of ``text`` ends with ``\n`` (one is added to a last line without one),
    ``last_ends`` says whether the block's last line ended with a newline in ``src`` and
    ``binary`` whether ``src`` gives bytes. Bytes that are not UTF-8 raise :class:`NotUTF8`
    (``offset``: where ``src`` starts in its file; the line counted in the block)."""
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
        if binary:
            try:
                text = piece.decode("utf-8")
            except UnicodeDecodeError as exc:  # '\n' is never part of a longer UTF-8 sequence
                start = piece.rfind(b"\n", 0, exc.start) + 1
                line = piece.count(b"\n", 0, exc.start) + 1
                raise NotUTF8(line, exc.start - start + 1, piece[exc.start], offset + exc.start) from None
        else:
            text = piece
        offset += len(piece)
        yield (text if ends else text + "\n"), ends, binary


class Scorer:
    """The state of one scoring run: counts, errors and the per-spelling caches."""

    def __init__(self, task: Task, blank: str | None) -> None:
        self.task = task
        self.blank = blank
        self.scored = 0
        self.errors: list[tuple[int, str]] = []  # (line number, problem)
        # (line up to the response's text, line after it) -> the other fields' outputs by answer,
        # or None: a problem of those fields (in `problems`), or lines to read one at a time
        self.spellings: dict[tuple[str, str], dict | None] = {}
        self.problems: dict[tuple[str, str], str] = {}
        self.cached = 0
        self.verdicts: dict[tuple[bool, str], str] = {}  # (is_correct, reason) -> _verdict_text
        declared = {*task.fields, *task.field_types}
        self.fast = "response" not in declared
        # a verdict depends on the response only through its final answer unless a task scores
        # otherwise, and a check bounded by a timeout may give another verdict next time
        self.share = type(task).score is Task.score and task.verifier_timeout is None

    def block(self, text: str, first: int, last_ends: bool) -> tuple[str, int]:
        """Score the lines of ``text`` (numbered from ``first + 1``; each ends with ``\\n``, the
        last one in the file only when ``last_ends``): the output text of the scored ones and the
        number of lines.

        The lines are read in place (offsets into ``text``): the fast path takes a response
        spelt ``"response": "..."`` (its final answer read inside the extraction window), with
        other fields already seen; anything else is read alone (:func:`_score_line`).
        """
        out: list[str] = []  # three pieces a scored line
        emit = out.extend
        find = text.find
        spellings, errors, missing = self.spellings, self.errors, _MISSING
        fast = self.fast
        scan, native = (_native_scan, True) if _native_scan is not None else (_scan_python, False)
        size = len(text)
        start, number = 0, first
        while start < size:
            stop = find("\n", start)
            number += 1
            if fast:
                i = find('"response": "', start, stop)
                if i >= 0:
                    v = i + 13
                else:
                    i = find('"response":"', start, stop)
                    v = i + 12 if i >= 0 else 0
                if v:  # strict: a raw newline ends the string with an error, so end <= stop
                    found = scan(text, v)
                    if found is None and native:  # \u, a control character...: json's scanner decides
                        found = _scan_python(text, v)
                    if found is not None:
                        response, end, rewrite = found
                        key = (text[start:v], text[end:stop])
                        entry = spellings.get(key, missing)
                        if entry is missing:
                            entry = self._spelling(*key)
                        if entry is not None:
                            answer = final_answer(response)
                            # past the window with no answer in it: too_long, read alone
                            if answer is not None or len(response) <= MAX_SCAN_CHARS:
                                done = entry.get(answer)
                                if done is None:
                                    done = self._verdict(entry, answer, response)
                                before, after = done
                                if before is not None:
                                    if not rewrite:
                                        emit((before, text[v - 1 : end], after))  # as json.dumps writes it
                                        start = stop + 1
                                        continue
                                    token = _encode_string(response)
                                    if token.isascii() or _encodable(token):  # else a lone surrogate
                                        emit((before, token, after))
                                        start = stop + 1
                                        continue
                                elif after is not None:
                                    errors.append((number, after))
                                    start = stop + 1
                                    continue
                        elif key in self.problems:
                            errors.append((number, self.problems[key]))
                            start = stop + 1
                            continue
            line, problem = _score_line(self.task, text[start:stop], stop < size - 1 or last_ends, self.blank)
            if problem is not None:
                errors.append((number, problem))
            elif line is not None:
                emit((line, "\n", ""))
            start = stop + 1
        self.scored += len(out) // 3
        return "".join(out), number - first

    def _spelling(self, head: str, tail: str) -> dict | None:
        """What the other fields of lines spelt ``head + <response> + tail`` are: a dict (the
        parsed fields, their output layout, outputs by answer) or None (read these lines one at
        a time, or a problem of those fields: kept in ``problems``)."""
        if len(self.spellings) >= _CACHE_LIMIT or self.cached >= _CACHE_LIMIT:
            self.spellings.clear()
            self.problems.clear()
            self.cached = 0
        entry = None
        # no other string can hold the sentinel's NUL: JSON writes it only as \\u0000
        if "\\u0000" not in head and "\\u0000" not in tail:
            try:
                # the line with a sentinel as the response's text: valid exactly when the line is
                record = json.loads(head + _SENTINEL_JSON[1:] + tail)
            except (ValueError, RecursionError):
                record = None
            if type(record) is dict and record.get("response") == _SENTINEL:
                problem = self.task.field_error(record)
                if problem is None:
                    entry = {_RECORD: record, _LAYOUT: _layout(record)}
                else:
                    self.problems[(head, tail)] = problem
        self.spellings[(head, tail)] = entry
        return entry

    def _verdict(self, entry: dict, answer: str | None, response: str) -> tuple[str | None, str | None]:
        """The output around a response ``(before, after)``, ``(None, problem)`` or ``(None, None)``
        (read the line alone); kept in ``entry`` by answer where verdicts are shared."""
        record = entry[_RECORD].copy()
        record["response"] = response
        task = self.task
        try:
            # share: what Task.score does with a response inside the extraction window
            check = task.score_answer(answer, record) if self.share else task.score(response, record)
        except (TypeError, KeyError, AttributeError, InputFormatError) as exc:
            done: Any = (None, f"the fields {list(task.fields)} cannot be verified ({exc!r})")
        else:
            layout = entry[_LAYOUT]
            if layout is not None:  # json.dumps appends the two new fields: the same text
                verdict = (check.is_correct, check.reason)
                # (1, "ok") would hash as (True, "ok") does: bools only
                fields = self.verdicts.get(verdict) if type(verdict[0]) is bool else None
                if fields is None:
                    fields = _verdict_text(*verdict)
                    if type(verdict[0]) is bool and type(verdict[1]) is str and len(self.verdicts) < 10_000:
                        self.verdicts[verdict] = fields
                done = (layout[0], layout[1] + fields) if fields else _ALONE
            else:
                record["response"] = _SENTINEL
                record.update(is_correct=check.is_correct, reason=check.reason)
                done = _layout(record, closed=True) or _ALONE
        if self.share:
            entry[answer] = done
            self.cached += 1
        return done


def _scan_python(text: str, start: int) -> tuple[str, int, bool] | None:
    """The JSON string that starts at ``text[start]`` (after its quote), read by json's scanner:
    its value, the index after its closing quote and whether json.dumps would spell it otherwise
    (a ``\\u`` or ``\\/`` escape in it, or a false alarm such as ``\\\\u``); None when it is not
    valid JSON. ``tracekit._jsonscan.scan_string`` returns the same for the strings it reads."""
    try:
        value, end = _scanstring(text, start)
    except ValueError:
        return None
    return value, end, _REWRITTEN.search(text, start, end) is not None


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
    text = _dumps(record)
    at = text.find(_SENTINEL_JSON)
    if at < 0 or text.count(_SENTINEL_JSON) != 1 or not (text.isascii() or _encodable(text)):
        return None
    after = text[at + len(_SENTINEL_JSON) :]
    return text[:at], (after + "\n" if closed else after[:-1])


# the escapes of a JSON string that json.dumps (ensure_ascii=False) writes otherwise: \/ as / and
# \u0041 as A; it writes the others (\" \\ \b \f \n \r \t) as they are
_REWRITTEN = re.compile(r"\\[u/]")
ASCII_BLANK = " \t\n\r\x0b\x0c"  # what bytes.strip() removes
_MISSING = object()
_ALONE = (None, None)  # a line whose output json.dumps would not write as the fast path does: read it alone
_RECORD = object()  # an entry's keys for the parsed other fields and their layout (answers: str or None)
_LAYOUT = object()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _score_line(task: Task, line: str, newline: bool, blank: str | None) -> tuple[str | None, str | None]:
    """One line read alone, as ``tracekit score`` defines it: the output text (None for a
    blank line: only ``blank`` characters, or only whitespace where that is None) or the
    line's problem."""
    raw = line + "\n" if newline else line
    if not (raw.strip(blank) if blank is not None else raw.strip()):
        return None, None
    record, problem = _read_line(task, raw)
    if problem is not None:
        return None, problem
    try:
        check = task.score(record["response"], record)
    except (TypeError, KeyError, AttributeError, InputFormatError) as exc:
        # fields of the right types that the verifier still cannot read: an input error, not a verdict
        return None, f"the fields {list(task.fields)} cannot be verified ({exc!r})"
    record.update(is_correct=check.is_correct, reason=check.reason)
    text = _dumps(record)
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
