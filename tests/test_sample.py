"""The sample stage on its own: keys, which stored row serves a key, plans, the work."""

import dataclasses
import json

import polars as pl
import pytest

from tracekit.prompts import VARIANTS, sample_messages
from tracekit.sample import (
    INDEX_COLUMNS,
    SampleSetting,
    draw_samples,
    plan_samples,
    sample_id,
    sample_keys,
    sample_problems,
    serving_rows,
)
from tracekit.sampling.base import SamplingParams
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.schemas import validate
from tracekit.tasks import get_task

PARAMS = SamplingParams(max_tokens=32, stop=("</answer>",))
BASE = SampleSetting(variants=(VARIANTS["plain"],), k=3, params=PARAMS, seed=0, model="m", revision="r1")
PROBLEMS = get_task("multiplication").generate(3, seed=0)


def keys_of(setting=BASE, question="What is 2 * 3?", variant=VARIANTS["plain"], demos=()):
    prompt = json.dumps(sample_messages(question, variant, list(demos)))
    return sample_keys("p-1", variant.name, prompt, setting)


@pytest.mark.parametrize(
    "changed",
    [
        {"question": "What is 2 * 4?"},
        {"variant": VARIANTS["plan"]},
        {"demos": [("What is 1 * 1?", "1 * 1 = 1.", "1")]},
        {"setting": dataclasses.replace(BASE, model="other")},
        {"setting": dataclasses.replace(BASE, revision="r2")},
        {"setting": dataclasses.replace(BASE, seed=1)},
        {"setting": dataclasses.replace(BASE, params=dataclasses.replace(PARAMS, temperature=0.5))},
        {"setting": dataclasses.replace(BASE, params=dataclasses.replace(PARAMS, top_p=0.9))},
        {"setting": dataclasses.replace(BASE, params=dataclasses.replace(PARAMS, top_k=5))},
        {"setting": dataclasses.replace(BASE, params=dataclasses.replace(PARAMS, repetition_penalty=1.0))},
        {"setting": dataclasses.replace(BASE, params=dataclasses.replace(PARAMS, stop=()))},
        {"setting": dataclasses.replace(BASE, params=dataclasses.replace(PARAMS, regex="a+"))},
    ],
    ids=lambda c: ",".join(c),
)
def test_a_key_covers_everything_that_decides_the_text(changed):
    base, other = keys_of(), keys_of(**changed)
    assert len(set(base)) == 3  # the index is in the key
    assert not set(base) & set(other)


def test_max_tokens_is_in_the_id_not_the_key():
    longer = dataclasses.replace(BASE, params=dataclasses.replace(PARAMS, max_tokens=64))
    assert keys_of(longer) == keys_of()
    key = keys_of()[0]
    assert sample_id(key, 32) != sample_id(key, 64)


def stored(rows):
    frame = pl.DataFrame(rows, schema={c: pl.Utf8 for c in ("sample_id", "sample_key", "finish_reason")})
    return frame.with_columns(
        max_tokens=pl.Series([r.get("max_tokens") for r in rows], dtype=pl.Int64),
        n_tokens=pl.Series([r.get("n_tokens") for r in rows], dtype=pl.Int64),
    )


@pytest.mark.parametrize(
    "row, budget, serves",
    [
        ({"finish_reason": "stop", "max_tokens": 32, "n_tokens": 10}, 32, True),  # same budget
        ({"finish_reason": "length", "max_tokens": 32, "n_tokens": 32}, 32, True),  # same budget, cut
        ({"finish_reason": "length", "max_tokens": 32, "n_tokens": 32}, 64, False),  # cut by a smaller one
        ({"finish_reason": "length", "max_tokens": 64, "n_tokens": 64}, 32, False),  # cut by a larger one
        ({"finish_reason": "stop", "max_tokens": 64, "n_tokens": 20}, 32, True),  # stopped within 32
        ({"finish_reason": "stop", "max_tokens": 64, "n_tokens": 40}, 32, False),  # stopped after 32
        ({"finish_reason": "stop", "max_tokens": 16, "n_tokens": 10}, 32, True),  # stopped on its own
        (
            {"finish_reason": "stop", "max_tokens": 16, "n_tokens": None},
            32,
            True,
        ),  # count unknown, budget fits
        ({"finish_reason": "stop", "max_tokens": 64, "n_tokens": None}, 32, False),  # unknown, may not fit
    ],
)
def test_which_stored_row_serves_a_key(row, budget, serves):
    frame = stored([{"sample_id": "s-1", "sample_key": "k", **row}])
    assert serving_rows(frame, budget).height == int(serves)


def test_the_row_of_the_exact_budget_wins():
    frame = stored(
        [
            {"sample_id": "s-a", "sample_key": "k", "finish_reason": "stop", "max_tokens": 16, "n_tokens": 5},
            {"sample_id": "s-b", "sample_key": "k", "finish_reason": "stop", "max_tokens": 32, "n_tokens": 5},
            {"sample_id": "s-c", "sample_key": "k", "finish_reason": "stop", "max_tokens": 24, "n_tokens": 5},
        ]
    )
    assert serving_rows(frame, 32)["sample_id"].to_list() == ["s-b"]
    assert serving_rows(frame, 48)["sample_id"].to_list() == ["s-b"]  # then the largest budget


def test_plan_asks_only_for_what_no_stored_row_serves():
    sampler = ScriptedSampler()
    setting = dataclasses.replace(BASE, model=sampler.model_id)
    plan = plan_samples(PROBLEMS, setting, pl.DataFrame(schema=validate_index_schema()))
    assert len(plan.work) == 3 * 3 and plan.serving.height == 0
    assert all(w.request.n == 1 for w in plan.work)
    first = draw_samples(plan, sampler)
    validate("samples", first)
    some = first.filter(pl.col("sample_index") < 2).select(INDEX_COLUMNS)
    again = plan_samples(PROBLEMS, setting, some)
    assert {w.index for w in again.work} == {2} and again.serving.height == some.height
    # another model's rows never serve
    foreign = plan_samples(PROBLEMS, dataclasses.replace(setting, model="other"), some)
    assert len(foreign.work) == 9 and foreign.serving.height == 0


def test_a_samples_text_depends_on_its_key_alone():
    sampler = ScriptedSampler()
    setting = dataclasses.replace(BASE, model=sampler.model_id)
    whole = sample_problems(PROBLEMS, sampler, setting)
    partial = sample_problems(
        PROBLEMS, sampler, setting, whole.filter(pl.col("sample_index") != 1).select(INDEX_COLUMNS)
    )
    assert partial.height == 3
    joined = partial.join(whole, on="sample_id")
    assert joined.height == 3 and (joined["response"] == joined["response_right"]).all()


def test_every_new_sample_is_verified():
    problems = PROBLEMS.head(1)
    a, b = json.loads(problems["meta"][0])["a"], json.loads(problems["meta"][0])["b"]
    sampler = ScriptedSampler(lambda messages, rng: f"<answer>{a * b if rng.random() < 0.5 else 0}</answer>")
    setting = dataclasses.replace(BASE, k=8, model=sampler.model_id, source="scripted")
    samples = sample_problems(problems, sampler, setting)
    assert set(samples["reason"]) == {"ok", "wrong_value"}
    assert (samples["is_correct"] == (samples["extracted_answer"] == str(a * b))).all()
    assert set(samples["source"]) == {"scripted"} and set(samples["max_tokens"]) == {32}


def validate_index_schema():
    from tracekit.schemas import polars_schema

    return {c: polars_schema("samples")[c] for c in INDEX_COLUMNS}
