import json
from pathlib import Path

import polars as pl
import pytest
from cli_contract import one_error, raw_rows, tree, write_jsonl

from tracekit.errors import InputFormatError
from tracekit.reference import REFLECTIONS, RESPONSES, import_skillfactory
from tracekit.store import Store


def test_import_parquet_and_jsonl_agree(tmp_path, raw_frame):
    raw_frame.write_parquet(tmp_path / "raw.parquet")
    raw_frame.write_ndjson(tmp_path / "raw.jsonl")
    a = Store(tmp_path / "a", create=True)
    b = Store(tmp_path / "b", create=True)
    ca = import_skillfactory(tmp_path / "raw.parquet", a)
    cb = import_skillfactory(tmp_path / "raw.jsonl", b)
    assert ca == cb
    assert ca["problems"] == 30 and ca["samples"] == raw_frame.height
    assert ca["reflections"] == 2 * raw_frame.height
    for table in ("problems", "samples", "reflections"):
        assert a.read(table).equals(b.read(table))
    again = import_skillfactory(tmp_path / "raw.parquet", a)
    assert again["samples"] == 0 and a.count("samples") == raw_frame.height


def test_verdicts_are_parsed(tmp_path, raw_frame):
    raw_frame.write_parquet(tmp_path / "raw.parquet")
    st = Store(tmp_path / "st", create=True)
    import_skillfactory(tmp_path / "raw.parquet", st)
    refl = st.read("reflections")
    said_correct = refl["text"].str.contains("<verdict>\nCorrect")
    ok = refl["verdict_reason"] == "ok"
    assert (refl.filter(ok)["verdict"] == said_correct.filter(ok)).all()
    assert set(refl["verdict_reason"].unique()) == {"ok", "missing"}


def test_identity_is_content_not_position(tmp_path, raw_frame):
    """Item 4: importing half a file and then the whole file stores every sample once, and the
    store means the same as a one-step import (same rows, same traces)."""
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.store.views import view

    doubled = pl.concat([raw_frame, raw_frame.head(40)])  # 40 rows repeat: identical responses, twice
    doubled.head(doubled.height // 2).write_parquet(tmp_path / "half.parquet")
    doubled.write_parquet(tmp_path / "whole.parquet")
    two, one = Store(tmp_path / "two", create=True), Store(tmp_path / "one", create=True)
    cfg = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3)
    import_skillfactory(tmp_path / "half.parquet", two)
    rearrange_store(two, cfg)
    second = import_skillfactory(tmp_path / "whole.parquet", two)
    rearrange_store(two, cfg)
    import_skillfactory(tmp_path / "whole.parquet", one)
    rearrange_store(one, cfg)
    assert two.count("samples") == one.count("samples") == doubled.height  # repeats are kept, by occurrence
    assert second["samples"] == doubled.height - doubled.height // 2
    for table in ("problems", "samples", "reflections", "traces"):
        a = view(two, table).collect().drop("prompt", strict=False)
        b = view(one, table).collect().drop("prompt", strict=False)
        assert a.sort(a.columns[0]).equals(b.sort(b.columns[0])), table
    # the same content in another row position is the same sample
    shuffled = doubled.sample(fraction=1.0, shuffle=True, seed=4)
    shuffled.write_parquet(tmp_path / "shuffled.parquet")
    assert import_skillfactory(tmp_path / "shuffled.parquet", one)["samples"] == 0


def test_nested_reflections_and_multi_responses(tmp_path):
    rows = {
        "question": ["q1"],
        "answer": ["4"],
        "prompt_variant": ["original"],
        RESPONSES: [["<answer>4</answer>", "<answer>5</answer>"]],
        "model_responses__mutated_prompts__eval_is_correct": [[True, False]],
        "model_responses__mutated_prompts__eval_extracted_answers": [["4", "5"]],
        REFLECTIONS: [[["<verdict>Correct</verdict>"], ["<verdict>Incorrect</verdict>", "hmm"]]],
    }
    pl.DataFrame(rows).write_parquet(tmp_path / "raw.parquet")
    st = Store(tmp_path / "st", create=True)
    counts = import_skillfactory(tmp_path / "raw.parquet", st)
    assert counts["samples"] == 2 and counts["reflections"] == 3
    refl = st.read("reflections").join(st.read("samples").select("sample_id", "is_correct"), on="sample_id")
    assert refl.filter(pl.col("verdict") == pl.col("is_correct")).height == 2


def test_flat_reflections_belong_to_first_response(tmp_path):
    rows = {
        "question": ["q1"],
        "answer": ["4"],
        "prompt_variant": ["original"],
        RESPONSES: [["<answer>4</answer>", "<answer>5</answer>"]],
        "model_responses__mutated_prompts__eval_is_correct": [[True, False]],
        "model_responses__mutated_prompts__eval_extracted_answers": [["4", "5"]],
        REFLECTIONS: [["<verdict>Correct</verdict>", "<verdict>Correct</verdict>"]],
    }
    pl.DataFrame(rows).write_ndjson(tmp_path / "raw.jsonl")
    st = Store(tmp_path / "st", create=True)
    import_skillfactory(tmp_path / "raw.jsonl", st)
    refl = st.read("reflections")
    first = st.read("samples").filter(pl.col("is_correct"))["sample_id"][0]
    assert refl["sample_id"].unique().to_list() == [first]


def test_bad_inputs(tmp_path, raw_frame):
    st = Store(tmp_path / "st", create=True)
    raw_frame.drop("prompt_variant").write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputFormatError, match="missing column.*prompt_variant"):
        import_skillfactory(tmp_path / "bad.parquet", st)
    (tmp_path / "trunc.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputFormatError, match="cannot read .*trunc.parquet"):
        import_skillfactory(tmp_path / "trunc.parquet", st)
    with pytest.raises(InputFormatError, match="does not exist"):
        import_skillfactory(tmp_path / "nope.parquet", st)
    bad = raw_frame.head(3).with_columns(
        pl.when(pl.int_range(pl.len()) == 2)
        .then(pl.lit([True, False]))
        .otherwise(pl.col("model_responses__mutated_prompts__eval_is_correct"))
        .alias("model_responses__mutated_prompts__eval_is_correct")
    )
    bad.write_parquet(tmp_path / "len.parquet")
    with pytest.raises(InputFormatError, match="row 3: the lists"):
        import_skillfactory(tmp_path / "len.parquet", st)
    assert st.count("samples") == 0


# ------------ importing through the command line: what is refused, with the line, and what is kept
def test_import_input_files(tk, tmp_path, raw):
    rows = raw_rows(raw, 4)
    (tmp_path / "folder.jsonl").mkdir()
    cases = {
        "folder.jsonl": ["folder.jsonl is a folder, not a file"],
        "missing.jsonl": ["missing.jsonl does not exist"],
    }
    broken = [json.dumps(r) for r in rows]
    broken[2] = broken[2][:40]  # a line cut short
    (tmp_path / "broken.jsonl").write_text("\n".join(broken) + "\n", encoding="utf-8")
    cases["broken.jsonl"] = ["broken.jsonl: line 3: not valid JSON"]
    lines = [json.dumps(r).encode() for r in rows]
    lines[3] = lines[3].replace(b"Puzzle", b"Puzzl\xe9")  # Latin-1, not UTF-8, on line 4
    (tmp_path / "latin.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    cases["latin.jsonl"] = ["latin.jsonl: line 4: not UTF-8 text (byte 0xe9"]
    blank = [json.dumps(r) for r in rows]
    blank.insert(1, "")
    blank[3] = (
        blank[3]
        .replace('"question": "Puzzle', '"question": "', 1)
        .replace('"question": "', '"question": null, "x": "', 1)
    )
    (tmp_path / "blank.jsonl").write_text("\n".join(blank) + "\n", encoding="utf-8")
    cases["blank.jsonl"] = ["blank.jsonl: line 4: empty 'question'"]  # blank lines are counted
    nested = [dict(r) for r in rows]
    nested[2]["model_responses__mutated_prompts_reflection"] = [["one"], ["two"]]
    write_jsonl(tmp_path / "nested.jsonl", nested)
    cases["nested.jsonl"] = [
        "nested.jsonl: line 3: column 'model_responses__mutated_prompts_reflection' is a nested list"
    ]
    nulls = [dict(r) for r in rows]
    nulls[1]["answer"] = None
    write_jsonl(tmp_path / "null.jsonl", nulls)
    cases["null.jsonl"] = ["null.jsonl: line 2: empty 'answer'"]
    for name, needles in cases.items():
        st = tmp_path / f"st-{name}"
        one_error(tk("import-skillfactory", tmp_path / name, "--store", st, "-q"), *needles)
        assert not st.exists(), name


def test_import_answers_are_read_as_written(tk, tmp_path, raw):
    import polars as pl

    from tracekit.store import Store

    frame = pl.read_parquet(raw).head(8)
    answers = [416.0, 2.5, 416.0, 2.5, 17.0, 17.0, 3.0, 3.0]
    frame.with_columns(answer=pl.Series(answers)).write_parquet(tmp_path / "floats.parquet")
    assert tk("import-skillfactory", tmp_path / "floats.parquet", "--store", tmp_path / "a", "-q")[0] == 0
    assert sorted(set(Store(tmp_path / "a").read("problems")["answer"])) == ["17", "2.5", "3", "416"]
    rows = frame.to_dicts()
    for row, answer in zip(rows, [416, 2.5, "416", 2.5, 17, 17, 3, 3]):
        row["answer"] = answer
    write_jsonl(tmp_path / "numbers.jsonl", rows)
    assert tk("import-skillfactory", tmp_path / "numbers.jsonl", "--store", tmp_path / "b", "-q")[0] == 0
    assert sorted(set(Store(tmp_path / "b").read("problems")["answer"])) == ["17", "2.5", "3", "416"]


def test_reimport_under_another_model_name(tk, tmp_path, raw):
    st = tmp_path / "st"
    assert tk("import-skillfactory", raw, "--store", st, "--model", "m1", "-q")[0] == 0
    before = tree(st)
    one_error(
        tk("import-skillfactory", raw, "--store", st, "--model", "m2", "-q"),
        "row 1: this response is already in the store, imported as model 'm1', not 'm2'",
        "--model m1",
    )
    assert tree(st) == before
    assert (
        tk("import-skillfactory", raw, "--store", st, "--model", "m1", "-q")[0] == 0
    )  # the same name: nothing new


def test_a_failure_late_in_a_file_writes_nothing(tk, tmp_path, raw, monkeypatch):
    import polars as pl

    import tracekit.reference.raw as raw_module

    monkeypatch.setattr(raw_module, "BATCH_ROWS", 4)  # several batches before the bad row
    frame = pl.read_parquet(raw)
    bad_row = frame.height - 2
    frame.with_columns(
        question=pl.when(pl.int_range(pl.len()) == bad_row).then(pl.lit("")).otherwise(pl.col("question"))
    ).write_parquet(tmp_path / "late.parquet")
    frame.head(8).write_parquet(tmp_path / "head.parquet")
    st = tmp_path / "st"
    assert tk("import-skillfactory", tmp_path / "head.parquet", "--store", st, "-q")[0] == 0
    before = tree(st)
    one_error(  # the batches before the bad row hold new rows: none of them is written
        tk("import-skillfactory", tmp_path / "late.parquet", "--store", st, "-q"),
        f"row {bad_row + 1}: empty 'question'",
    )
    assert tree(st) == before


def test_countdown_import_reads_numbers_and_target(tk, tmp_path, raw):
    import polars as pl

    from tracekit.store import Store
    from trainers.rewards import correctness_reward

    st = tmp_path / "st"
    assert tk("import-skillfactory", raw, "--store", st, "--task", "countdown", "-q")[0] == 0
    problems = Store(st).read("problems")
    assert set(problems["task"]) == {"countdown"}
    first = problems.row(0, named=True)
    meta = json.loads(first["meta"])
    assert str(meta["target"]) == first["answer"] and len(meta["numbers"]) == 3
    code, _, err = tk("export", "--store", st, "--to", "trl-grpo", "--out", tmp_path / "g")
    assert code == 0, err
    grpo = pl.read_parquet(tmp_path / "g" / "train.parquet")
    a, b, c = json.loads(grpo["meta"][0])["numbers"]
    right = f"<answer>({a} + {b}) * {c}</answer>"  # synthetic puzzles are (a + b) * c
    assert correctness_reward([right], task=grpo["task"][:1].to_list(), meta=grpo["meta"][:1].to_list()) == [
        1.0
    ]


def test_countdown_import_rejects_questions_it_cannot_read(tk, tmp_path, raw):
    rows = raw_rows(raw, 8)
    rows[2]["question"] = "What is 12 * 3?"
    rows[5]["answer"] = "999"  # the question names another target
    write_jsonl(tmp_path / "odd.jsonl", rows)
    one_error(
        tk(
            "import-skillfactory",
            tmp_path / "odd.jsonl",
            "--store",
            tmp_path / "st",
            "--task",
            "countdown",
            "-q",
        ),
        "cannot read the countdown fields from the question of 2 row(s): line 3; line 6",
        "--task skillfactory",
    )
    assert not (tmp_path / "st").exists()


def test_a_parquet_file_without_rows(tk, tmp_path, raw):
    pl.read_parquet(raw).head(0).write_parquet(tmp_path / "none.parquet")
    one_error(
        tk("import-skillfactory", tmp_path / "none.parquet", "--store", tmp_path / "st", "-q"),
        "none.parquet holds no rows",
    )
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "blank lines"])
def test_a_jsonl_file_without_rows(tk, tmp_path, content):
    (tmp_path / "none.jsonl").write_bytes(content)
    err = one_error(
        tk("import-skillfactory", tmp_path / "none.jsonl", "--store", tmp_path / "st", "-q"),
        f"{tmp_path / 'none.jsonl'} holds no rows",
    )
    assert "NDJSON" not in err and "infer" not in err  # not polars' wording
    assert not (tmp_path / "st").exists()


def _lines_with(raw: Path, line: int, edit) -> list[str]:
    lines = [json.dumps(r) for r in raw_rows(raw, 4)]
    lines[line - 1] = edit(lines[line - 1])
    return lines


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda s: s[:-1] + ', "answer": "12"}', ["line 3: the key 'answer' appears twice in one object"]),
        (lambda s: s[:-1] + ', "x": {"a": 1, "a": 2}}', ["line 3: the key 'a' appears twice"]),
        (
            lambda s: s.replace('"question": "', '"question": "\\ud800', 1),
            ["line 3: a string holds a lone surrogate"],
        ),
        (
            lambda s: s.replace('"question": "', '"question": "\\udfff!', 1),
            ["line 3", "lone surrogate ('\\udfff')"],
        ),
        (lambda s: "[" + s + "]", ["line 3: expected a JSON object, got list"]),
    ],
    ids=["key twice", "nested key twice", "lone high surrogate", "lone low surrogate", "not an object"],
)
def test_jsonl_lines_that_are_valid_json_but_not_a_row(tk, tmp_path, raw, edit, needles):
    (tmp_path / "in.jsonl").write_text("\n".join(_lines_with(raw, 3, edit)) + "\n", encoding="utf-8")
    err = one_error(
        tk("import-skillfactory", tmp_path / "in.jsonl", "--store", tmp_path / "st", "-q"), *needles
    )
    assert len(err.strip().splitlines()) == 2  # the error and its hint: no expression dump
    assert not (tmp_path / "st").exists()


def test_nul_and_surrogate_pairs_import_as_from_parquet(tk, tmp_path, raw):
    from tracekit.store import Store

    def edit(s: str) -> str:
        return s.replace('"question": "', '"question": "nul\\u0000 pair\\ud83d\\ude00 ', 1)

    (tmp_path / "in.jsonl").write_text("\n".join(_lines_with(raw, 2, edit)) + "\n", encoding="utf-8")
    rows = [json.loads(line) for line in _lines_with(raw, 2, edit)]
    pl.DataFrame(rows).select(pl.read_parquet(raw).columns).write_parquet(tmp_path / "in.parquet")
    questions = {}
    for name in ("in.jsonl", "in.parquet"):
        code, _, err = tk("import-skillfactory", tmp_path / name, "--store", tmp_path / f"st-{name}", "-q")
        assert code == 0, err
        got = Store(tmp_path / f"st-{name}").read("problems")["question"].to_list()
        questions[name] = sorted(got)
    assert questions["in.jsonl"] == questions["in.parquet"]
    assert any("nul\x00 pair\U0001f600 " in q for q in questions["in.jsonl"])
