"""Real TRL trainers running real steps on exported data, with a tiny model built locally (CPU)."""

import json
import re

import polars as pl
import pytest

trl = pytest.importorskip("trl")


def test_sft_runs_real_steps_on_exported_traces(tmp_path, filled_store, tiny_model):
    from tracekit.export import export_trl_sft
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.trainers.sft import train_sft

    rearrange_store(filled_store, RearrangeConfig(formats=("*C",), n_max=2))
    out = export_trl_sft(filled_store, tmp_path / "sft").files["train"]
    trainer = train_sft(
        out,
        tiny_model,
        tmp_path / "ckpt",
        max_steps=2,
        per_device_train_batch_size=2,
        max_length=512,
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
    )
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert trainer.state.global_step == 2 and losses and all(loss > 0 for loss in losses)


def test_grpo_runs_real_steps_with_verifier_rewards(tmp_path, tiny_model):
    from tracekit.export import export_trl_grpo
    from tracekit.store import Store
    from tracekit.tasks import get_task
    from tracekit.trainers.grpo import train_grpo

    store = Store(tmp_path / "st", create=True)
    from tracekit.store.manifest import add_rows

    add_rows(store, "problems", get_task("countdown").generate(4, seed=0, n_numbers=3))
    data = export_trl_grpo(store, tmp_path / "grpo")  # the export itself (path-like) is accepted
    df = pl.read_parquet(data.files["train"])
    assert df["prompt"][0][0]["role"] == "user" and json.loads(df["meta"][0])["target"]
    seen = []

    def varied(completions, **kw):  # rewards must vary for a non-zero GRPO loss
        assert {"task", "meta", "answer", "problem_id"} <= set(kw)  # the ground-truth columns arrive
        seen.append(len(completions))
        return [float(len(c[-1]["content"]) % 3) for c in completions]

    from tracekit.trainers.rewards import correctness_reward

    trainer = train_grpo(
        data,
        tiny_model,
        tmp_path / "ckpt",
        reward_funcs=[correctness_reward, varied],
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
    )
    assert trainer.state.global_step == 1 and seen


def _write_yaml(path, data):
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


CPU = {"use_cpu": True, "bf16": False, "save_strategy": "no", "report_to": "none", "logging_steps": 1}


def test_train_sft_command_runs_trl_on_the_export_and_reports_long_traces(tmp_path, tiny_model):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from deliver_stores import build_task_store
    from typer.testing import CliRunner

    from tracekit.cli import app
    from tracekit.export import run_export

    store = build_task_store(tmp_path)
    run_export(store, "trl-sft", tmp_path / "sft")
    cfg = {
        "model": tiny_model,
        "data": str(tmp_path / "sft"),
        "output_dir": str(tmp_path / "ckpt"),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "max_length": 300,
        **CPU,
    }
    r = CliRunner().invoke(app, ["train", "sft", str(_write_yaml(tmp_path / "sft.yaml", cfg))])
    import traceback

    assert r.exit_code == 0, "".join(traceback.format_exception(r.exception))
    assert "traces exceed max_length 300" in r.output and "trained 1 steps" in r.output
    over, rows = map(int, re.search(r"(\d+) of (\d+) traces exceed", r.output).groups())
    assert 0 < over < rows  # with the tiny BPE some traces are longer than 300 tokens

    bad = _write_yaml(tmp_path / "bad.yaml", {**cfg, "max_lenght": 10})
    from tracekit.errors import ConfigError
    from tracekit.trainers.config import load_train_config

    with pytest.raises(ConfigError, match="max_lenght.*did you mean 'max_length'"):
        load_train_config(bad, "sft")


def test_train_grpo_command_reports_and_drops_problems_without_signal(tmp_path, tiny_model):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from deliver_stores import build_task_store

    from tracekit.export import run_export
    from tracekit.trainers.grpo import signal_report
    from tracekit.trainers.run import run_training

    store = build_task_store(tmp_path)
    run_export(store, "trl-grpo", tmp_path / "grpo")
    train = pl.read_parquet(tmp_path / "grpo" / "train.parquet")
    report = signal_report(train.to_dict(as_series=False))
    assert report["all_right"] and report["all_wrong"] and report["mixed"]
    cfg = {
        "model": tiny_model,
        "data": str(tmp_path / "grpo"),
        "output_dir": str(tmp_path / "ckpt"),
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "num_generations": 4,
        "max_completion_length": 8,
        "rewards": ["correctness", "format"],
        **CPU,
    }
    lines = []
    trainer = run_training(
        "grpo", _write_yaml(tmp_path / "grpo.yaml", cfg), drop_no_signal=True, echo=lines.append
    )
    none = report["all_right"] + report["all_wrong"]
    assert lines[0].startswith(f"{none} of {report['problems']} problems")
    assert f"training on {report['mixed']} problems" in lines[1]
    assert trainer.state.global_step == 1 and len(trainer.train_dataset) == report["mixed"]
