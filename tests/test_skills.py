"""Skill analytics: scripted model outputs whose counts, verdict F1, retries and conditional accuracies
are known by construction; silver traces, whose verdict F1 is 1.0 by construction."""

import json
import re

import pytest

from tracekit.evaluate.config import EvalConfig, EvalModel, EvalTask
from tracekit.evaluate.skills import parse_structure, skill_tables
from tracekit.evaluate.stage import run_eval
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.scripted import ScriptedSampler

Q_RE = re.compile(r"What is (\d+) \* (\d+)\?")


def four_responses(right: int, wrong: int) -> list[str]:
    """Four responses: (verdict, truth) pairs (I,I) (C,C) | (I,C) (C,I) | none | (I,I); two retries."""
    s = lambda v: f"<sample>\nit is {v}\n<answer>{v}</answer>\n</sample>"  # noqa: E731
    r = lambda w: f"<reflect>\nchecking\n<verdict>{w}</verdict>\n</reflect>"  # noqa: E731
    final = lambda v: f"</think>\n<answer>{v}</answer>"  # noqa: E731
    return [
        f"<think>\n{s(wrong)}\n{r('Incorrect')}\nLet me retry.\n{s(right)}\n{r('Correct')}\n{final(right)}",
        f"<think>\n{s(right)}\n{r('Incorrect')}\nAgain.\n{s(wrong)}\n{r('Correct')}\n{final(wrong)}",
        f"The product is {right}.\n<answer>{right}</answer>",
        f"<think>\n{s(wrong)}\n{r('Incorrect')}\n{final(wrong)}",
    ]


def responder():
    seen = {}

    def respond(messages, rng):
        a, b = map(int, Q_RE.search(messages[-1]["content"]).groups())
        i = seen.get((a, b), 0)
        seen[(a, b)] = i + 1
        return four_responses(a * b, a * b + 1)[i % 4]

    return respond


def test_parse_structure_counts():
    s = parse_structure(four_responses(36, 35)[0])
    assert (s.n_answers, s.n_samples, s.n_reflects) == (3, 2, 2)
    assert s.judged == ((False, "35", True), (True, "36", False))
    lenient = parse_structure(
        "<sample><answer>1</answer><reflect><verdict>Correct</verdict"
    )  # nothing closed
    assert lenient.n_samples == 1 and lenient.judged == ((True, "1", False),)
    assert parse_structure("plain <answer>2</answer>") == parse_structure("plain <answer>2</answer>")
    assert parse_structure("plain <answer>2</answer>").judged == ()


def test_eval_skills_known_by_construction(tmp_path):
    cfg = EvalConfig(
        store=str(tmp_path / "st"),
        models=(EvalModel(label="m", backend="scripted"),),
        tasks=(EvalTask(name="multiplication", n=3, options={"digits": 2, "digits_b": 1}),),
        k=4,
        params=SamplingParams(max_tokens=200),
    )
    run_eval(
        cfg, samplers={"m": ScriptedSampler(respond=responder(), model_id="m")}, progress=False, echo=print
    )
    from tracekit.store import Store

    tables = skill_tables(Store(cfg.store), source="evals")
    (g,) = tables["overall"]
    assert g["label"] == "m" and g["responses"] == 12
    assert g["answers_per_response"] == pytest.approx((3 + 3 + 1 + 2) / 4)
    assert g["samples_per_response"] == pytest.approx(5 / 4) and g["reflects_per_response"] == pytest.approx(
        5 / 4
    )
    assert g["with_reflect"] == pytest.approx(3 / 4) and g["verdicts"] == 15
    assert g["verdict"]["Correct"] == {
        "predicted": 6,
        "actual": 6,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
    }
    inc = g["verdict"]["Incorrect"]
    assert (inc["predicted"], inc["actual"]) == (9, 9) and inc["f1"] == pytest.approx(2 / 3)
    assert (g["incorrect_verdicts"], g["retries"]) == (9, 6) and g["retry_rate"] == pytest.approx(2 / 3)
    assert g["accuracy_by_last_verdict"] == {
        "Correct": {"n": 6, "accuracy": 0.5},
        "Incorrect": {"n": 3, "accuracy": 0.0},
        "none": {"n": 3, "accuracy": 1.0},
    }
    assert g["final_accuracy"] == pytest.approx(0.5) and tables["length_unit"] == "tokens"


def test_silver_traces_have_verdict_f1_one(filled_store):
    from tracekit.rearrange import RearrangeConfig, rearrange_store

    rearrange_store(
        filled_store, RearrangeConfig(formats=("*C_full", "*C*IC", "*CC", "random", "0C"), n_max=3)
    )
    tables = skill_tables(filled_store, source="traces")
    traces = filled_store.read("traces")
    assert sum(g["responses"] for g in tables["groups"]) == traces.height
    assert {g["format"] for g in tables["groups"]} == set(traces["format"])
    occurred = 0
    for g in [*tables["groups"], *tables["overall"]]:
        for cls in ("Correct", "Incorrect"):
            v = g["verdict"][cls]
            if v["predicted"] or v["actual"]:
                occurred += 1
                assert v["f1"] == 1.0 and v["precision"] == 1.0 and v["recall"] == 1.0
    assert occurred >= 4
    (all_traces,) = tables["overall"]
    assert all_traces["verdicts"] == traces["reflection_ids"].list.len().sum()
    assert all_traces["verdict"]["Incorrect"]["actual"] > 0  # the store holds wrong samples in traces
    # every trace text has one <reflect> block per reflection it links, so retries come from the links
    assert all_traces["reflects_per_response"] == pytest.approx(traces["reflection_ids"].list.len().mean())
    # traces end on a correct sample (except `random`): a last verdict Correct means a correct final answer
    for g in tables["groups"]:
        if g["format"] != "random" and "Correct" in g["accuracy_by_last_verdict"]:
            assert g["accuracy_by_last_verdict"]["Correct"]["accuracy"] == 1.0


def test_cli_skills_json(filled_store, tmp_path):
    from typer.testing import CliRunner

    from tracekit.cli import app
    from tracekit.rearrange import RearrangeConfig, rearrange_store

    rearrange_store(filled_store, RearrangeConfig(formats=("*C_full",), n_max=2))
    out = tmp_path / "skills.json"
    result = CliRunner().invoke(app, ["skills", "--store", str(filled_store.root), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "skills (traces, overall)" in result.output and "F1 Correct" in result.output
    data = json.loads(out.read_text())
    assert data["source"] == "traces" and data["length_unit"] == "words" and data["groups"]
    bad = CliRunner().invoke(app, ["skills", "--store", str(filled_store.root), "--source", "x"])
    assert bad.exit_code != 0
