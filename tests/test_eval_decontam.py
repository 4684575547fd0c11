"""Decontamination with planted overlaps: exact keys for procedural tasks, 8-gram overlap for text datasets."""

import json

import polars as pl

from tracekit.evaluate.config import EvalConfig, EvalModel, EvalTask
from tracekit.evaluate.decontaminate import decontaminate, ngrams
from tracekit.evaluate.stage import run_eval
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.store import Store
from tracekit.tasks import get_task

GSM = [
    "Natalia sold clips to forty eight of her friends in April and then she sold half as many in May",
    "A baker made twelve loaves of bread on Monday and sold nine of them before noon to the neighbours",
    "Tom has three red apples and four green apples in a basket on the kitchen table by the window",
]


def training_row(pid, task, question, meta="{}", split="train"):
    return {
        "problem_id": pid,
        "task": task,
        "question": question,
        "answer": "1",
        "split": split,
        "difficulty": "",
        "seed": None,
        "index": None,
        "meta": meta,
    }


def training_frame(rows):
    from tracekit.schemas import polars_schema

    return pl.DataFrame(rows, schema=polars_schema("problems"))


def gsm_file(tmp_path):
    path = tmp_path / "gsm8k_test.jsonl"
    path.write_text(
        "".join(json.dumps({"question": q, "answer": f"... #### {i}"}) + "\n" for i, q in enumerate(GSM))
    )
    return path


def test_planted_overlaps_are_removed_and_reported(tmp_path):
    countdown = get_task("countdown").generate(3, seed=5, split="test", n_numbers=4)
    gsm = get_task("gsm8k").load(gsm_file(tmp_path))
    problems = pl.concat([countdown, gsm])
    meta0 = json.loads(countdown["meta"][0])
    words = GSM[0].split()
    training = training_frame(
        [
            # the same numbers (reordered) and target, other wording: the exact key of countdown catches it
            training_row(
                "p-cd",
                "countdown",
                f"Reach {meta0['target']} from {list(reversed(meta0['numbers']))}.",
                json.dumps({**meta0, "numbers": list(reversed(meta0["numbers"]))}),
            ),
            # imported data (no task fields): the same question text, other case and spacing
            training_row("p-imp", "skillfactory", "  " + countdown["question"][1].upper()),
            # 8 consecutive words of a GSM8K question inside another text: removed
            training_row("p-g8", "gsm8k", "Story: " + " ".join(words[3:11]) + " and more."),
            # only 7 consecutive words of another: kept
            training_row("p-g7", "gsm8k", "Note " + " ".join(GSM[1].split()[2:9]) + " yesterday."),
        ]
    )
    kept, report = decontaminate(problems, training, n=8)
    removed = {r["problem_id"]: (r["rule"], r["match"]) for r in report.removed}
    assert removed == {
        countdown["problem_id"][0]: ("exact_key", "p-cd"),
        countdown["problem_id"][1]: ("question_text", "p-imp"),
        gsm["problem_id"][0]: ("8-gram", "p-g8"),
    }
    assert kept["problem_id"].to_list() == [
        countdown["problem_id"][2],
        gsm["problem_id"][1],
        gsm["problem_id"][2],
    ]
    assert report.checked == {"exact_key": 3, "8-gram": 3} and report.training_problems == 4
    text = report.format()
    assert "6 evaluation problems checked against 4 training problems" in text and "removed 3" in text


def test_procedural_templates_are_not_ngram_matches():
    # two different countdown problems share their template wording but not their key
    a, b = get_task("countdown").generate(2, seed=1, split="test", n_numbers=3)["question"]
    assert ngrams(a, 8) & ngrams(b, 8)
    problems = get_task("countdown").generate(1, seed=1, split="test", n_numbers=3)
    other = get_task("countdown").generate(2, seed=1, split="test", n_numbers=3).slice(1)
    training = training_frame([training_row("p-x", "countdown", other["question"][0], other["meta"][0])])
    kept, report = decontaminate(problems, training)
    assert kept.height == 1 and report.removed == []


def test_eval_skips_contaminated_problems(tmp_path):
    store = Store(tmp_path / "st", create=True)
    cfg = EvalConfig(
        store=str(store.root),
        models=(EvalModel(label="m", backend="scripted"),),
        tasks=(EvalTask(name="multiplication", n=4, options={"digits": 2, "digits_b": 1}),),
        k=1,
        params=SamplingParams(max_tokens=20),
    )
    from tracekit.evaluate.problems import eval_problems

    planted = eval_problems(cfg).head(1).with_columns(split=pl.lit("train"))
    from tracekit.store.manifest import add_rows

    add_rows(store, "problems", planted)  # a training problem that is also a held-out problem
    lines = []
    out = run_eval(cfg, samplers={"m": ScriptedSampler(model_id="m")}, progress=False, echo=lines.append)
    assert out["decontamination"]["removed"][0]["problem_id"] == planted["problem_id"][0]
    assert out["problems"] == 3 and "removed 1" in lines[0]
    evals = store.read("evals")
    assert planted["problem_id"][0] not in evals["problem_id"].to_list() and evals.height == 3
    drops = json.loads(store.read("runs").filter(pl.col("command") == "eval")["drops_json"][0])
    assert drops == {"decontaminate/exact_key": 1}


def test_eval_into_a_store_without_training_problems_warns(tmp_path):
    import pytest

    from tracekit.errors import TracekitWarning

    cfg = EvalConfig(
        store=str(tmp_path / "fresh"),
        models=(EvalModel(label="m", backend="scripted"),),
        tasks=(EvalTask(name="multiplication", n=2, options={"digits": 2, "digits_b": 1}),),
        k=1,
        params=SamplingParams(max_tokens=20),
    )
    with pytest.warns(TracekitWarning, match="no training problems in .*fresh: nothing was checked"):
        out = run_eval(
            cfg, samplers={"m": ScriptedSampler(model_id="m")}, progress=False, echo=lambda *_: None
        )
    assert out["decontamination"]["training_problems"] == 0 and out["problems"] == 2
