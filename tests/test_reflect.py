"""The reflect stage on its own: ids, plans, the work, and demonstrations labelled by the verifier."""

import dataclasses
import json

import polars as pl
import pytest

from tracekit.prompts import reflection_demos, solved_demos
from tracekit.reflect import ReflectSetting, draw_reflections, plan_reflections, reflection_keys
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.schemas import validate
from tracekit.tasks import get_task

PARAMS = SamplingParams(max_tokens=40, stop=("</verdict>",))
BASE = ReflectSetting(per_sample=2, params=PARAMS, seed=0, model="scripted", revision=None)
SAMPLES = pl.DataFrame(
    {
        "sample_id": ["s-1", "s-2"],
        "problem_id": ["p-1", "p-2"],
        "response": ["<answer>6</answer>", "<answer>7</answer>"],
    }
)
TASKS = {"p-1": "multiplication", "p-2": "multiplication"}
QUESTIONS = {"p-1": "What is 2 * 3?", "p-2": "What is 2 * 3?"}
DEMO = [("What is 1 * 1?", "The answer is 1.\n<answer>1</answer>", "1 * 1 = 1.", True)]


def ids(setting=BASE, samples=SAMPLES):
    return reflection_keys(samples, TASKS, setting)["reflection_id"].to_list()


@pytest.mark.parametrize(
    "changed",
    [
        {"demos": {"multiplication": DEMO}},
        {"model": "other"},
        {"revision": "r2"},
        {"seed": 1},
        {"params": dataclasses.replace(PARAMS, max_tokens=64)},
        {"params": dataclasses.replace(PARAMS, temperature=0.1)},
        {"params": dataclasses.replace(PARAMS, stop=())},
    ],
    ids=lambda c: ",".join(c),
)
def test_an_id_covers_everything_that_decides_the_text(changed):
    assert len(set(ids())) == 4  # sample and index are in the id
    assert not set(ids()) & set(ids(dataclasses.replace(BASE, **changed)))


def test_only_missing_reflections_are_asked_for():
    sampler = ScriptedSampler(lambda messages, rng: "Checked.\n<verdict>Correct</verdict>")
    wanted = reflection_keys(SAMPLES, TASKS, BASE)
    first = draw_reflections(plan_reflections(wanted, SAMPLES, QUESTIONS, TASKS, BASE), sampler)
    validate("reflections", first)
    assert first["reflection_id"].to_list() == wanted["reflection_id"].to_list()
    assert first["verdict"].to_list() == [True] * 4 and set(first["verdict_reason"]) == {"ok"}
    missing = wanted.filter(pl.col("reflection_index") == 1)
    plan = plan_reflections(missing, SAMPLES, QUESTIONS, TASKS, BASE)
    assert [(w.sample_id, w.index) for w in plan.work] == [("s-1", 1), ("s-2", 1)]
    assert [len(p.work) for p in plan_reflections(wanted, SAMPLES, QUESTIONS, TASKS, BASE).split(1)] == [2, 2]
    again = draw_reflections(plan, sampler)  # each reflection's text depends on its id alone
    assert (
        again.join(first, on="reflection_id").select(pl.col("text") == pl.col("text_right")).to_series().all()
    )


@pytest.mark.parametrize(
    "task, options",
    [
        ("letter_countdown", {"length": 4}),
        ("countdown", {"n_numbers": 3}),
        ("multiplication", {}),
        ("acronym", {}),
    ],
)
def test_reflection_demos_are_labelled_by_the_verifier(task, options):
    """Item 10: a demonstration labelled 'Incorrect' really is wrong (reversing 'part' gives 'trap',
    reversing '3 * 4' gives '4 * 3': both still right), and every label is the verifier's."""
    t = get_task(task)
    solved = solved_demos(t, 6, seed=0, options=options, exclude=set())
    demos = reflection_demos(t, solved)
    for (question, solution, _, meta), (q, response, sol, label) in zip(solved, demos):
        assert (q, sol) == (question, solution)
        assert label == t.score(response, meta).is_correct
    assert [label for *_, label in demos] == [True, False] * 3


def test_wrong_answer_is_wrong_even_where_reversing_is_right():
    letters = get_task("letter_countdown")
    meta = {"letters": list("partxyz"), "length": 4}
    assert letters.score_answer("trap", meta).is_correct  # the reverse of "part" is still right
    assert not letters.score_answer(letters.wrong_answer("part", meta), meta).is_correct
    countdown = get_task("countdown")
    meta = {"numbers": [3, 4, 9], "target": 12}
    assert countdown.score_answer("4 * 3", meta).is_correct
    assert not countdown.score_answer(countdown.wrong_answer("3 * 4", meta), meta).is_correct


def test_demos_come_from_a_disjoint_seed_and_not_from_the_run():
    t = get_task("multiplication")
    first = solved_demos(t, 4, seed=0, options={}, exclude=set())
    pids = {t.generate(1, seed=7919, split="validation")["problem_id"][0]}
    without = solved_demos(t, 4, seed=0, options={}, exclude=pids)
    assert without[:3] == first[1:4]  # the excluded one is skipped, the order kept
    assert solved_demos(t, 2, seed=0, options={}, exclude=set()) == first[:2]  # a prefix: stable in n
    assert json.loads(json.dumps(first[0][3])) == first[0][3]


def test_the_plan_leaves_out_stored_reflections_and_reads_only_missing_texts():
    wanted = reflection_keys(SAMPLES, TASKS, BASE)
    stored = wanted.filter(pl.col("sample_id") == "s-1")["reflection_id"]
    asked = []

    def read(ids):
        asked.append(sorted(ids.to_list()))
        return SAMPLES.filter(pl.col("sample_id").is_in(ids.implode()))

    plan = plan_reflections(wanted, SAMPLES.head(0), QUESTIONS, TASKS, BASE, stored=stored, read=read)
    assert [(w.sample_id, w.index) for w in plan.work] == [("s-2", 0), ("s-2", 1)] and plan.reused == 2
    assert asked == [["s-2"]]  # only the sample that still misses reflections is read
    done = plan_reflections(
        wanted, SAMPLES.head(0), QUESTIONS, TASKS, BASE, stored=wanted["reflection_id"], read=read
    )
    assert done.work == () and done.reused == 4 and asked == [["s-2"]]
