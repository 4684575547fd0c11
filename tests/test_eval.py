"""``tracekit eval``: scripted model outputs whose accuracy and pass@k are known by construction,
resume, several models side by side, the results table and the command line."""

import json
import re
from collections import Counter

import polars as pl
import pytest

from tracekit.errors import ConfigError
from tracekit.evaluate.config import EvalConfig, EvalModel, EvalTask, load_eval_config
from tracekit.evaluate.results import current_evals, pass_at_k, results_long, results_wide
from tracekit.evaluate.stage import run_eval
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.store import Store

K = 4
Q_RE = re.compile(r"What is (\d+) \* (\d+)\?")


def counting_responder(plan):
    """The i-th response to a question is right when i < plan(a, b): c correct answers of k by construction."""
    seen = Counter()

    def respond(messages, rng):
        a, b = map(int, Q_RE.search(messages[-1]["content"]).groups())
        i = seen[(a, b)]
        seen[(a, b)] += 1
        value = a * b if i < plan(a, b) else a * b + 1
        return f"{a} times {b} is {value}.\n<answer>{value}</answer>"

    return respond


def config(tmp_path, **kw) -> EvalConfig:
    base = {
        "store": str(tmp_path / "st"),
        "models": (EvalModel(label="m1", backend="scripted"),),
        "tasks": (EvalTask(name="multiplication", n=6, options={"digits": [2, 3], "digits_b": 1}),),
        "k": K,
        "params": SamplingParams(max_tokens=64),
    }
    base.update(kw)
    return EvalConfig(**base)


def expected(plan, problems):
    out = {}
    for diff, meta in problems:
        m = json.loads(meta)
        c = min(plan(m["a"], m["b"]), K)
        out.setdefault(diff, []).append(c)
    return {d: (sum(c / K for c in cs) / len(cs), sum(c > 0 for c in cs) / len(cs)) for d, cs in out.items()}


def test_accuracy_and_pass_at_k_known_by_construction(tmp_path):
    plan = lambda a, b: a % 5  # 0..4 correct of 4  # noqa: E731
    cfg = config(tmp_path)
    sampler = ScriptedSampler(respond=counting_responder(plan), model_id="scripted-m1")
    out = run_eval(cfg, samplers={"0": sampler}, progress=False, echo=lambda *a: None)
    evals = Store(cfg.store).read("evals")
    assert evals.height == 2 * 6 * K and set(evals["condition"]) == {"base"}
    want = expected(plan, evals.unique("problem_id").select("difficulty", "meta").iter_rows())
    got = {r["difficulty"]: (r["mean"], r["pass_at_k"]) for r in out["results"]}
    assert got.keys() == want.keys()
    for d in want:
        assert got[d] == pytest.approx(want[d])
    # the table: one row per model, a cell per difficulty, the task average and Overall
    header, rows = results_wide(pl.DataFrame(out["results"]), "mean")
    assert header == ["model", "condition", "multiplication digits=2 digits_b=1",
                      "multiplication digits=3 digits_b=1", "multiplication avg", "Overall"]  # fmt: skip
    cells = [want[d][0] for d in got]
    assert rows[0][2:4] == pytest.approx(cells) and rows[0][4] == pytest.approx(sum(cells) / 2)
    assert rows[0][5] == pytest.approx(sum(cells) / 2)
    # every stored response is scored by the task's verifier
    assert (evals["reason"] == "ok").sum() == evals["is_correct"].sum()


def test_pass_at_k_estimator():
    assert pass_at_k(4, 2, 4) == 1.0 and pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 2, 1) == pytest.approx(0.5)
    assert pass_at_k(5, 1, 2) == pytest.approx(1 - 6 / 10)  # 1 - C(4,2)/C(5,2)


class CountingSampler(ScriptedSampler):
    """A scripted sampler that counts its backend calls."""

    calls = 0

    def generate(self, requests):
        self.calls += 1
        return super().generate(requests)


def test_resume_and_side_by_side(tmp_path):
    cfg = config(
        tmp_path,
        models=(EvalModel(label="good", backend="scripted"), EvalModel(label="bad", backend="scripted")),
    )
    good = CountingSampler(respond=counting_responder(lambda a, b: K), model_id="good")
    bad = ScriptedSampler(respond=counting_responder(lambda a, b: 0), model_id="bad")
    quiet = {"progress": False, "echo": lambda *a: None}
    out = run_eval(cfg, samplers={"good": good, "bad": bad}, **quiet)
    assert out["new_rows"] == {"base": 2 * 2 * 6 * K}
    table = {(r["label"], r["difficulty"]): r["mean"] for r in out["results"]}
    assert set(v for (lab, _), v in table.items() if lab == "good") == {1.0}
    assert set(v for (lab, _), v in table.items() if lab == "bad") == {0.0}
    calls = good.calls
    again = run_eval(cfg, samplers={"good": good, "bad": bad}, **quiet)  # nothing left to do
    assert again["new_rows"] == {} and good.calls == calls and again["results"] == out["results"]
    # more samples per problem: only the new indices are generated
    more = run_eval(
        config(tmp_path, k=K + 2, models=cfg.models), samplers={"good": good, "bad": bad}, **quiet
    )
    assert more["new_rows"] == {"base": 2 * 2 * 6 * 2}
    evals = Store(cfg.store).read("evals")
    assert evals.group_by("label", "problem_id").len()["len"].unique().to_list() == [K + 2]
    # a smaller k again: nothing new, and the table counts only the first k samples of each problem
    fewer = run_eval(cfg, samplers={"good": good, "bad": bad}, **quiet)
    assert fewer["new_rows"] == {} and {r["samples"] for r in fewer["results"]} == {6 * K}


def test_interrupted_eval_resumes_without_loss(tmp_path):
    cfg = config(tmp_path, chunk_problems=2)

    class Boom(Exception):
        pass

    def flaky(messages, rng):
        if flaky.calls >= 3 * K:  # dies inside the fourth problem (second chunk written, third not)
            raise Boom
        flaky.calls += 1
        return "<answer>1</answer>"

    flaky.calls = 0
    with pytest.raises(Boom):
        run_eval(
            cfg, samplers={"0": ScriptedSampler(respond=flaky, model_id="s")}, progress=False, echo=print
        )
    assert Store(cfg.store).count("evals") == 2 * K
    flaky.calls = -10_000
    run_eval(cfg, samplers={"0": ScriptedSampler(respond=flaky, model_id="s")}, progress=False, echo=print)
    ev = Store(cfg.store).read("evals")
    assert ev.height == 12 * K and ev["eval_id"].n_unique() == ev.height


def test_new_revision_supersedes_old_rows(tmp_path):
    rows = pl.DataFrame(
        {
            "label": ["a", "a", "a", "b"],
            "model_revision": ["r1", "r1", "r2", None],
            "condition": ["base"] * 4,
            "sample_key": ["k1", "k2", "k1", "k1"],
            "x": [1, 2, 3, 4],
        }
    )
    assert current_evals(rows)["x"].to_list() == [3, 4]


def test_results_long_of_no_rows_is_empty():
    from tracekit.schemas import empty_frame

    long = results_long(empty_frame("evals"))
    assert long.height == 0 and {"mean", "pass_at_k", "problems"} <= set(long.columns)


def test_config_is_strict(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("store: st\nmodels: [{backend: scripted}]\ntasks: [{name: multiplication}]\nkk: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['kk'\]"):
        load_eval_config(path)
    path.write_text(
        "store: st\nmodels: [{backend: scripted}]\ntasks: [{name: countdown, options: {n_numbers: [3, 4]}}]\n"
        "params: {max_tokens: 100}\nbudget_forcing: {total_tokens: 50}\n"
    )
    with pytest.raises(ConfigError, match="must exceed the first budget"):
        load_eval_config(path)
    path.write_text(
        "store: st\nmodels: [{backend: scripted}]\ntasks: [{name: countdown, options: {n_numbers: [3, 4]}}]\n"
    )
    cfg = load_eval_config(path)
    assert [d for d in cfg.tasks[0].difficulties()] == [{"n_numbers": 3}, {"n_numbers": 4}]


def test_cli_eval_with_scripted_backend(tmp_path):
    from typer.testing import CliRunner

    from tracekit.cli import app

    path = tmp_path / "e.yaml"
    path.write_text(
        f"store: {tmp_path / 'st'}\nk: 2\nmodels: [{{label: dry, backend: scripted}}]\n"
        "tasks: [{name: countdown, n: 3, options: {n_numbers: [3, 4]}}]\nparams: {max_tokens: 40}\n"
    )
    result = CliRunner().invoke(app, ["eval", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "accuracy, mean over samples" in result.output and "pass@2" in result.output
    assert "countdown n_numbers=3" in result.output and "Overall" in result.output
    assert "decontamination:" in result.output
    runs = Store(tmp_path / "st").read("runs")
    assert runs["command"].to_list() == ["eval"]


def test_shipped_eval_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    paper = load_eval_config(root / "eval" / "paper-vllm.yaml")
    assert sum(len(t.difficulties()) for t in paper.tasks) == 12 and paper.budget_forcing is not None
    loop = load_eval_config(root / "eval" / "loop-cpu.yaml")
    assert [m.label for m in loop.models] == ["base", "base-fewshot", "sft"]


def test_local_checkpoint_fingerprint_changes_with_its_weights(tmp_path):
    from tracekit.evaluate.stage import fingerprint

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a" * (3 << 20))
    first = fingerprint(str(tmp_path))
    assert first.startswith("local:") and fingerprint(str(tmp_path)) == first
    (tmp_path / "model.safetensors").write_bytes(
        b"a" * ((3 << 20) - 1) + b"b"
    )  # retrained: last bytes differ
    assert fingerprint(str(tmp_path)) != first
    assert fingerprint(None) is None and fingerprint(str(tmp_path / "missing")) is None


def test_eval_demonstrations_are_the_ones_a_run_shows(tmp_path):
    # one rule for both: the first difficulty's knobs, the config's seed, the problems left out; none for datasets
    from tracekit.evaluate.stage import _demos
    from tracekit.pipeline.config import RunConfig, SampleConfig, TaskSpec
    from tracekit.pipeline.run import run_demos

    cfg = config(tmp_path, seed=3, few_shot=2)
    first = cfg.tasks[0].difficulties()[0]
    run_cfg = RunConfig(
        store=cfg.store,
        seed=3,
        tasks=(TaskSpec(name="multiplication", options=first),),
        sampling=SampleConfig(few_shot=2),
    )
    exclude = {"p-none"}
    shown = _demos(cfg, 2, exclude)
    assert shown == run_demos(run_cfg, exclude)[0]
    assert len(shown["multiplication"]) == 2
    assert _demos(cfg, 0, exclude) == {}
