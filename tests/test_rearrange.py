import polars as pl
import pytest

from tracekit.errors import ConfigError, UnknownNameError
from tracekit.extract import final_answer
from tracekit.rearrange import FORMATS, RearrangeConfig, rearrange_store

ALL = tuple(FORMATS)


def build(store, **kw):
    cfg = RearrangeConfig(**kw)
    stats = rearrange_store(store, cfg, replace=True)
    return store.read("traces"), stats


def test_every_format_builds(filled_store):
    traces, stats = build(filled_store, formats=ALL, n_max=3)
    assert set(traces["format"].unique()) == set(ALL)
    assert stats["traces/written"] == traces.height


def test_trace_properties(filled_store):
    traces, _ = build(filled_store, formats=ALL, n_max=4, repeats=2, draw_n=True)
    samples = filled_store.read("samples")
    refl = filled_store.read("reflections")
    correct = dict(zip(samples["sample_id"], samples["is_correct"]))
    answer = dict(zip(samples["sample_id"], samples["extracted_answer"]))
    response = dict(zip(samples["sample_id"], samples["response"]))
    verdict = dict(zip(refl["reflection_id"], refl["verdict"]))
    refl_sample = dict(zip(refl["reflection_id"], refl["sample_id"]))
    for row in traces.iter_rows(named=True):
        sids, rids = row["sample_ids"], row["reflection_ids"]
        assert all(s in correct for s in sids), "every sample id exists"
        assert all(r in verdict for r in rids), "every reflection id exists"
        assert row["n_samples"] == len(sids)
        # a kept reflection always agrees with the verifier, and belongs to the sample it follows
        for s, r in zip(sids, rids):
            assert refl_sample[r] == s and verdict[r] == correct[s]
        fmt = row["format"]
        if fmt in ("no_reflection", "star"):
            assert rids == [] and "<reflect>" not in row["completion"]
        else:
            assert len(rids) == len(sids)
        assert final_answer(row["completion"]) == (row["final_answer"] or "")
        if fmt not in ("random", "*C*IC"):
            assert correct[sids[-1]] and answer[sids[-1]] == row["final_answer"] and row["final_correct"]
        if fmt == "*C*IC":
            assert not correct[sids[-1]]
            good = [s for s in sids if correct[s]]
            assert good and row["final_answer"] in {answer[s] for s in good} and row["final_correct"]
            tail = row["completion"].split("</reflect>")[-1]
            assert any(response[s] in tail and answer[s] == row["final_answer"] for s in good)
        if fmt == "*CC":
            assert correct[sids[-1]] and correct[sids[-2]]
        if fmt in ("0C", "star"):
            assert len(sids) == 1
        if fmt in ("*C", "*C*IC", "*CC"):
            assert 2 <= len(sids) <= 4
        if fmt == "alg1":
            n_pos = sum(correct[s] for s in sids)
            assert n_pos >= 1 and len(sids) - n_pos <= n_pos - 1
        assert row["completion"].startswith("<think>\n<sample>")
        assert row["completion"].count("<sample>") == len(sids) + (fmt == "*C*IC")


def test_c_full_covers_every_n(filled_store):
    traces, _ = build(filled_store, formats=("*C_full",), n_max=5)
    per_problem = traces.group_by("problem_id").agg(pl.col("n_samples").sort())
    assert all(ns == [1, 2, 3, 4, 5] for ns in per_problem["n_samples"].to_list())


def test_same_seed_same_table_other_seed_other_choices(filled_store, tmp_path):
    a, _ = build(filled_store, formats=ALL, n_max=3, seed=0)
    b, _ = build(filled_store, formats=ALL, n_max=3, seed=0)
    assert a.equals(b)
    c, _ = build(filled_store, formats=ALL, n_max=3, seed=1)
    assert not a.select("sample_ids", "phrase_ids").equals(c.select("sample_ids", "phrase_ids"))


def test_rerun_adds_nothing(filled_store):
    cfg = RearrangeConfig(formats=("*C_full",), n_max=3)
    first = rearrange_store(filled_store, cfg)
    second = rearrange_store(filled_store, cfg)
    assert first["traces/written"] > 0 and second["traces/written"] == 0


def test_grown_inputs_rewrite_only_changed_problems(tmp_path, raw_frame):
    """Item 6: after a problem gains samples, rearrange leaves exactly the traces a rearrangement
    from scratch gives, and writes traces only for the problems whose inputs changed."""
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store
    from tracekit.store.views import view

    questions = raw_frame["question"].unique(maintain_order=True)
    grown = questions.head(5)  # these problems get more samples in the second import
    first = raw_frame.filter(
        ~pl.col("question").is_in(grown.implode()) | (pl.int_range(pl.len()).over("question") % 2 == 0)
    )
    first.write_parquet(tmp_path / "first.parquet")
    raw_frame.write_parquet(tmp_path / "all.parquet")
    st, scratch = Store(tmp_path / "st", create=True), Store(tmp_path / "scratch", create=True)
    cfg = RearrangeConfig(formats=("*C_full", "*C*IC", "*CC"), n_max=3, min_samples=2)
    import_skillfactory(tmp_path / "first.parquet", st)
    rearrange_store(st, cfg)
    before = set(st.ids("traces").to_list())
    import_skillfactory(tmp_path / "all.parquet", st)
    stats = rearrange_store(st, cfg)
    import_skillfactory(tmp_path / "all.parquet", scratch)
    rearrange_store(scratch, cfg)
    got = view(st, "traces").collect().sort("trace_id")
    assert got.equals(view(scratch, "traces").collect().sort("trace_id"))
    written = st.read("traces").filter(~pl.col("trace_id").is_in(list(before)))
    assert stats["traces/written"] == written.height > 0
    problems = st.read("problems").filter(pl.col("question").is_in(grown.implode()))["problem_id"]
    assert set(written["problem_id"].to_list()) <= set(problems.to_list())
    assert got.height < st.count("traces")  # the stale traces stay as history, outside the view


@pytest.mark.parametrize("scattered", [False, True])
def test_bucketed_streaming_equals_in_memory(tmp_path, raw_frame, monkeypatch, scattered):
    import tracekit.reference.raw as ref_raw
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    monkeypatch.setattr(ref_raw, "BATCH_ROWS", 40)  # many parts, problem by problem
    raw = tmp_path / "raw.parquet"
    raw_frame.write_parquet(raw)
    store = Store(tmp_path / "st", create=True)
    import_skillfactory(raw, store)
    if scattered:  # rewrite samples in shuffled parts: every part holds every problem
        samples = store.read("samples").sample(fraction=1.0, shuffle=True, seed=1)
        store.clear("samples")
        for chunk in samples.iter_slices(50):
            store.write("samples", chunk)
    import tracekit.store.buckets as part

    used = []
    real = part._hash_buckets
    monkeypatch.setattr(part, "_hash_buckets", lambda *a: used.append(1) or real(*a))
    cfg = RearrangeConfig(formats=ALL, n_max=3, repeats=2)
    rearrange_store(store, cfg, replace=True, target_bytes=10**9)
    whole = store.read("traces").sort("trace_id")
    stats = rearrange_store(store, cfg, replace=True, target_bytes=20_000)  # forces many buckets
    assert len(store.parts("traces")) > 1
    assert store.read("traces").sort("trace_id").equals(whole)
    assert not list(store.root.glob(".tmp-*"))
    assert stats["traces/written"] == whole.height
    assert bool(used) == scattered  # problem-ordered parts split by row groups, scattered ones by hash


def test_drops_are_counted(filled_store):
    _, stats = build(filled_store, formats=("*C",), n_max=5)
    refl = filled_store.read("reflections")
    samples = filled_store.read("samples")
    truth = dict(zip(samples["sample_id"], samples["is_correct"]))
    mismatched = sum(1 for s, v in zip(refl["sample_id"], refl["verdict"]) if v is not None and v != truth[s])
    assert stats["reflections/verdict_mismatch"] == mismatched
    assert stats["reflections/verdict_missing"] == (refl["verdict_reason"] == "missing").sum()
    assert stats["problems/total"] == 30


def test_unique_variants(filled_store):
    traces, stats = build(filled_store, formats=("*C_full",), n_max=4, unique_variants=True, min_samples=1)
    samples = filled_store.read("samples")
    variant = dict(zip(samples["sample_id"], samples["prompt_variant"]))
    for sids in traces["sample_ids"].to_list():
        assert len({variant[s] for s in sids}) == len(sids)
    assert traces.height > 0


def test_truncated_samples_stay_out(filled_store):
    samples = filled_store.read("samples")
    marked = samples.with_columns(finish_reason=pl.lit("length"))
    filled_store.clear("samples")
    filled_store.write("samples", marked)
    # every sample truncated: no trace, which the rearrange command refuses (the traces stay as they were)
    with pytest.raises(ConfigError, match=rf"built no traces .*samples/truncated {samples.height}"):
        build(filled_store, formats=("0C",), n_max=1)
    traces, _ = build(filled_store, formats=("0C",), n_max=1, include_truncated=True)
    assert traces.height > 0


def test_phrase_bank_file(filled_store, tmp_path):
    import yaml

    from tracekit.rearrange.phrases import BANKS

    bank = {b: [f"{b} phrase"] for b in BANKS}
    path = tmp_path / "bank.yaml"
    path.write_text(yaml.safe_dump(bank))
    traces, _ = build(filled_store, formats=("*C",), n_max=3, phrases=str(path))
    assert "ending phrase" in traces["completion"][0]
    path.write_text(yaml.safe_dump({"ending": ["x"]}))
    with pytest.raises(ConfigError, match="missing keys"):
        build(filled_store, formats=("*C",), phrases=str(path))


def test_bad_config():
    with pytest.raises(UnknownNameError, match="Did you mean '\\*C_full'"):
        RearrangeConfig(formats=("*c_ful",))
    with pytest.raises(ConfigError):
        RearrangeConfig(n_max=0)


# ------------------------------------------------------------------ prompt variants and reference quirks


def test_variant_selection(filled_store):
    traces, stats = build(filled_store, formats=("*C_full",), n_max=2, variants=("original", "rephrase"))
    samples = filled_store.read("samples")
    variant = dict(zip(samples["sample_id"], samples["prompt_variant"]))
    assert traces.height and {variant[s] for sids in traces["sample_ids"] for s in sids} <= {
        "original",
        "rephrase",
    }
    assert (
        stats["samples/variant_not_selected"]
        == samples["prompt_variant"].is_in(["original", "rephrase"]).not_().sum()
    )
    assert not stats["reflections/orphan"]  # the reflections of left-out samples leave with them


def quirky_store(tmp_path):
    """Two questions with the same text (answers 14 and 15) and reflections that tracekit and the
    reference read differently."""
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    rows = [  # (answer, variant, correct, reflection)
        (
            "14",
            "a",
            True,
            "<verdict>Correct</verdict> wait <verdict>Incorrect</verdict>",
        ),  # reference: first tag
        ("14", "b", True, "<verdict>correct"),  # reference: needs the closing tag
        ("14", "c", True, "A fast check. <verdict>Correct</verdict>"),  # reference quirk: "fast"
        ("14", "d", False, "<verdict> **Incorrect** </verdict>"),  # reference: the word must be bare
        ("15", "a", True, "<verdict>Correct</verdict>"),
    ]
    raw = pl.DataFrame(
        {
            "question": ["Make 14 or 15."] * len(rows),
            "answer": [a for a, *_ in rows],
            "prompt_variant": [v for _, v, *_ in rows],
            "model_responses__mutated_prompts": [[f"{a}{v} <answer>{a}</answer>"] for a, v, *_ in rows],
            "model_responses__mutated_prompts__eval_is_correct": [[c] for *_, c, _ in rows],
            "model_responses__mutated_prompts__eval_extracted_answers": [[a] for a, *_ in rows],
            "model_responses__mutated_prompts_reflection": [[r] for *_, r in rows],
        }
    )
    raw.write_parquet(tmp_path / "quirky.parquet")
    store = Store(tmp_path / "quirky", create=True)
    import_skillfactory(tmp_path / "quirky.parquet", store)
    return store


@pytest.mark.parametrize(
    ("quirk", "alone"),
    [
        ({}, {"14b", "14c", "15a"}),
        ({"verdict_first_tag": True}, {"14a", "14c", "15a"}),
        ({"drop_idea_fast": True}, {"14b", "15a"}),
        ({"group_by_question": True}, {"14b", "14c", "15a"}),
    ],
)
def test_reference_quirks_are_opt_ins(tmp_path, quirk, alone):
    store = quirky_store(tmp_path)
    traces, stats = build(store, formats=("star",), **quirk)  # star: every surviving correct sample alone
    assert {text.split("<sample>\n")[1][:3] for text in traces["completion"]} == alone
    assert stats["reflections/idea_or_fast"] == (1 if quirk.get("drop_idea_fast") else 0)
    merged = quirk.get("group_by_question", False)
    assert traces["problem_id"].n_unique() == (1 if merged else 2)
    assert stats["problems/merged_by_question"] == (1 if merged else 0)
    if quirk.get("verdict_first_tag"):  # the wrong sample's bolded verdict is not read by the reference
        assert stats["reflections/verdict_unrecognized"] == 1 and stats["reflections/verdict_missing"] == 1


# ------------------------------------------------------------------ the command line


def test_rearrange_options_are_the_config_fields():
    import dataclasses

    import typer.main

    from tracekit.cli import app
    from tracekit.cli.config_options import field_docs

    command = typer.main.get_command(app).commands["rearrange"]
    options = {p.name: p for p in command.params}
    fields = {f.name for f in dataclasses.fields(RearrangeConfig)}
    assert set(options) == fields | {"store", "replace", "quiet"}
    docs = field_docs(RearrangeConfig)
    assert set(docs) == fields
    for name in fields:
        assert docs[name] and options[name].help.startswith(docs[name])
        assert f"--{name.replace('_', '-')}" in options[name].opts


def test_rearrange_command_with_a_recipe_and_the_reference_layout(filled_store):
    from typer.testing import CliRunner

    from tracekit.cli import app

    args = ["rearrange", "-s", str(filled_store.root), "--recipe", "no-reflections", "--n-max", "2"]
    result = CliRunner().invoke(app, [*args, "--layout", "reference", "--replace"])
    assert result.exit_code == 0, result.output
    traces = filled_store.read("traces")
    assert set(traces["format"]) == {"no_reflection"} and set(traces["n_samples"]) == {1, 2}
    assert all("</sample>\n\n</think>\n\n\n" in text for text in traces["completion"])
    run = filled_store.read("runs").tail(1).row(0, named=True)
    assert (
        '"recipe": "no-reflections"' in run["config_json"] and '"layout": "reference"' in run["config_json"]
    )


def test_a_rearrangement_that_builds_nothing_leaves_the_view(filled_store):
    """Settings that build no trace are refused instead of emptying the current view of traces."""
    from tracekit.store.views import view

    build(filled_store, formats=("*C_full",), n_max=2)
    before = view(filled_store, "traces").collect().height
    runs = filled_store.count("runs")
    with pytest.raises(ConfigError, match="built no traces.*too_few_samples"):
        rearrange_store(filled_store, RearrangeConfig(formats=("*C_full",), n_max=5, min_samples=500))
    assert view(filled_store, "traces").collect().height == before > 0 and filled_store.count("runs") == runs


# ---------------------------------------------------------------- repeats through the command line
def test_many_repeats_of_a_small_pool_give_only_its_distinct_traces(tk, store):
    from tracekit.store import Store

    code, out, err = tk(
        "rearrange",
        "--store",
        store,
        "--repeats",
        "1000",
        "--n-max",
        "2",
        "--min-samples",
        "1",
        "--replace",
        "-q",
    )
    assert code == 0, err
    traces = Store(store).read("traces")
    shown = traces.select("problem_id", "sample_ids", "reflection_ids")
    assert shown.height == shown.unique().height  # no trace repeats another's samples and reflections
    assert traces.group_by("problem_id").len()["len"].max() <= 4  # a pool of 2 samples has few traces
    assert "repeat_duplicate" in out and " 0\n" not in out + "\n"  # no zero counters in the summary
