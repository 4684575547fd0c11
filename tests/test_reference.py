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
