"""The verify stage on its own: verdict columns, what becomes a verdict and what raises, scoring files."""

import io
import json

import pytest
from cli_contract import GOOD

from tracekit.errors import InputFormatError
from tracekit.score import score_jsonl
from tracekit.tasks import Check, Task, get_task
from tracekit.verify import VERDICT_COLUMNS, verify_responses


def test_verdict_columns_have_the_samples_types():
    out = verify_responses(
        ["<answer>42</answer>", "<answer>41</answer>", None, "<answer>(1 + 2</answer>"],
        ["multiplication", "multiplication", "multiplication", "countdown"],
        [{"a": 6, "b": 7}] * 3 + [{"numbers": [1, 2, 3], "target": 3}],
    )
    assert out.columns == list(VERDICT_COLUMNS)
    assert out.rows() == [
        ("42", True, "ok"),
        ("41", False, "wrong_value"),
        (None, False, "no_answer"),
        ("(1 + 2", False, "unparseable"),  # model text that does not parse: a verdict
    ]
    from tracekit.schemas import polars_schema

    assert all(out.schema[c] == polars_schema("samples")[c] for c in VERDICT_COLUMNS)


def test_verify_responses_against_generated_problems():
    # as the sample stage calls it: each response with its problem's task and fields
    problems = get_task("multiplication").generate(2, seed=0)
    answers = [problems["answer"][0], "0"]
    out = verify_responses(
        [f"<answer>{a}</answer>" for a in answers],
        problems["task"].to_list(),
        [json.loads(m) for m in problems["meta"]],
    )
    assert out["is_correct"].to_list() == [True, False] and out["reason"].to_list() == ["ok", "wrong_value"]


def test_a_problem_missing_a_verifier_field_raises():
    """Item 11: not an 'unparseable' verdict that would poison the filter and the rewards."""
    with pytest.raises(InputFormatError, match=r"(?s)no field\(s\) \['target'\].*Hint"):
        get_task("countdown").score("<answer>1 + 2</answer>", {"numbers": [1, 2]})
    with pytest.raises(InputFormatError):
        get_task("multiplication").score(None, {"a": 1})  # whatever the response


class Broken(Task):
    name = "broken"
    fields = ("x",)

    def check(self, answer, meta):
        return Check(meta["y"] == answer, "ok")  # a verifier bug: reads a field it does not declare


def test_a_verifier_bug_raises():
    with pytest.raises(KeyError):
        Broken().score("<answer>1</answer>", {"x": 1})


def test_score_jsonl_scores_good_lines_and_reports_bad_ones():
    lines = [
        json.dumps({"words": ["cat", "apple", "tiger"], "length": 3, "response": "<answer>cat</answer>"}),
        "{not json",
        json.dumps({"length": 3, "response": "x"}),
        json.dumps(
            {"words": 5, "length": 3, "response": "<answer>cat</answer>"}
        ),  # wrong type: not a verdict
        "",
        json.dumps({"words": ["cat", "apple", "tiger"], "length": 3, "response": "<answer>dog</answer>"}),
    ]
    out = io.StringIO()
    scored, errors = score_jsonl(get_task("acronym"), io.StringIO("\n".join(lines)), out)
    assert scored == 2
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 4"]
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["is_correct"], r["reason"]) for r in rows] == [(True, "ok"), (False, "wrong_letters")]


# ------------------------------------------------------ the score command through the command line
def test_score_reports_malformed_lines_and_keeps_the_others(tk, tmp_path):
    lines = [
        json.dumps(GOOD),
        "[" * 100_000,  # nested too deep for Python's JSON reader
        '{"numbers": [1, 2, 3], "target": 9, "response": "\\ud800"}',  # a lone surrogate
        json.dumps({**GOOD, "numbers": ["1", "2", "3"]}),  # string numbers
        json.dumps({**GOOD, "target": "9"}),  # a string target: the same rule as the numbers
        json.dumps({**GOOD, "numbers": [True, 2, 3], "response": "<answer>(2 + 1) * 3</answer>"}),
        json.dumps({**GOOD, "response": 42}),
        json.dumps([1, 2]),
        "{not json",
        json.dumps({"numbers": [1, 2, 3], "response": "x"}),
        json.dumps({**GOOD, "response": GOOD["response"] + "." * 1_100_000}),  # answer, then > 1 MB
        json.dumps({**GOOD, "response": "<answer>1 + 2</answer>"}),
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, stdout, err = tk("score", "--task", "countdown", src, "--out", out)
    assert code == 1 and "Traceback" not in err
    reported = {int(line.split("line ")[1].split(":")[0]): line for line in err.splitlines()}
    assert sorted(reported) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "nested too deeply" in reported[2] and "lone surrogate" in reported[3]
    assert "field 'numbers' must be a list of integers" in reported[4] and "field 'target'" in reported[5]
    assert "True" in reported[6] and "'response' must be a string" in reported[7]
    assert "missing field(s) ['target']" in reported[10]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["reason"] for r in rows] == ["ok", "too_long", "wrong_value"]
    assert "3 line(s)" in stdout and "9 malformed" in stdout


def test_score_reports_a_line_that_is_not_utf8(tk, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = json.dumps(GOOD).encode()
    src.write_bytes(good + b"\n" + good.replace(b"(1 + 2)", b"(1 + 2)\xff") + b"\n" + good + b"\n")
    code, stdout, err = tk("score", "--task", "countdown", src, "--out", out)
    # a file of the wrong encoding is bad input (exit status 2, one error line, no output), not a line to skip
    assert code == 2 and "Traceback" not in err and err.startswith("error: ")
    offset = len(good) + 1 + good.index(b"(1 + 2)") + 7
    assert (
        f"{src}: line 2: not UTF-8 text (byte 0xff at column {offset - len(good)}; byte offset {offset}"
        in err
    )
    assert "Hint: save the file as UTF-8" in err
    assert not out.exists() and stdout == ""
