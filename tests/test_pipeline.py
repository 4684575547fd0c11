"""The run pipeline with a scripted sampler: stages, yields, resume, truncation, config."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracekit.errors import ConfigError
from tracekit.pipeline import run_pipeline
from tracekit.pipeline.config import RunConfig, _build, load_config
from tracekit.sampling.scripted import ScriptedSampler

ROOT = Path(__file__).resolve().parents[1]


def answerer(messages, rng):
    """Right about 60% of the time on multiplication; verdicts right about 70% of the time."""
    last = messages[-1]["content"]
    m = re.search(r"What is (\d+) \* (\d+)\?", last)
    if "Proposed solution" in last:
        proposed = re.findall(r"<answer>(.*?)</answer>", last)[-1]
        q = re.search(r"What is (\d+) \* (\d+)\?", last)
        right = str(int(q.group(1)) * int(q.group(2))) == proposed.strip()
        says = right if rng.random() < 0.7 else not right
        return f"Checking the product.\n<verdict>{'Correct' if says else 'Incorrect'}</verdict>"
    product = int(m.group(1)) * int(m.group(2))
    value = product if rng.random() < 0.6 else product + rng.randint(1, 9)
    return f"{m.group(1)} * {m.group(2)} = {value}.\n<answer>{value}</answer>"


def config(tmp_path, **over) -> RunConfig:
    data = {
        "store": str(tmp_path / "st"),
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
        data[key] = (
            {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
        )
    return _build(RunConfig, data, "test")


def test_pipeline_builds_traces(tmp_path):
    cfg = config(tmp_path)
    out = []
    summary = run_pipeline(cfg, sampler=ScriptedSampler(answerer), progress=False, echo=out.append)
    assert summary["problems"] == 6 and summary["samples"] == 6 * 2 * 3 and summary["reflections"] == 72
    assert summary["traces"].get("*C_full", 0) > 0
    assert 0 < summary["verdict_agreement"] < 1
    text = out[0]
    assert "accuracy per task and variant" in text and "filter drops" in text and "traces per format" in text
    from tracekit.store import Store

    st = Store(cfg.store)
    samples = st.read("samples")
    assert samples["prompt"][0].startswith("[") and samples["model"][0] == "scripted"
    # the verify stage used the task's verifier
    for row in samples.iter_rows(named=True):
        assert row["is_correct"] == (row["reason"] == "ok")
    run = st.read("runs").row(0, named=True)
    assert json.loads(run["config_json"])["seed"] == 0 and run["model"] == "scripted"
    assert set(json.loads(run["timings_json"])) >= {"sample", "reflect", "rearrange", "total"}


def test_rerun_reuses_everything_and_more_samples_only_adds(tmp_path):
    cfg = config(tmp_path)
    run_pipeline(cfg, sampler=ScriptedSampler(answerer), progress=False, echo=lambda s: None)
    again = run_pipeline(cfg, sampler=ScriptedSampler(answerer), progress=False, echo=lambda s: None)
    assert again["new_samples"] == 0 and again["new_reflections"] == 0
    more = config(tmp_path, sampling={"samples_per_variant": 5})
    summary = run_pipeline(more, sampler=ScriptedSampler(answerer), progress=False, echo=lambda s: None)
    assert summary["new_samples"] == 6 * 2 * 2 and summary["samples"] == 6 * 2 * 5


def test_truncated_are_marked_and_regenerated_when_max_tokens_grows(tmp_path):
    cfg = config(tmp_path, sampling={"params": {"max_tokens": 3, "stop": ["</answer>"]}})
    first = run_pipeline(cfg, sampler=ScriptedSampler(answerer), progress=False, echo=lambda s: None)
    assert first["truncated"] == first["samples"]  # every response is longer than 3 words
    assert first["traces"] == {}  # truncated responses stay out of traces
    bigger = config(tmp_path)
    second = run_pipeline(bigger, sampler=ScriptedSampler(answerer), progress=False, echo=lambda s: None)
    assert second["new_samples"] == first["samples"] and second["truncated"] == 0
    assert second["samples"] == first["samples"]  # superseded rows are not counted twice
    third = run_pipeline(bigger, sampler=ScriptedSampler(answerer), progress=False, echo=lambda s: None)
    assert third["new_samples"] == 0


def test_kill_and_resume(tmp_path):
    """SIGKILL the run mid-way, run the same command again: no duplicates, no gaps."""
    cfg_path = tmp_path / "run.yaml"
    store = tmp_path / "st"
    cfg_path.write_text(
        json.dumps(
            {
                "store": str(store),
                "chunk_problems": 1,
                "model": {"backend": "scripted", "options": {"delay": 0.15}},
                "tasks": [{"name": "multiplication", "n": 12}],
                "sampling": {"variants": ["plain"], "samples_per_variant": 2, "params": {"max_tokens": 32}},
                "reflection": {"per_sample": 1, "params": {"max_tokens": 32}},
                "rearrange": {"formats": ["0C"], "n_max": 1},
            }
        )
    )
    cmd = [sys.executable, "-m", "tracekit.cli", "run", str(cfg_path), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    samples_dir = store / "samples"
    while time.time() < deadline:  # wait until a few chunks are on disk, then kill hard
        if samples_dir.exists() and len(list(samples_dir.glob("part-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    from tracekit.store import Store

    before = Store(store).count("samples")
    assert 0 < before < 24
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    st = Store(store)
    samples = st.read("samples")
    assert samples.height == 24 and samples["sample_key"].n_unique() == 24
    reflections = st.read("reflections")
    assert reflections.height == 24 and reflections["sample_id"].n_unique() == 24
    assert f"({24 - before} new" in done.stdout


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


def test_dry_run_uses_its_own_store(tmp_path):
    from typer.testing import CliRunner

    from tracekit.cli import app
    from tracekit.store import Store

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        json.dumps(
            {
                "store": str(tmp_path / "real"),
                "tasks": [{"name": "multiplication", "n": 2}],
                "sampling": {"variants": ["plain"], "samples_per_variant": 2},
                "reflection": {"per_sample": 1},
            }
        )
    )
    result = CliRunner().invoke(app, ["run", str(cfg), "--dry-run", "--quiet"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "real").exists()
    samples = Store(tmp_path / "real-dry-run").read("samples")
    assert samples.height == 4 and set(samples["source"]) == {"scripted"}
