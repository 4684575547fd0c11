"""Every export target: one file per split, the documented layouts exactly, a manifest and a runs row."""

import json

import polars as pl
import pytest
from cli_contract import one_error, tree
from deliver_stores import build_split_store, build_task_store

from tracekit.errors import ConfigError, StoreError
from tracekit.export import MANIFEST, run_export


@pytest.fixture(scope="module")
def split_store(tmp_path_factory):
    from tracekit.reference import synthetic_raw

    raw = synthetic_raw(30, response_chars=160, reflection_chars=90, seed=3)
    return build_split_store(tmp_path_factory.mktemp("split"), raw)


@pytest.fixture(scope="module")
def task_store(tmp_path_factory):
    return build_task_store(tmp_path_factory.mktemp("task"))


def trace_splits(store):
    traces = store.read("traces", columns=["trace_id", "problem_id"])
    return traces.join(store.read("problems", columns=["problem_id", "split"]), on="problem_id")


def test_trl_exports_one_file_per_split_with_a_manifest_and_a_runs_row(split_store, tmp_path):
    from datasets import load_dataset

    runs_before = split_store.count("runs")
    written = run_export(split_store, "trl-sft", tmp_path / "sft")
    expected = trace_splits(split_store).group_by("split").len()
    assert sorted(p.name for p in (tmp_path / "sft").iterdir()) == sorted(
        [MANIFEST, "test.parquet", "train.parquet"]
    )
    for split, n in expected.iter_rows():
        df = pl.read_parquet(tmp_path / "sft" / f"{split}.parquet")
        assert df.height == n == written.counts[split]
        ids = set(trace_splits(split_store).filter(pl.col("split") == split)["trace_id"])
        assert set(df["trace_id"]) == ids
    ds = load_dataset(str(tmp_path / "sft"))  # the folder loads as a DatasetDict (the manifest is ignored)
    assert {k: v.num_rows for k, v in ds.items()} == dict(expected.iter_rows())
    manifest = json.loads((tmp_path / "sft" / MANIFEST).read_text())
    assert manifest["target"] == "trl-sft" and manifest["counts"]["train"] == written.counts["train"]
    assert manifest["source_store"] == str(split_store.root.resolve())
    assert {"rearrange"} <= {r["command"] for r in manifest["source_runs"]}
    assert "export" not in {r["command"] for r in manifest["source_runs"]}
    runs = split_store.read("runs")
    assert split_store.count("runs") == runs_before + 1 and runs["command"][-1] == "export"
    again = run_export(split_store, "trl-sft", tmp_path / "sft2")  # same store, same bytes
    for name in ("train.parquet", "test.parquet", MANIFEST):
        assert (tmp_path / "sft" / name).read_bytes() == (tmp_path / "sft2" / name).read_bytes(), name
    assert again.counts == written.counts


def test_grpo_export_keeps_test_problems_out_of_train(task_store, tmp_path):
    run_export(task_store, "trl-grpo", tmp_path / "grpo")
    problems = task_store.read("problems")
    for split in ("train", "test"):
        df = pl.read_parquet(tmp_path / "grpo" / f"{split}.parquet")
        assert set(df["problem_id"]) == set(problems.filter(pl.col("split") == split)["problem_id"])
    df = pl.read_parquet(tmp_path / "grpo" / "train.parquet")
    samples = task_store.read("samples").group_by("problem_id").agg(pl.len(), pl.col("is_correct").sum())
    got = df.join(samples, on="problem_id")
    assert (got["base_samples"] == got["len"]).all() and (got["base_correct"] == got["is_correct"]).all()


def test_verl_rows_match_the_documented_layout_and_compute_score_by_keyword(task_store, tmp_path):
    from tracekit.trainers.verl_reward import compute_score

    written = run_export(task_store, "verl", tmp_path / "verl")
    rl = pl.read_parquet(tmp_path / "verl" / "rl" / "train.parquet")
    assert rl.columns == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    row = rl.row(0, named=True)
    problem = (
        task_store.read("problems")
        .filter(pl.col("problem_id") == row["extra_info"]["problem_id"])
        .row(0, named=True)
    )
    assert row == {
        "data_source": "multiplication",
        "prompt": [{"role": "user", "content": problem["question"]}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": problem["meta"]},
        "extra_info": {"split": "train", "index": 0, "problem_id": problem["problem_id"]},
    }
    assert rl["extra_info"].struct.field("index").to_list() == list(range(rl.height))
    test = pl.read_parquet(tmp_path / "verl" / "rl" / "test.parquet")
    assert set(test["extra_info"].struct.field("split")) == {"test"}
    right = f"<think>{problem['answer']}?</think>\n<answer>{problem['answer']}</answer>"
    extra = {**row["extra_info"], "num_turns": 2, "rollout_reward_scores": {}}  # what verl adds
    kw = {
        "data_source": row["data_source"],
        "ground_truth": row["reward_model"]["ground_truth"],
        "extra_info": extra,
    }
    assert compute_score(solution_str=right, **kw) == 1.0
    assert compute_score(solution_str="<answer>-1</answer>", **kw) == 0.0
    inside = f"<think><sample><answer>{problem['answer']}</answer></sample></think>no final answer"
    assert compute_score(solution_str=inside, **kw) == 0.0
    sft = pl.read_parquet(tmp_path / "verl" / "sft" / "train.parquet")
    assert (
        sft["messages"][0].to_list()[0]["role"] == "user"
        and sft["messages"][0].to_list()[1]["role"] == "assistant"
    )
    assert written.counts["sft/train"] == sft.height


def test_llamafactory_entry_and_well_formed_pairs(split_store, tmp_path):
    out = tmp_path / "lf"
    out.mkdir()
    (out / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    run_export(split_store, "llamafactory", out)
    info = json.loads((out / "dataset_info.json").read_text())
    tags = {
        "role_tag": "role",
        "content_tag": "content",
        "user_tag": "user",
        "assistant_tag": "assistant",
        "system_tag": "system",
    }
    assert info == {
        "mine": {"file_name": "mine.json"},  # a user's entry is kept
        "tracekit_sft": {
            "file_name": "tracekit_sft/train.parquet",
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": tags,
        },
        "tracekit_sft_test": {
            "file_name": "tracekit_sft/test.parquet",
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": tags,
        },
    }
    assert {p.suffix for p in (out / "tracekit_sft").iterdir()} == {".parquet"}  # one extension in the folder
    assert (out / MANIFEST).exists()
    for split in ("train", "test"):
        df = pl.read_parquet(out / "tracekit_sft" / f"{split}.parquet")
        for messages in df[
            "messages"
        ].to_list():  # LLaMA-Factory drops rows that are not user/assistant pairs
            assert [m["role"] for m in messages] == ["user", "assistant"]
            assert all(m["content"].strip() for m in messages)


def test_skillfactory_reference_output_layout(split_store, tmp_path):
    run_export(split_store, "skillfactory", tmp_path / "sf")
    df = pl.read_parquet(tmp_path / "sf" / "train.parquet")
    assert df.columns == ["conversations", "sft_template_type_idx"]
    traces = split_store.read("traces").join(
        split_store.read("problems").select("problem_id", "split"), on="problem_id"
    )
    train = traces.filter(pl.col("split") == "train")
    expected = [f"{n}C" if f == "*C_full" else f for f, n in train.select("format", "n_samples").iter_rows()]
    assert sorted(df["sft_template_type_idx"].to_list()) == sorted(expected)
    first = df["conversations"][0].to_list()
    assert [m["role"] for m in first] == ["user", "assistant"] and first[1]["content"].startswith("<think>")


def test_hf_export_loads_with_load_from_disk_and_load_dataset(split_store, tmp_path):
    import datasets

    out = tmp_path / "hf"
    out.mkdir()
    (out / "README.md").write_text("---\nlicense: mit\n---\nNotes by the user.\n")
    written = run_export(split_store, "hf", out, max_length=64)
    for config in ("problems", "samples", "reflections", "sft", "grpo"):
        dd = datasets.load_from_disk(str(out / config))
        assert set(dd) == {"train", "test"}, config
        loaded = datasets.load_dataset(str(out), config)
        assert {s: d.num_rows for s, d in loaded.items()} == {s: d.num_rows for s, d in dd.items()}
        assert written.counts[f"{config}/train"] == dd["train"].num_rows
    assert datasets.load_from_disk(str(out / "sft"))["train"][0]["prompt"][0]["role"] == "user"
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "Notes by the user." in card
    assert "## Base-model accuracy" in card and "exceed max_length 64" in card
    assert (out / "tracekit_trace_lengths.png").read_bytes()[:4] == b"\x89PNG"


def test_export_errors_are_clear(split_store, tmp_path):
    from tracekit.store import Store

    with pytest.raises(ConfigError, match="does not take"):
        run_export(split_store, "verl", tmp_path / "x", split="train")
    empty = Store(tmp_path / "empty", create=True)
    with pytest.raises(StoreError, match="no traces"):
        run_export(empty, "trl-sft", tmp_path / "y")


# ----------------------------- exports of the small dry-run store (the `store` and `raw` fixtures)
def test_export_warns_about_formats_it_lacks_among_others(tk, tmp_path, store):
    code, out, err = tk(
        "export", "--store", store, "--to", "trl-sft", "--formats", "*C_full,*CC", "--out", tmp_path / "o"
    )
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        f"warning: no traces of format(s) ['*CC'] in {store} (it holds ['*C_full']); "
        "exporting ['*C_full', '*CC'] without them."
    ]
    assert (tmp_path / "o" / "train.parquet").exists()


def test_imported_problems_need_a_verifier_for_grpo(tk, tmp_path, raw):
    st = tmp_path / "imp"
    assert tk("import-skillfactory", raw, "--store", st, "-q")[0] == 0
    before = tree(tmp_path)
    one_error(
        tk("export", "--store", st, "--to", "trl-grpo", "--out", tmp_path / "g"),
        "task 'skillfactory' has no verifier",
        "--task countdown",
    )
    assert tree(tmp_path) == before
    code, out, err = tk("export", "--store", st, "--to", "hf", "--out", tmp_path / "hf")
    assert code == 0 and "warning: config 'grpo' left out" in err
    assert not (tmp_path / "hf" / "grpo").exists() and (tmp_path / "hf" / "samples").is_dir()


def _split_rows(store, split):
    """The traces of ``split`` by the ids themselves, in the order of the traces' view."""
    from tracekit.store.views import view

    ids = view(store, "problems").filter(pl.col("split") == split).select("problem_id")
    return view(store, "traces").join(ids, on="problem_id", how="semi", maintain_order="left")


@pytest.mark.parametrize("by_id", [False, True])
def test_split_routing_keeps_the_view_order_and_skips_rows_without_a_problem(tmp_path, by_id):
    """Rows go to their problem's split in the order of the traces' view, whether problems are
    told apart by id hashes or (after a hash collision) by the ids; traces whose problem left the
    problems' view are counted and written nowhere; with one split and no such trace the rows
    are written unfiltered, the same rows."""
    from tracekit.export.source import orphans, problem_splits, write_splits
    from tracekit.reference import synthetic_raw
    from tracekit.store.manifest import recording
    from tracekit.store.views import view

    def splits_of(store):
        splits = problem_splits(store)
        splits.by_id = by_id
        return splits

    store = build_split_store(tmp_path, synthetic_raw(12, response_chars=60, reflection_chars=30, seed=5))
    files, counts = write_splits(view(store, "traces"), splits_of(store), tmp_path / "all")
    assert list(files) == ["train", "test"]
    for split, path in files.items():
        got = pl.read_parquet(path)["trace_id"].to_list()
        assert got == _split_rows(store, split).collect()["trace_id"].to_list() and counts[split] == len(got)
    problems = view(store, "problems").collect()
    kept = problems.filter(pl.col("split") == "train")["problem_id"].to_list()[:-2]
    with recording(store, "run", {"keep": kept}) as rec:  # the problems' view loses some problems
        rec.add_view("problems", pl.Series(kept))
    traces = view(store, "traces")
    lost = traces.filter(~pl.col("problem_id").is_in(kept)).collect().height
    splits = splits_of(store)
    files, counts = write_splits(traces, splits, tmp_path / "kept")
    assert list(files) == ["train"] and orphans(traces, splits) == lost > 0
    train = _split_rows(store, "train").collect()["trace_id"]
    assert pl.read_parquet(files["train"])["trace_id"].to_list() == train.to_list()
    assert run_export(store, "trl-sft", tmp_path / "sft").counts["skipped_no_problem"] == lost
    with recording(store, "rearrange", {"keep": kept}) as rec:  # now no trace lacks its problem
        rec.add_view("traces", train)
    files, counts = write_splits(view(store, "traces"), splits_of(store), tmp_path / "one")
    assert pl.read_parquet(files["train"])["trace_id"].to_list() == train.to_list()
    assert (tmp_path / "one" / "train.parquet").read_bytes() == (
        tmp_path / "kept" / "train.parquet"
    ).read_bytes()
