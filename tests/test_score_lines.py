"""``score_jsonl`` (chunked, cached) against the per-line semantics it replaced, on hostile files.

The oracle below is the line-by-line loop ``tracekit score`` ran before it read files in chunks:
``json.loads`` of each line, the field checks, ``task.score`` and ``json.dumps`` of the record.
The fast path must give the same output bytes, the same count and the same line-numbered errors.
"""

from __future__ import annotations

import io
import json
import random
from json.encoder import encode_basestring as _encode_string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.errors import InputFormatError
from tracekit.score import score_jsonl
from tracekit.tasks import Task, get_task


def oracle(task: Task, data: bytes) -> tuple[str, int, list[str]]:
    """The output text, the number of scored lines and the errors, one line at a time; a line
    that is not UTF-8 raises :class:`NotText` (a file of the wrong encoding is an input error)."""
    out: list[str] = []
    errors: list[str] = []
    offset = 0
    for number, line in enumerate(io.BytesIO(data), start=1):
        offset += len(line)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotText(number, exc.start + 1, line[exc.start], offset - len(line) + exc.start) from None
        if not line.strip():
            continue
        line = line.decode("utf-8")
        problem = None
        try:
            record = json.loads(line)
        except RecursionError:
            record, problem = {}, "nested too deeply to read (JSON arrays or objects inside each other)"
        except ValueError as exc:
            record, problem = {}, f"not valid JSON ({exc})"
        if problem is None:
            if not isinstance(record, dict):
                problem = f"expected a JSON object, got {type(record).__name__}"
            elif "response" not in record:
                problem = (
                    f"missing field 'response' (task {task.name!r} needs {list(task.fields)} and 'response')"
                )
            elif record["response"] is not None and not isinstance(record["response"], str):
                problem = "'response' must be a string"
            else:
                problem = task.field_error(record)
        if problem is None:
            try:
                check = task.score(record["response"], record)
            except (TypeError, KeyError, AttributeError, InputFormatError) as exc:
                errors.append(f"line {number}: the fields {list(task.fields)} cannot be verified ({exc!r})")
                continue
            record.update(is_correct=check.is_correct, reason=check.reason)
            text = json.dumps(record, ensure_ascii=False)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                problem = (
                    f"a string holds a lone surrogate ({text[exc.start]!a}), which is not valid Unicode text"
                )
        if problem is not None:
            errors.append(f"line {number}: {problem}")
            continue
        out.append(text + "\n")
    return "".join(out), len(out), errors


class NotText(Exception):
    """The oracle's reading of bytes that are not UTF-8: line, column, byte, offset in the file."""

    def message(self) -> str:
        line, column, byte, offset = self.args
        return f"line {line}: not UTF-8 text (byte 0x{byte:02x} at column {column}; byte offset {offset} in the file)."


NOT_UTF8 = [
    b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>\xff"}',  # Latin-1-ish
    b'{"numbers": [3, 4, 7], "target": 25, "response": "\xed\xa0\x80"}',  # an encoded surrogate
    b'{"numbers": [3, 4, 7], "target": 25, "response": "caf\xc3"}',  # a sequence cut short
]


def hostile_countdown_lines() -> list[bytes]:
    """Good lines in every spelling JSON allows, and every kind of malformed line."""
    fields = {"numbers": [3, 4, 7], "target": 25}
    rights = ["3 * 4 + 7 + 1", "7 * 3 + 4", "7 * 3 + 4 = 25", "Step 1: 7 * 3 = 21\nStep 2: 21 + 4 = 25"]
    thinking = '<think>Let me try. 3 + 4 = 7, no. Perhaps <answer>7 + 4</answer>? "quoted" \\ back\tslash é 😀</think>'
    rows: list[bytes] = []

    def add(obj, **dumps) -> None:
        rows.append(json.dumps(obj, **dumps).encode("utf-8"))

    for i, answer in enumerate(rights * 3):
        add({**fields, "response": f"{thinking}\nSo: <answer>{answer}</answer>"})  # ensure_ascii: \u escapes
        add({**fields, "response": f"{thinking}\nSo: <answer>{answer}</answer>"}, ensure_ascii=False)
        add({"response": f"<answer>{answer}</answer>", **fields}, separators=(",", ":"), ensure_ascii=False)
        add(
            {"id": i, **fields, "response": f"x\n<answer> {answer} </answer>", "score": 0.5},
            ensure_ascii=False,
        )
    add({**fields, "response": "no tags at all"})
    add({**fields, "response": thinking + " then nothing"})
    add({**fields, "response": "<answer></answer>"})
    add({**fields, "response": "<answer>1 + 2 or 3</answer>"})
    add({**fields, "response": "<answer>a</answer>b</answer>"})
    add({**fields, "response": None})
    add({**fields, "response": ""})
    add({**fields, "response": "<answer>7 * 3 + 4</answer>", "is_correct": "stale", "reason": 1})
    add(
        {
            "question": 'Say <answer>7 * 3 + 4</answer>, "response": "<answer>1</answer>"',
            **fields,
            "response": "<answer>3 + 4</answer>",
        }
    )
    add({"meta": {"response": "<answer>7 * 3 + 4</answer>"}, **fields, "response": "<answer>3</answer>"})
    add({'x"response': "<answer>7 * 3 + 4</answer>", **fields, "response": "<answer>3</answer>"})
    add({'x"response': "<answer>3</answer>", **fields, "response": "<answer>3</answer>"})
    add({**fields, "note": "nul \x00 inside", "response": "<answer>7 * 3 + 4</answer>"})
    # the first "response" is not the line's: the line's one spells the stand-in the fast path uses
    add({"meta": {"response": "<answer>3</answer>"}, **fields, "response": "\x00response\x00"})
    add({"target": {"response": "<answer>3</answer>"}, "numbers": [3, 4, 7], "response": "\x00response\x00"})
    add(
        {"meta": {"response": "<answer>3</answer>"}, **fields, "response": "\x00response\x00"},
        ensure_ascii=False,
    )
    add({**fields, "response": "<answer>7 * 3 + 4</answer>", "require_all": True})
    add({**fields, "response": "<answer>7 * 3 + 4</answer>", "require_all": 1})
    add({**fields, "response": "<answer>3 + 4 + 7 + 11</answer>"})
    add({**fields, "response": "<answer>" + "1 + " * 600 + "1</answer>"})  # a long answer
    add({**fields, "response": "<answer>7 * 3 + 4</answer>" + "." * 1_000_100})  # > the window
    add({**fields, "response": "x" * 300_000 + "<answer>7 * 3 + 4</answer>"})  # a huge line that scores
    rows += [
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4<\\/answer>"}',  # \/ escape
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>", "response": "no"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "no", "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response" : "<answer>7 * 3 + 4</answer>" }',
        b'  {"numbers":[3,4,7],"target":25,"response":\t"<answer>7 * 3 + 4</answer>"}  ',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>"}\r',  # CRLF
        b'{"numbers": [3, 4, 7], "target": 25.0, "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": NaN, "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>"} trailing',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>",}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>"',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "bad \\x escape"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "raw\ttab"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "lone \\ud800 surrogate"}',
        b'{"numbers": [3, 4, 7], "target": 25, "note": "\\udfff", "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "pair \\ud83d\\ude00 <answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>\\u0037 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "\\u003canswer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>\\u0000"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>", "k": "\\u0000"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": "'
        + "é<answer>7 * 3 + 4</answer>".encode()
        + b'"}',
        b"{not json",
        b"[1, 2]",
        b'"response"',
        b'{"response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": ["3", 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [true, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": "25", "response": "<answer>7 * 3 + 4</answer>"}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": 42}',
        b'{"numbers": [3, 4, 7], "target": 25, "response": ["<answer>1</answer>"]}',
        b'{"numbers": [3, 4, 7], "target": 25}',
        b"[" * 100_000,
        b"",
        b"   ",
        b"\x0c",
        "\u3000".encode(),
        b"\t\r",
        '{"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>"}\u2028'.encode(),
    ]
    return rows


def score_both(task: Task, data: bytes, chunk: int) -> tuple[tuple, tuple]:
    out = io.StringIO()
    scored, errors = score_jsonl(task, io.BytesIO(data), out, chunk_bytes=chunk)
    return (out.getvalue(), scored, errors), oracle(task, data)


@pytest.fixture(params=["native", "python"])
def scanner(request, monkeypatch):
    """Each test twice: responses read by the C scanner (where it is built) and by json's alone."""
    import tracekit.score as score

    if request.param == "python":
        monkeypatch.setattr(score, "_native_scan", None)
    elif score._native_scan is None:
        pytest.skip("tracekit._jsonscan is not built (no C compiler)")
    return request.param


@pytest.mark.parametrize("chunk", [1 << 20, 7, 4096])
@pytest.mark.parametrize("seed", [0, 1])
def test_chunked_scoring_matches_the_per_line_semantics(chunk, seed, scanner):
    rows = hostile_countdown_lines()
    random.Random(seed).shuffle(rows)
    ends = [b"\n", b"\r\n"]
    data = b"".join(r + ends[i % 7 == 3] for i, r in enumerate(rows))
    got, want = score_both(get_task("countdown"), data, chunk)
    assert got[1:] == want[1:]
    assert got[0] == want[0]
    assert want[1] > 40 and len(want[2]) > 20  # the file has both kinds, and the fast path took most


def test_a_last_line_without_newline_and_a_gsm8k_file(scanner):
    task = get_task("gsm8k")
    lines = [
        json.dumps({"answer": "1,234", "checker": "number", "response": "<answer>$1234</answer>"}),
        json.dumps({"answer": 7, "response": "<answer>7</answer>"}),
        json.dumps({"answer": 7, "checker": "nope", "response": "<answer>7</answer>"}),
        json.dumps({"answer": 7, "checker": "choice", "response": "<answer>7</answer>"}),
        json.dumps({"answer": [7], "response": "<answer>7</answer>"}),
        json.dumps({"answer": "7", "labels": "A", "response": "<answer>7</answer>"}),
        json.dumps({"answer": "7", "checker": "regex", "response": "<answer>7</answer>"}),
        '{"answer": "7", "response": "<answer>8</answer>"',
        json.dumps({"answer": "7", "response": "<answer>7.0</answer>"}),
    ]
    for data in ("\n".join(lines).encode(), ("\n".join(lines) + "\n").encode()):
        for chunk in (1 << 20, 5):
            got, want = score_both(task, data, chunk)
            assert got == want
    assert want[1] >= 4


def test_repeated_problems_and_answers_are_scored_as_each_line_alone(scanner):
    """The fast path caches per (other fields, answer): lines that share them still differ by line."""
    task = get_task("countdown")
    rng = random.Random(3)
    problems = [
        {"numbers": [rng.randint(1, 9) for _ in range(3)], "target": rng.randint(10, 30)} for _ in range(5)
    ]
    answers = ["1 + 2", "3 * 4 + 5", "9 + 9 + 9", "", "x", "7 * 3"]
    data = b"".join(
        json.dumps(
            {**rng.choice(problems), "response": f"t{i}<answer>{rng.choice(answers)}</answer>"}
        ).encode()
        + b"\n"
        for i in range(500)
    )
    got, want = score_both(task, data, 1000)
    assert got == want


class Parity(Task):
    """A task that scores the whole response (its own ``score``): no verdict is shared by answer."""

    name = "parity_test"
    fields = ("x",)

    def score(self, response, meta):
        from tracekit.tasks import Check

        return Check(len(response or "") % 2 == 0, "ok" if len(response or "") % 2 == 0 else "odd")


def test_a_task_that_scores_the_whole_response_sees_each_response():
    data = b"".join(
        json.dumps({"x": 1, "response": "<answer>1</answer>" + "." * i}).encode() + b"\n" for i in range(20)
    )
    got, want = score_both(Parity(), data, 1 << 20)
    assert got == want
    assert {json.loads(line)["reason"] for line in got[0].splitlines()} == {"ok", "odd"}


def test_scoring_a_file_imports_no_table_schemas():
    """The score path (verify, the tasks, extraction) stays light: no pandera or pandas."""
    import subprocess
    import sys

    code = (
        "import io, sys; from tracekit.tasks import get_task; from tracekit.score import score_jsonl; "
        'score_jsonl(get_task(\'countdown\'), io.BytesIO(b\'{"numbers": [1], "target": 1, "response": ""}\'), '
        "io.StringIO()); print(sorted({'pandera', 'pandas', 'pyarrow'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("chunk", [None, 4096, 100_000])
def test_scoring_a_file_in_worker_processes_matches_the_per_line_semantics(tmp_path, monkeypatch, chunk):
    import tracekit.score_files as files

    rows = hostile_countdown_lines()
    random.Random(2).shuffle(rows)
    data = (
        b"".join(r + (b"\r\n" if i % 5 == 1 else b"\n") for i, r in enumerate(rows)) + rows[0]
    )  # no last \n
    src = tmp_path / "in.jsonl"
    src.write_bytes(data)
    if chunk is None:  # chunk boundaries just after a newline, the first one and more
        chunk = data.index(b"\n") + 1
    monkeypatch.setattr(files, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(files, "_cpus", lambda: 3)
    scored, errors = files.score_file("countdown", src, tmp_path / "out.jsonl")
    text, want_scored, want_errors = oracle(get_task("countdown"), data)
    assert (scored, errors) == (want_scored, want_errors)
    assert (tmp_path / "out.jsonl").read_bytes() == text.encode("utf-8")


def test_caches_that_start_over_change_nothing(monkeypatch, scanner):
    import tracekit.score as score

    monkeypatch.setattr(score, "_CACHE_LIMIT", 3)
    rows = hostile_countdown_lines()
    data = b"\n".join(rows * 2) + b"\n"
    got, want = score_both(get_task("countdown"), data, 1 << 20)
    assert got == want


@pytest.mark.parametrize("chunk", [1 << 20, 7, 4096])
@pytest.mark.parametrize("bad", range(len(NOT_UTF8)))
def test_bytes_that_are_not_utf8_stop_the_file_with_their_line_and_offset(chunk, bad):
    """A file of the wrong encoding is an input error (exit status 2 in the CLI), not a line to skip:
    the message names the first such line, the byte, its column and its offset in the file."""
    rows = hostile_countdown_lines()
    random.Random(bad).shuffle(rows)
    rows.insert(17 + bad, NOT_UTF8[bad])
    rows.insert(40, NOT_UTF8[(bad + 1) % len(NOT_UTF8)])  # a later one is not reached
    data = b"".join(r + (b"\r\n" if i % 7 == 3 else b"\n") for i, r in enumerate(rows))
    with pytest.raises(NotText) as want:
        oracle(get_task("countdown"), data)
    with pytest.raises(InputFormatError) as got:
        score_jsonl(
            get_task("countdown"), io.BytesIO(data), io.StringIO(), chunk_bytes=chunk, name="in.jsonl"
        )
    assert str(got.value).splitlines()[0] == "in.jsonl: " + want.value.message()
    assert want.value.args[0] == 18 + bad and "Hint: save the file as UTF-8" in str(got.value)
    assert data[want.value.args[3]] == want.value.args[2] >= 0x80


@pytest.mark.parametrize("chunk", [None, 4096])
def test_workers_stop_at_the_first_bytes_that_are_not_utf8(tmp_path, monkeypatch, chunk):
    import tracekit.score_files as files

    rows = hostile_countdown_lines()
    random.Random(5).shuffle(rows)
    rows.insert(len(rows) // 2, NOT_UTF8[0])
    rows.append(NOT_UTF8[1])
    data = b"".join(r + b"\n" for r in rows)
    src = tmp_path / "in.jsonl"
    src.write_bytes(data)
    monkeypatch.setattr(files, "CHUNK_BYTES", chunk or data.index(b"\n") + 1)
    monkeypatch.setattr(files, "_cpus", lambda: 3)
    with pytest.raises(NotText) as want:
        oracle(get_task("countdown"), data)
    with pytest.raises(InputFormatError) as got:
        files.score_file("countdown", src, tmp_path / "out.jsonl")
    assert str(got.value).splitlines()[0] == f"{src}: " + want.value.message()
    assert not (tmp_path / "out.jsonl").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "in.jsonl"
    ]


BUGGY_TASK = '''
from tracekit.tasks.countdown import Countdown


class Buggy(Countdown):
    """Countdown whose verifier has a bug on one answer."""

    name = "buggy_countdown"

    def check(self, answer, meta):
        if answer == "99 + 99 + 99":
            raise RuntimeError("a verifier bug")
        return super().check(answer, meta)
'''


def test_a_verifier_bug_in_a_worker_stops_the_file_without_waiting_forever(tmp_path, monkeypatch):
    """A chunk that raises hands its turn on: the workers after it finish, the error reaches the
    caller as it is, and no output appears."""
    import signal

    import tracekit.score_files as files

    (tmp_path / "buggy.py").write_text(BUGGY_TASK, encoding="utf-8")
    good = json.dumps({"numbers": [3, 4, 7], "target": 25, "response": "<answer>7 * 3 + 4</answer>"})
    bad = json.dumps({"numbers": [3, 4, 7], "target": 25, "response": "<answer>99 + 99 + 99</answer>"})
    lines = [good] * 40 + [bad] + [good] * 40
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(files, "CHUNK_BYTES", len(good) * 3)
    monkeypatch.setattr(files, "_cpus", lambda: 3)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the workers waited for a turn that never came"))
    signal.alarm(120)
    try:
        with pytest.raises(RuntimeError, match="a verifier bug"):
            files.score_file(f"{tmp_path / 'buggy.py'}:Buggy", src, tmp_path / "out.jsonl")
    finally:
        signal.alarm(0)
    assert not (tmp_path / "out.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buggy.py", "in.jsonl"]


# the characters that matter to a JSON string's reader, and some that do not
_PIECES = [
    '"',
    "\\",
    "\\/",
    "\\n",
    "\\u0041",
    "\\ud83d\\ude00",
    "\\x",
    "\n",
    "\t",
    "\x00",
    "\x1f",
    "\x7f",
    "a",
    " ",
    "é",
    "\u20ac",
    "😀",
    "\ud800",
    "<answer>",
    "/",
    "u",
]


def _left_to_json(raw: str) -> bool:
    """Whether the raw body of a valid JSON string holds a \\u escape, a control character or a
    surrogate (what the C scanner does not read)."""
    i = 0
    while i < len(raw):
        if raw[i] == "\\":
            if raw[i + 1] == "u":
                return True
            i += 2
            continue
        if raw[i] < " " or "\ud800" <= raw[i] <= "\udfff":
            return True
        i += 1
    return False


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30), st.text(max_size=5))
def test_the_c_scanner_reads_what_json_reads(pieces, before):
    """Where the C scanner answers, json's scanner gives the same value and end, and the raw
    string is what json.dumps writes unless it says otherwise; it answers every other string."""
    import tracekit.score as score

    if score._native_scan is None:
        pytest.skip("tracekit._jsonscan is not built (no C compiler)")
    text = before + '"' + "".join(pieces)
    start = len(before) + 1
    got = score._native_scan(text, start)
    want = score._scan_python(text, start)
    if got is None:  # json rejects it, or it holds what the C scanner leaves to json
        assert want is None or _left_to_json(text[start : want[1] - 1]), (text, want)
        return
    assert want is not None and got[:2] == want[:2], (text, got, want)
    value, end, slash = got
    assert (_encode_string(value) == '"' + text[start:end]) is (not slash), (text, got)


def test_the_c_scanner_was_built_where_required():
    """CI sets TRACEKIT_REQUIRE_NATIVE=1: a broken C build must not silently fall back there."""
    import os

    import tracekit.score as score

    if os.environ.get("TRACEKIT_REQUIRE_NATIVE") == "1":
        assert score._native_scan is not None
