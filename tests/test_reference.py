import polars as pl
import pytest

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


def test_verdicts_and_truth(tmp_path, raw_frame):
    raw_frame.write_parquet(tmp_path / "raw.parquet")
    st = Store(tmp_path / "st", create=True)
    import_skillfactory(tmp_path / "raw.parquet", st)
    refl = st.read("reflections")
    samples = st.read("samples")
    joined = refl.join(samples.select("sample_id", "is_correct"), on="sample_id")
    expected = (joined["verdict"] == joined["is_correct"]).fill_null(False)
    assert (joined["matches_truth"] == expected).all()
    assert set(refl["verdict_reason"].unique()) <= {"ok", "missing"}


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
    assert refl.filter(pl.col("matches_truth")).height == 2


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
    with pytest.raises(InputFormatError, match="row 2: the lists"):
        import_skillfactory(tmp_path / "len.parquet", st)
    assert st.count("samples") == 0
