"""The run pipeline with a scripted sampler: stages, yields, resume, truncation, config changes, views."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from cli_contract import edited, listing, one_error

from tracekit.configfile import from_mapping
from tracekit.errors import ConfigError, StoreError
from tracekit.pipeline import run_pipeline
from tracekit.pipeline.config import RunConfig, load_config
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.store import Store
from tracekit.store.views import view

ROOT = Path(__file__).resolve().parents[1]


def answerer(messages, rng):
    """Right about 60% of the time on multiplication; verdicts right about 70% of the time."""
    last = messages[-1]["content"]
    m = re.search(r"What is (\d+) \* (\d+)\?", last)
    if "Proposed solution" in last:
        proposed = re.findall(r"<answer>(.*?)</answer>", last)[-1]
        right = str(int(m.group(1)) * int(m.group(2))) == proposed.strip()
        says = right if rng.random() < 0.7 else not right
        return f"Checking the product.\n<verdict>{'Correct' if says else 'Incorrect'}</verdict>"
    product = int(m.group(1)) * int(m.group(2))
    value = product if rng.random() < 0.6 else product + rng.randint(1, 9)
    return f"{m.group(1)} * {m.group(2)} = {value}.\n<answer>{value}</answer>"


def settings(store, **over) -> dict:
    data = {
        "store": str(store),
        "tasks": [{"name": "multiplication", "n": 6, "options": {"digits": 2, "digits_b": 1}}],
        "chunk_problems": 2,
        "sampling": {
            "variants": ["plain", "plan"],
            "samples_per_variant": 3,
            "few_shot": 2,
            "params": {"max_tokens": 64, "stop": ["</answer>"]},
        },
        "reflection": {"per_sample": 2, "few_shot": 2, "params": {"max_tokens": 64, "stop": ["</verdict>"]}},
        "rearrange": {"formats": ["*C_full", "*C*IC"], "n_max": 3, "min_samples": 2},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
            for inner, v in value.items():  # one level deeper (sampling.params, ...)
                if isinstance(v, dict) and isinstance(data[key].get(inner), dict):
                    data[key][inner] = {**settings(store)[key][inner], **v}
        else:
            data[key] = value
    return data


def config(tmp_path, store="st", **over) -> RunConfig:
    return from_mapping(RunConfig, settings(tmp_path / store, **over), "test")


def run(cfg, sampler=None, *, dry_run=False):
    sampler = None if dry_run else (sampler or ScriptedSampler(answerer))
    return run_pipeline(cfg, sampler=sampler, dry_run=dry_run, progress=False, echo=lambda s: None)


def test_pipeline_builds_traces(tmp_path):
    cfg = config(tmp_path)
    out = []
    summary = run_pipeline(cfg, sampler=ScriptedSampler(answerer), progress=False, echo=out.append)
    assert summary["problems"] == 6 and summary["samples"] == 6 * 2 * 3 and summary["reflections"] == 72
    assert summary["traces"].get("*C_full", 0) > 0
    assert 0 < summary["verdict_agreement"] < 1
    text = out[0]
    assert "accuracy per task and variant" in text and "filter drops" in text and "traces per format" in text
    st = Store(cfg.store)
    samples = st.read("samples")
    assert samples["prompt"][0].startswith("[") and samples["model"][0] == "scripted"
    # the verify stage used the task's verifier
    for row in samples.iter_rows(named=True):
        assert row["is_correct"] == (row["reason"] == "ok")
    # kept reflections: the filter's counter, equal to the agreeing verdicts of the run's reflections
    refl = st.read("reflections").join(samples.select("sample_id", "is_correct"), on="sample_id")
    assert summary["kept_reflections"] == int((refl["verdict"] == refl["is_correct"]).fill_null(False).sum())
    run_row = st.read("runs").row(0, named=True)
    assert json.loads(run_row["config_json"])["seed"] == 0 and run_row["model"] == "scripted"
    assert set(json.loads(run_row["timings_json"])) >= {"sample", "reflect", "rearrange", "total"}
    assert json.loads(run_row["sampling_json"])["batch_invariant"] is True  # the scripted backend's
    counts = json.loads(run_row["row_counts_json"])
    assert counts["view"] == {"problems": 6, "samples": 36, "reflections": 72, "traces": st.count("traces")}


def test_rerun_reuses_everything_and_more_samples_only_adds(tmp_path):
    cfg = config(tmp_path)
    run(cfg)
    again = run(cfg)
    assert again["new_samples"] == 0 and again["new_reflections"] == 0 and again["new_traces"] == 0
    summary = run(config(tmp_path, sampling={"samples_per_variant": 5}))
    assert summary["new_samples"] == 6 * 2 * 2 and summary["samples"] == 6 * 2 * 5


def test_truncated_are_marked_and_regenerated_when_max_tokens_grows(tmp_path):
    cfg = config(tmp_path, sampling={"params": {"max_tokens": 3}})
    first = run(cfg)
    assert first["truncated"] == first["samples"]  # every response is longer than 3 words
    assert first["traces"] == {} and first["reflections"] == 0  # truncated responses: no reflection, no trace
    bigger = config(tmp_path)
    second = run(bigger)
    assert second["new_samples"] == first["samples"] and second["truncated"] == 0
    assert second["samples"] == first["samples"]  # superseded rows are not counted twice
    assert run(bigger)["new_samples"] == 0
    # back to the small budget: the rows cut at 3 tokens serve again, nothing is generated
    assert run(cfg)["new_samples"] == 0


def test_the_store_is_read_once_per_run_not_per_chunk(tmp_path, monkeypatch):
    """Plan, work, commit: the run reads what the store holds once, then never per chunk (fresh and
    finished runs alike); only writing (and its own checks) touches the store per chunk."""
    reads = []
    writing = []
    real_scan, real_write = Store.scan, Store.write

    def scan(self, table, **kw):
        if not writing:
            reads.append(table)
        return real_scan(self, table, **kw)

    def write(self, table, frame, **kw):
        writing.append(1)
        try:
            return real_write(self, table, frame, **kw)
        finally:
            writing.pop()

    monkeypatch.setattr(Store, "scan", scan)
    monkeypatch.setattr(Store, "write", write)
    counts = {}
    for chunk in (1, 6):
        for attempt in ("fresh", "again"):
            reads.clear()
            run(config(tmp_path, store=f"st{chunk}", chunk_problems=chunk))
            counts[chunk, attempt] = sorted(reads)
    assert counts[1, "fresh"] == counts[6, "fresh"] and counts[1, "again"] == counts[6, "again"]
    assert counts[1, "fresh"].count("samples") == counts[1, "again"].count("samples") <= 3


def snapshot(store) -> dict:
    """What a store means now: the current view of every table (ids and texts), and the export."""
    st = Store(store)
    out = {
        "problems": view(st, "problems").select("problem_id").collect().sort("problem_id"),
        "samples": view(st, "samples").select("sample_id", "response").collect().sort("sample_id"),
        "reflections": view(st, "reflections")
        .select("reflection_id", "text")
        .collect()
        .sort("reflection_id"),
        "traces": view(st, "traces").select("trace_id", "completion").collect().sort("trace_id"),
    }
    from tracekit.export import export_trl_sft

    out["export"] = pl.read_parquet(export_trl_sft(st, Path(str(store) + "-sft")).files["train"]).sort(
        "trace_id"
    )
    return out


def without_new(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not k.startswith("new_") and k != "store"}


CHANGES = {
    "fewer samples": {"sampling": {"samples_per_variant": 2}},
    "more samples": {"sampling": {"samples_per_variant": 4}},
    "fewer reflections": {"reflection": {"per_sample": 1}},
    "reflection max_tokens": {"reflection": {"params": {"max_tokens": 48}}},
    "reflection temperature": {"reflection": {"params": {"temperature": 0.3}}},
    "reflection demonstrations": {"reflection": {"few_shot": 0}},
    "sampling demonstrations": {"sampling": {"few_shot": 1}},
    "n_max": {"rearrange": {"n_max": 2}},
    "formats": {"rearrange": {"formats": ["*CC"]}},
    "seed": {"seed": 1},
    "model": {},  # another model on the same problems (see below)
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_store_means_what_the_latest_config_says(tmp_path, change):
    """After a config change, the run reports and exports exactly what a fresh run of the new config
    gives (items 5-8 of the store-integrity issue); the old rows stay in the store as history."""
    first, second = config(tmp_path), config(tmp_path, **CHANGES[change])
    other = ScriptedSampler(answerer, model_id="other-model") if change == "model" else None
    before = run(first)
    changed = run(second, other)
    fresh = run(config(tmp_path, store="fresh", **CHANGES[change]), other)
    assert without_new(changed) == without_new(fresh)
    got, want = snapshot(tmp_path / "st"), snapshot(tmp_path / "fresh")
    for table in got:
        assert got[table].equals(want[table]), table
    st = Store(tmp_path / "st")
    # history: the first run's rows are still there, and reachable by its run id
    first_run = st.read("runs").sort("finished_at")["run_id"][0]
    assert view(st, "samples", run=first_run).collect().height == before["samples"]
    assert st.count("samples") >= before["samples"]


def test_changed_prompt_gets_new_reflections(tmp_path):
    """Item 5: changing the reflection demonstrations must not reuse the old reflections."""
    run(config(tmp_path))
    summary = run(config(tmp_path, reflection={"few_shot": 0}))
    assert summary["new_reflections"] == summary["reflections"] == 72 and summary["new_samples"] == 0


def test_a_run_reflects_on_its_own_models_samples_only(tmp_path):
    """Item 8: another model's samples of the same problems are neither reflected on nor reported."""
    run(config(tmp_path), ScriptedSampler(answerer, model_id="model-a"))
    summary = run(config(tmp_path), ScriptedSampler(answerer, model_id="model-b"))
    st = Store(tmp_path / "st")
    refl = st.read("reflections").join(st.read("samples").select("sample_id", "model"), on="sample_id")
    assert (refl["model"] == refl["model_right"]).all()  # every reflection is by its sample's model
    assert summary["samples"] == 36 and summary["new_samples"] == 36 and summary["reflections"] == 72


def test_one_seed_drives_rearrangement_unless_overridden(tmp_path):
    """Item 9: ``rearrange.seed`` defaults to the run's seed; an explicit one wins."""
    assert config(tmp_path, seed=5).rearrange_with_seed().seed == 5
    assert config(tmp_path, seed=5, rearrange={"seed": 2}).rearrange_with_seed().seed == 2
    run(config(tmp_path, seed=3))
    st = Store(tmp_path / "st")
    assert json.loads(st.read("runs")["config_json"][0])["rearrange"]["seed"] is None  # the seed, once
    run(config(tmp_path, store="other", seed=3, rearrange={"seed": 3}))
    run(config(tmp_path, store="zero", seed=3, rearrange={"seed": 0}))
    traces = {
        name: view(Store(tmp_path / name), "traces").collect().sort("trace_id")
        for name in ("st", "other", "zero")
    }
    assert traces["st"].equals(traces["other"]) and not traces["st"].equals(traces["zero"])


BLOCKING_RUN = """
import sys, threading
from tracekit.pipeline import run_pipeline
from tracekit.pipeline.config import load_config
from tracekit.sampling.scripted import ScriptedSampler

class Blocking(ScriptedSampler):
    calls = 0
    def generate(self, requests):
        if self.calls == int(sys.argv[2]):
            print("blocked", flush=True)
            threading.Event().wait()  # until SIGKILL
        self.calls += 1
        return super().generate(requests)

run_pipeline(load_config(sys.argv[1]), sampler=Blocking(), progress=False, echo=lambda s: None)
"""


def test_kill_and_resume(tmp_path, place):
    """SIGKILL the run inside its 6th backend call (chunks 0 and 1 done, chunk 2's samples written,
    its reflections in flight), then run again: no duplicates, no gaps, the same tables as a run
    that was never interrupted. On a local folder and on S3."""
    data = {
        "store": str(place.root("st")),
        "chunk_problems": 1,
        "tasks": [{"name": "multiplication", "n": 12}],
        "sampling": {"variants": ["plain"], "samples_per_variant": 2, "params": {"max_tokens": 32}},
        "reflection": {"per_sample": 1, "params": {"max_tokens": 32}},
        "rearrange": {"formats": ["0C"], "n_max": 1},
    }
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(data))
    proc = subprocess.Popen(
        [sys.executable, "-c", BLOCKING_RUN, str(path), "5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "blocked"  # the 6th call started: 5 calls were committed
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    st = Store(place.root("st"))
    assert st.count("samples") == 6 and st.count("reflections") == 4 and st.count("runs") == 0
    cfg = load_config(path)
    summary = run_pipeline(cfg, sampler=ScriptedSampler(), progress=False, echo=lambda s: None)
    assert summary["new_samples"] == 24 - 6 and summary["new_reflections"] == 24 - 4
    samples, reflections = st.read("samples"), st.read("reflections")
    assert samples.height == 24 and samples["sample_key"].n_unique() == 24
    assert reflections.height == 24 and reflections["sample_id"].n_unique() == 24
    data["store"] = str(place.root("fresh"))
    path.write_text(json.dumps(data))
    run_pipeline(load_config(path), sampler=ScriptedSampler(), progress=False, echo=lambda s: None)
    for table in ("samples", "reflections", "traces"):
        got = st.read(table).drop("prompt", strict=False)
        want = Store(place.root("fresh")).read(table).drop("prompt", strict=False)
        assert got.sort(got.columns[0]).equals(want.sort(want.columns[0])), table


def test_dry_run_walks_every_stage(tmp_path):
    """Item 12: canned answers from the task's oracle (about half right), verdicts that mostly agree,
    so a dry run of a shipped config builds traces; its rows are marked scripted."""
    cfg = config(tmp_path, tasks=[{"name": "countdown", "n": 8, "options": {"n_numbers": 3}}])
    summary = run(cfg, dry_run=True)
    correct = sum(r["correct"] for r in summary["accuracy"])
    assert 0.25 < correct / summary["samples"] < 0.75
    assert 0.6 < summary["verdict_agreement"] < 0.95
    assert sum(summary["traces"].values()) > 0 and summary["dry_run"]
    samples = Store(cfg.store).read("samples")
    assert set(samples["source"]) == {"scripted"} and set(samples["model"]) == {"scripted-dry-run"}
    assert set(samples["reason"]) <= {"ok", "wrong_value", "wrong_numbers", "unparseable"}


def test_dry_run_refuses_a_store_with_real_data(tmp_path, raw_frame):
    from tracekit.reference import import_skillfactory

    raw_frame.head(8).write_parquet(tmp_path / "raw.parquet")
    import_skillfactory(tmp_path / "raw.parquet", Store(tmp_path / "st", create=True))
    before = Store(tmp_path / "st").counts()
    with pytest.raises(StoreError, match="(?s)real .* samples.*Hint"):
        run(config(tmp_path), dry_run=True)
    assert Store(tmp_path / "st").counts() == before


def test_dry_run_uses_its_own_store(tmp_path):
    from typer.testing import CliRunner

    from tracekit.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(settings(tmp_path / "real")))
    result = CliRunner().invoke(app, ["run", str(cfg), "--dry-run", "--quiet"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "real").exists() and "DRY RUN" in result.output
    samples = Store(tmp_path / "real-dry-run").read("samples")
    assert samples.height == 36 and set(samples["source"]) == {"scripted"}


def test_config_is_strict(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "store: x\ntasks: [{name: multiplication}]\nsampling: {samples_per_variant: 2, bogus: 1}\n"
    )
    with pytest.raises(ConfigError, match=r"sampling: unknown key\(s\) \['bogus'\]. Valid keys"):
        load_config(path)
    path.write_text("store: x\ntasks: [{name: multiplication, n: many}]\n")
    with pytest.raises(ConfigError, match="expected int"):
        load_config(path)
    for shipped in (ROOT / "configs").glob("*.yaml"):
        load_config(shipped)


def test_prompt_variants_from_a_file(tmp_path):
    from tracekit.errors import UnknownNameError
    from tracekit.prompts import load_variants, pick_variants, sample_messages

    path = tmp_path / "variants.yaml"
    path.write_text(
        "- name: terse\n  system: Be brief.\n  instruction: Answer in <answer> </answer> tags only.\n"
    )
    known = load_variants(path)
    assert {"plain", "plan", "alternatives", "rephrase", "terse"} <= set(known)
    (terse,) = pick_variants(["terse"], known)
    msgs = sample_messages("What is 2 * 3?", terse, [("What is 1 * 1?", "1 * 1 = 1.", "1")])
    assert msgs[0] == {"role": "system", "content": "Be brief."}
    assert msgs[2]["content"] == "1 * 1 = 1.\n<answer>1</answer>"
    assert msgs[-1]["content"] == "What is 2 * 3?\n\nAnswer in <answer> </answer> tags only."
    with pytest.raises(UnknownNameError, match="Did you mean .*'plain'"):
        pick_variants(["plian"], known)
    path.write_text("- {name: x}\n")
    with pytest.raises(ConfigError, match="must have 'name' and 'instruction'"):
        load_variants(path)


# -------------------------------------- runs of the small base config (tests/cli_contract.py BASE)
def test_a_run_without_traces_says_so_and_suggests_no_export(tk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(yaml.safe_dump(edited(rearrange={"min_samples": 50})), encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err
    assert "traces per format: none" in out and "tracekit export" not in out
    assert "no traces were built" in out and "Hint:" in out


def test_reflection_parts_are_compacted_and_resume_still_works(tmp_path, monkeypatch):
    from tracekit.configfile import from_mapping
    from tracekit.pipeline.config import RunConfig
    from tracekit.pipeline.run import run_pipeline
    from tracekit.store import Store

    data = edited(store=str(tmp_path / "st"), chunk_problems=1, reflection={"per_sample": 2, "call_size": 1})
    data["tasks"][0]["n"] = 6
    cfg = from_mapping(RunConfig, data, "test")
    import tracekit.store.transaction as txn

    merged = []
    real = txn.compact
    monkeypatch.setattr(
        txn, "compact", lambda store, table, **kw: merged.append((table, real(store, table, **kw)))
    )
    run_pipeline(cfg, dry_run=True, progress=False, echo=lambda *_: None)
    st = Store(tmp_path / "st")
    assert dict(merged)["reflections"] >= 6  # one part per backend call, then merged
    assert len(st.parts("reflections")) == 1 and len(st.parts("samples")) == 1
    before = st.read("reflections").sort("reflection_id")
    again = run_pipeline(cfg, dry_run=True, progress=False, echo=lambda *_: None)
    assert again["new_samples"] == again["new_reflections"] == 0  # resume reuses every row
    assert Store(tmp_path / "st").read("reflections").sort("reflection_id").equals(before)
    assert not Store(tmp_path / "st").check()


def test_few_shot_demonstrations_do_not_grow_with_n(tk, tmp_path, monkeypatch):
    """The demo config's task with many more problems than the validation split holds."""
    monkeypatch.chdir(tmp_path)
    data = edited(sampling={"few_shot": 2, "samples_per_variant": 1}, reflection={"few_shot": 2})
    data["tasks"][0]["n"] = 200  # 2-digit x 1-digit: about 80 validation problems in all
    Path("run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err
    assert "problems 200" in out


def test_the_planned_bound_counts_every_variant_and_task(tk, tmp_path, monkeypatch):
    from tracekit.configfile import MAX_PLANNED_ROWS
    from tracekit.pipeline.config import load_config

    monkeypatch.chdir(tmp_path)
    data = edited(sampling={"variants": ["plain", "plan"], "samples_per_variant": MAX_PLANNED_ROWS // 8})
    Path("run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    load_config(
        "run.yaml"
    )  # 4 problems x 2 variants x MAX/8: exactly the bound (not run: it would not finish)
    data["tasks"][0]["n"] = 5
    Path("run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    one_error(tk("run", "run.yaml", "--dry-run", "-q"), f"plans {5 * 2 * (MAX_PLANNED_ROWS // 8):,} samples")
    assert listing(tmp_path) == ["run.yaml"]
