"""More bad input through the real command line: one ``error:`` line, exit 2, nothing left behind.

Cases found by a review after the first round (tests/test_bad_input.py): evaluation, training,
reports and skill analytics.
"""

from __future__ import annotations

import pytest
from test_bad_input import one_error


@pytest.fixture
def small_store(tmp_path):
    from tracekit.pipeline.config import RunConfig, TaskSpec
    from tracekit.pipeline.run import run_pipeline

    cfg = RunConfig(store=str(tmp_path / "st"), tasks=(TaskSpec("multiplication", n=3),))
    run_pipeline(cfg, dry_run=True, progress=False, echo=lambda *_: None)
    return tmp_path / "st"


def test_eval_of_a_missing_model_folder_leaves_no_store(tk, tmp_path):
    config = tmp_path / "e.yaml"
    config.write_text(
        f"store: {tmp_path / 'ev'}\n"
        f"models: [{{label: base, backend: transformers, options: {{model: {tmp_path / 'nope'}}}}}]\n"
        "tasks: [{name: multiplication, n: 2}]\nk: 1\n"
    )
    one_error(tk("eval", config), "does not exist", "Hint:")
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"", ["eval config", "is empty", "'models'"]),
        (b"- store: x\n", ["eval config", "expected a mapping", "got a list"]),
        (b"store: x\nk: [1\n", ["eval config", "not valid YAML", "line "]),
        (b"store: x\n# \xff\n", ["eval config", "line 2", "not UTF-8"]),
    ],
)
def test_eval_config_that_cannot_be_read(tk, tmp_path, content, needles):
    config = tmp_path / "e.yaml"
    config.write_bytes(content)
    one_error(tk("eval", config), *needles)


def test_eval_config_that_is_a_folder(tk, tmp_path):
    one_error(tk("eval", tmp_path), "is a directory")


@pytest.mark.parametrize(("key", "needle"), [("data", "data"), ("model", "model")])
def test_train_names_a_missing_path(tk, tmp_path, key, needle):
    (tmp_path / "data").mkdir()
    given = {"model": str(tmp_path / "data"), "data": str(tmp_path / "data")}
    given[key] = str(tmp_path / "missing")
    config = tmp_path / "t.yaml"
    config.write_text("".join(f"{k}: {v}\n" for k, v in given.items()))
    one_error(tk("train", "sft", config), f"{needle} '{tmp_path / 'missing'}' does not exist")


def test_report_into_a_missing_folder(tk, tmp_path, small_store):
    one_error(tk("report", "--store", small_store, "--out", tmp_path / "no" / "r.html"), "does not exist")
    assert not (tmp_path / "no").exists()


def test_skills_without_evals(tk, small_store):
    one_error(tk("skills", "--store", small_store, "--source", "evals"), "has no evals", "tracekit eval")
