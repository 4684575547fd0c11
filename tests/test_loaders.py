import json

import polars as pl
import pytest
from typer.testing import CliRunner

from tracekit.cli import app
from tracekit.errors import InputFormatError
from tracekit.tasks import get_task


def test_gsm8k(tmp_path):
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(
        json.dumps({"question": "2 apples and 3 more?", "answer": "2 + 3 = 5\n#### 1,005"}) + "\n"
    )
    task = get_task("gsm8k")
    df = task.load(path)
    meta = json.loads(df["meta"][0])
    assert df["answer"][0] == "1,005"
    for good in ["1005", "1,005", "$1,005", "1005.00", "1005 apples"]:
        assert task.score_answer(good, meta).is_correct, good
    assert task.score_answer("1004", meta).reason == "wrong_value"
    assert task.score_answer("about a thousand", meta).reason == "not_a_number"


def test_commonsenseqa(tmp_path):
    path = tmp_path / "csqa.parquet"
    pl.DataFrame(
        {
            "question": ["Where do fish live?"],
            "choices": [{"label": ["A", "B"], "text": ["sea", "sky"]}],
            "answerKey": ["A"],
        }
    ).write_parquet(path)
    task = get_task("commonsenseqa")
    df = task.load(path)
    assert "(A) sea" in df["question"][0]
    meta = json.loads(df["meta"][0])
    for good in ["A", "(A)", "a", "A) sea", "A."]:
        assert task.score_answer(good, meta).is_correct, good
    assert task.score_answer("B", meta).reason == "wrong_value"
    assert task.score_answer("sea", meta).reason == "not_a_choice"


def test_boxed_math(tmp_path):
    path = tmp_path / "math.jsonl"
    rows = [
        {"problem": "Half of one?", "solution": "It is \\boxed{\\frac{1}{2}}."},
        {"problem": "Angle?", "answer": "90^\\circ"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task = get_task("math")
    df = task.load(path)
    assert df["answer"].to_list() == ["\\frac{1}{2}", "90^\\circ"]
    half, angle = (json.loads(m) for m in df["meta"])
    for good in ["\\frac{1}{2}", "\\dfrac{1}{2}", "1/2", "0.5", "\\boxed{\\frac12}"]:
        assert task.score_answer(good, half).is_correct, good
    assert task.score_answer("90", angle).is_correct
    assert not task.score_answer("1/3", half).is_correct


def test_loader_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"q": "x"}) + "\n")
    with pytest.raises(InputFormatError, match="missing column"):
        get_task("gsm8k").load(path)
    with pytest.raises(InputFormatError, match="does not exist"):
        get_task("math").load(tmp_path / "none.jsonl")


def test_score_command(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            [
                json.dumps({"numbers": [1, 2, 3], "target": 9, "response": "<answer>(1 + 2) * 3</answer>"}),
                "{broken",
                json.dumps({"numbers": [1, 2, 3], "target": 9, "response": "<answer>9</answer>"}),
                json.dumps({"numbers": [1, 2, 3], "response": "<answer>9</answer>"}),
            ]
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["score", "--task", "countdown", str(src), "--out", str(out)])
    assert result.exit_code == 1
    assert "line 2" in result.output and "line 4" in result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["is_correct"], x["reason"]) for x in lines] == [(True, "ok"), (False, "target_echo")]
    assert lines[0]["numbers"] == [1, 2, 3]


def test_tasks_list_command():
    result = CliRunner().invoke(app, ["tasks", "list"])
    assert result.exit_code == 0
    for name in (
        "countdown",
        "multiplication",
        "letter_countdown",
        "acronym",
        "gsm8k",
        "commonsenseqa",
        "math",
    ):
        assert f"{name}:" in result.output
