"""The verify stage on its own: verdict columns, what becomes a verdict and what raises, scoring files."""

import io
import json

import polars as pl
import pytest

from tracekit.errors import InputFormatError
from tracekit.score import score_jsonl
from tracekit.tasks import Check, Task, get_task
from tracekit.verify import VERDICT_COLUMNS, verify, verify_responses


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


def test_verify_a_frame_against_its_problems():
    problems = get_task("multiplication").generate(2, seed=0)
    answers = [problems["answer"][0], "0"]
    samples = pl.DataFrame(
        {
            "problem_id": problems["problem_id"],
            "response": [f"<answer>{a}</answer>" for a in answers],
            "is_correct": [False, True],  # stale verdicts are replaced
        }
    )
    out = verify(samples, problems)
    assert out["is_correct"].to_list() == [True, False] and out["reason"].to_list() == ["ok", "wrong_value"]
    with pytest.raises(InputFormatError, match="not among the problems"):
        verify(samples, problems.head(1))


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
