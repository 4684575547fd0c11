"""The generic dataset task: any local file, a column mapping, named checkers; its presets."""

import json
import time

import datasets
import polars as pl
import pytest

from tracekit.errors import ConfigError, InputFormatError
from tracekit.ids import problem_id
from tracekit.tasks import checkers, get_task, task_problems
from tracekit.tasks.checkers import (
    check_choice,
    check_exact,
    check_math,
    check_number,
    check_regex,
    parse_number,
)
from tracekit.tasks.dataset import DatasetTask

ROWS = [
    {"uid": "a1", "prompt": "How many legs has a spider?", "target": "8", "part": "train"},
    {"uid": "a2", "prompt": "Half of 3?", "target": "3/2", "part": "test"},
    {"uid": "a3", "prompt": "1,000 plus 234?", "target": "1,234", "part": "dev"},
]
OPTIONS = {"question": "prompt", "answer": "target", "id": "uid", "split": "part", "checker": "number"}


def sources(tmp_path) -> dict[str, object]:
    frame = pl.DataFrame(ROWS)
    frame.write_parquet(tmp_path / "d.parquet")
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    datasets.Dataset.from_polars(frame).save_to_disk(str(tmp_path / "saved"))
    return {"parquet": tmp_path / "d.parquet", "jsonl": tmp_path / "d.jsonl", "saved": tmp_path / "saved"}


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "saved"])
def test_any_local_source_with_a_column_mapping(kind, tmp_path):
    task = get_task("dataset")
    path = sources(tmp_path)[kind]
    got = {s: task.load(path, split=s, options=OPTIONS) for s in ("train", "validation", "test")}
    assert [got[s]["question"].to_list() for s in got] == [[ROWS[i]["prompt"]] for i in (0, 2, 1)]
    dev = got["validation"].row(0, named=True)
    assert dev["split"] == "validation" and dev["task"] == "dataset"
    assert json.loads(dev["meta"]) == {"answer": "1,234", "checker": "number", "id": "a3"}
    assert dev["problem_id"] == problem_id("dataset", ROWS[2]["prompt"], "1,234")
    for good in ["1234", "1,234", "1234.0", "$1,234"]:
        assert task.score(f"<answer>{good}</answer>", json.loads(dev["meta"])).is_correct, good


def test_a_dataset_dict_folder_gives_the_split_asked_for(tmp_path):
    frame = pl.DataFrame(ROWS).drop("part")
    splits = {"train": frame.head(2), "test": frame.tail(1)}
    datasets.DatasetDict({k: datasets.Dataset.from_polars(v) for k, v in splits.items()}).save_to_disk(
        str(tmp_path / "dd")
    )
    task = get_task("dataset")
    opts = {"question": "prompt", "answer": "target", "checker": "number"}
    assert task.load(tmp_path / "dd", split="train", **opts).height == 2
    assert task.load(tmp_path / "dd", split="test", **opts)["question"].to_list() == [ROWS[2]["prompt"]]
    with pytest.raises(InputFormatError, match="none of them 'validation'"):
        task.load(tmp_path / "dd", split="validation", **opts)


def test_run_config_takes_a_dataset_task(tmp_path, tk):
    path = sources(tmp_path)["jsonl"]
    opts = json.dumps(OPTIONS)
    for split in ("train", "test"):
        (tmp_path / "run.yaml").write_text(
            f"store: {tmp_path}/st-{split}\ntasks:\n"
            f"  - {{name: dataset, path: {path}, split: {split}, options: {opts}}}\n"
            "sampling: {variants: [plain], samples_per_variant: 2}\nreflection: {per_sample: 1}\n"
        )
        code, out, err = tk(
            "run", tmp_path / "run.yaml", "--dry-run", "--store", tmp_path / f"st-{split}", "-q"
        )
        assert code == 0, err
    problems = task_problems("dataset", 5, seed=0, split="test", path=path, difficulties=[OPTIONS])
    assert problems["question"].to_list() == ["Half of 3?"]


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"checker": "numbr"}, "Did you mean 'number'"),
        ({"checker": "choice"}, "needs the choices column"),
        ({"checker": "regex", "pattern": "([a-z"}, "is not a regex"),
        ({"question": 3}, "must be a string"),
        ({"colour": "x"}, "unknown option"),
    ],
)
def test_bad_options_are_config_errors(options, needle):
    with pytest.raises(ConfigError, match=needle):
        get_task("dataset").check_knobs(options)


def test_bad_data_names_the_row_or_the_column(tmp_path):
    task = get_task("dataset")
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"q": "x?", "a": "1"}) + "\n")
    with pytest.raises(InputFormatError, match=r"missing column\(s\) \['question', 'answer'\]"):
        task.load(path)
    path.write_text(json.dumps({"question": "Pick", "answer": "Z", "choices": ["x", "y"]}) + "\n")
    with pytest.raises(InputFormatError, match="row 0: answer 'Z' is none of the labels"):
        task.load(path, checker="choice", choices="choices")
    # a mapping whose references do not pass their own checker fails before any sampling
    path.write_text(json.dumps({"question": "2 + 2?", "answer": "work... #### 4"}) + "\n")
    with pytest.raises(ConfigError, match="scores 'not_a_number'"):
        task_problems("dataset", 5, seed=0, split="test", path=path, difficulties=[{"checker": "number"}])
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputFormatError, match="not one written by datasets' save_to_disk"):
        task.load(tmp_path / "folder")


def test_repeated_rows_are_kept_once(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"question": "Same?", "answer": "yes"}) for _ in range(3)) + "\n")
    with pytest.warns(UserWarning, match="2 repeated problem"):
        assert get_task("dataset").load(path).height == 1


@pytest.mark.parametrize(
    "answer, reference, reason",
    [
        ("1,234", "1234", "ok"),
        ("1234.00", "1,234", "ok"),
        ("1.50", "3/2", "ok"),
        ("-3/4", "-0.75", "ok"),
        ("-$5", "-5", "ok"),
        ("12 apples", "12", "ok"),
        ("50%", "50", "ok"),
        ("1,2,3,4", "1234", "not_a_number"),
        ("12,34", "1234", "not_a_number"),
        ("2**10", "1024", "not_a_number"),
        ("1e3", "1000", "not_a_number"),
        ("__import__('os')", "0", "not_a_number"),
        ("1/0", "0", "not_a_number"),
        ("7", "8", "wrong_value"),
        ("12 or thirteen", "12", "multiple_answers"),
    ],
)
def test_number_checker(answer, reference, reason):
    assert check_number(answer, {"answer": reference}).reason == reason


def test_parse_number_never_evaluates():
    assert parse_number("9" * 70) == int("9" * 70)
    assert parse_number("9" * 100) is None  # longer than any plain number it reads
    assert parse_number("(1+2)") is None and parse_number("1_000") is None


def test_exact_choice_and_regex_checkers(monkeypatch):
    assert check_exact('  "New   York." ', {"answer": "new york"}).is_correct
    assert check_exact("Paris", {"answer": ["Paris, France", "Paris"]}).is_correct
    assert check_exact("Lyon", {"answer": "Paris"}).reason == "wrong_value"
    meta = {"answer": "B", "labels": ["A", "B", "C"], "choices": ["sky", "the sea", "sand"]}
    for good in ["B", "(b)", "B) the sea", "b.", "The Sea"]:
        assert check_choice(good, meta).is_correct, good
    assert check_choice("A", meta).reason == "wrong_value"
    assert check_choice("sky", meta).reason == "wrong_value"
    assert check_choice("water", meta).reason == "not_a_choice"
    assert check_regex("colour", {"answer": "color", "pattern": "colou?r"}).is_correct
    assert check_regex("colours", {"answer": "color", "pattern": "colou?r"}).reason == "wrong_value"
    # a pattern that backtracks catastrophically is bounded by the regex package's timeout
    monkeypatch.setattr(checkers, "REGEX_TIMEOUT", 0.2)
    start = time.perf_counter()
    assert check_regex("a" * 1900 + "!", {"answer": "", "pattern": "(a|a)+b"}).reason == "timeout"
    assert time.perf_counter() - start < 10


def test_choice_and_regex_through_load(tmp_path):
    texts, labelled = tmp_path / "mc.jsonl", tmp_path / "arc.jsonl"
    texts.write_text(
        json.dumps({"question": "Where do fish live?", "options": ["sky", "sea"], "gold": 1}) + "\n"
    )
    arc = {"question": "Snow?", "options": {"label": ["P", "Q"], "text": ["white", "green"]}, "gold": "white"}
    labelled.write_text(json.dumps(arc) + "\n")
    task = get_task("dataset")
    opts = {"answer": "gold", "choices": "options", "checker": "choice"}
    got = pl.concat([task.load(texts, options=opts), task.load(labelled, options=opts)])
    assert "(A) sky (B) sea" in got["question"][0] and got["answer"].to_list() == ["B", "P"]
    first, second = (json.loads(m) for m in got["meta"])
    assert (
        task.score("<answer>sea</answer>", first).is_correct
        and task.score("<answer>(P)</answer>", second).is_correct
    )
    assert task.wrong_answer("B", first) == "A"
    words = tmp_path / "words.jsonl"
    words.write_text(json.dumps({"question": "Spell the colour of the sky.", "answer": "blue"}) + "\n")
    got = task.load(words, checker="regex", pattern=r"(?i)\s*{answer}\s*")
    meta = json.loads(got["meta"][0])
    assert task.score("<answer> BLUE </answer>", meta).is_correct
    assert not task.score(
        "<answer>blue.*</answer>", meta
    ).is_correct  # the reference is escaped, not a pattern


@pytest.mark.parametrize(
    "answer, reference, ok",
    [
        ("\\boxed{\\dfrac{1}{2}}", "\\frac12", True),
        ("0.5", "\\frac{1}{2}", True),
        ("90^\\circ", "90", True),
        ("\\frac{1}{3}", "\\frac{1}{2}", False),
    ],
)
def test_math_checker_without_math_verify(answer, reference, ok, monkeypatch):
    from tracekit.tasks import mathverify

    monkeypatch.setattr(mathverify, "available", lambda: False)
    assert check_math(answer, {"answer": reference}).is_correct is ok


def test_math_checker_asks_math_verify_in_its_sandbox():
    """Equal expressions that string normalisation cannot see; a hang is killed as ``timeout``."""
    pytest.importorskip("math_verify")
    from tracekit.tasks import mathverify

    assert check_math("(x+1)^2", {"answer": "x^2+2x+1"}).is_correct
    assert check_math("\\frac{\\sqrt{2}}{2}", {"answer": "\\frac{1}{\\sqrt{2}}"}).is_correct
    assert check_math("x^2+1", {"answer": "x^2+2x+1"}).reason == "wrong_value"
    assert mathverify.equivalent("2", "9^{9^{9^{9}}}", timeout=1.0) is None  # killed, not stuck
    assert mathverify.equivalent("\\frac{1}{2}", "0.5")  # a fresh worker serves the next call


def test_presets_are_dataset_tasks_with_their_old_rows(tmp_path):
    """gsm8k, commonsenseqa and math are presets: same questions, answers, fields and problem ids."""
    for name in ("gsm8k", "commonsenseqa", "math"):
        assert isinstance(get_task(name), DatasetTask) and get_task(name).knobs == {}
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(json.dumps({"question": "2 + 3?", "answer": "2 + 3 = 5\n#### 5"}) + "\n")
    row = get_task("gsm8k").load(path).row(0, named=True)
    assert (row["answer"], json.loads(row["meta"])) == ("5", {"answer": "5"})
    assert row["problem_id"] == problem_id("gsm8k", "2 + 3?", "5")
    path = tmp_path / "csqa.jsonl"
    rec = {
        "question": "Fish live in?",
        "choices": {"label": ["A", "B"], "text": ["sea", "sky"]},
        "answerKey": "A",
    }
    path.write_text(json.dumps(rec) + "\n")
    row = get_task("commonsenseqa").load(path).row(0, named=True)
    assert json.loads(row["meta"]) == {"answer": "A", "labels": ["A", "B"]}
    assert row["question"] == (
        "Fish live in?\nChoices: (A) sea (B) sky\nGive the letter of the best choice in <answer> </answer> tags."
    )


def test_decontamination_and_exports_work_for_a_dataset_task(tmp_path, tk):
    from tracekit.evaluate.decontaminate import decontaminate

    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    opts = {k: v for k, v in OPTIONS.items() if k != "split"}
    test_rows = task_problems("dataset", 5, seed=0, split="test", path=path, difficulties=[opts])
    train_rows = task_problems("dataset", 5, seed=0, split="train", path=path, difficulties=[opts]).head(1)
    kept, report = decontaminate(test_rows, train_rows, n=8)
    assert kept.height == 2 and report.removed
    (tmp_path / "run.yaml").write_text(
        f"store: {tmp_path}/st\ntasks:\n  - {{name: dataset, path: {path}, options: {json.dumps(opts)}}}\n"
        "sampling: {variants: [plain], samples_per_variant: 2}\nreflection: {per_sample: 1}\n"
    )
    assert tk("run", tmp_path / "run.yaml", "--dry-run", "--store", tmp_path / "st", "-q")[0] == 0
    assert tk("export", "--store", tmp_path / "st", "--to", "verl", "--out", tmp_path / "verl")[0] == 0
    from tracekit.trainers.verl_reward import compute_score

    rl = pl.read_parquet(tmp_path / "verl" / "rl" / "train.parquet")
    for row in rl.iter_rows(named=True):
        truth = json.loads(row["reward_model"]["ground_truth"])
        assert truth["checker"] == "number"
        right = f"<answer>{truth['answer']}</answer>"
        assert (
            compute_score(
                data_source="dataset", solution_str=right, ground_truth=row["reward_model"]["ground_truth"]
            )
            == 1.0
        )
