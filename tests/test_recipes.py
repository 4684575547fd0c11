"""Each recipe gives the format mix and the counts its definition implies, on a small store."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from tracekit.errors import UnknownNameError
from tracekit.rearrange import RECIPES, RearrangeConfig, rearrange_store

VARIANTS = ("plain", "plan", "alternatives", "rephrase")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tracekit.reference import import_skillfactory, synthetic_raw
    from tracekit.store import Store

    tmp = tmp_path_factory.mktemp("recipes")
    raw = synthetic_raw(24, variants=VARIANTS, samples_per_variant=7, response_chars=120, reflection_chars=90)
    raw.write_parquet(tmp / "raw.parquet")
    st = Store(tmp / "st", create=True)
    import_skillfactory(tmp / "raw.parquet", st)
    return st


def surviving(store) -> dict[str, list[tuple[str, str, bool]]]:
    """Per problem, its samples with a reflection whose verdict equals the truth: (id, variant, correct)."""
    samples = store.read("samples")
    reflections = store.read("reflections")
    truth = dict(zip(samples["sample_id"], samples["is_correct"]))
    agreed = {
        s
        for s, v, why in zip(reflections["sample_id"], reflections["verdict"], reflections["verdict_reason"])
        if why == "ok" and v == truth[s]
    }
    out = defaultdict(list)
    for sid, pid, variant, correct in samples.select(
        "sample_id", "problem_id", "prompt_variant", "is_correct"
    ).iter_rows():
        if sid in agreed:
            out[pid].append((sid, variant, correct))
    return out


def traces_of(store, recipe, **fields):
    stats = rearrange_store(store, RearrangeConfig(recipe=recipe, **fields), replace=True)
    traces = store.read("traces")
    assert stats["traces/written"] == traces.height
    return traces


def usable(pools: dict, need: int) -> set[str]:
    return {p for p, rows in pools.items() if len(rows) >= need and any(c for _, _, c in rows)}


@pytest.mark.parametrize(
    ("recipe", "fmt"),
    [("skillfactory", "*C_full"), ("no-sample-order", "random"), ("no-reflections", "no_reflection")],
)
def test_star_c_full_recipes(store, recipe, fmt):
    problems = usable(surviving(store), 5)
    traces = traces_of(store, recipe)
    assert problems and set(traces["format"]) == {fmt}
    assert traces.height == 5 * len(problems)
    per_problem = traces.group_by("problem_id").agg("n_samples")
    assert {p: sorted(ns) for p, ns in per_problem.iter_rows()} == {p: [1, 2, 3, 4, 5] for p in problems}
    n_reflections = traces["reflection_ids"].list.len()
    assert (n_reflections == (0 if fmt == "no_reflection" else traces["n_samples"])).all()


def test_no_prompt_diversity_uses_one_variant(store):
    plain = {p: [r for r in rows if r[1] == "plain"] for p, rows in surviving(store).items()}
    traces = traces_of(store, "no-prompt-diversity")
    variant = dict(zip(*store.read("samples").select("sample_id", "prompt_variant")))
    assert {variant[s] for sids in traces["sample_ids"] for s in sids} == {"plain"}
    assert set(traces["format"]) == {"*C_full"} and traces.height == 5 * len(usable(plain, 5))
    # a recipe's field can be overridden: the same ablation from another single variant
    traces = traces_of(store, "no-prompt-diversity", variants=("rephrase",))
    assert {variant[s] for sids in traces["sample_ids"] for s in sids} == {"rephrase"}


def test_star_recipe_is_every_surviving_correct_sample_alone(store):
    pools = surviving(store)
    traces = traces_of(store, "star")
    assert set(traces["format"]) == {"star"} and (traces["n_samples"] == 1).all()
    assert (traces["reflection_ids"].list.len() == 0).all() and traces["final_correct"].all()
    want = Counter(sid for rows in pools.values() for sid, _, correct in rows if correct)
    assert Counter(s for sids in traces["sample_ids"] for s in sids) == want


def test_recipes_set_fields_you_leave_at_default():
    assert RearrangeConfig(recipe="no-reflections").formats == ("no_reflection",)
    mine = RearrangeConfig(recipe="skillfactory", n_max=3)
    assert (mine.formats, mine.n_max) == (("*C_full",), 3)
    assert set(RECIPES) == {
        "skillfactory",
        "no-sample-order",
        "no-reflections",
        "no-prompt-diversity",
        "star",
    }
    with pytest.raises(UnknownNameError, match="Did you mean 'no-reflections'"):
        RearrangeConfig(recipe="no-reflection")


def test_a_variant_the_store_lacks_is_an_error(filled_store):
    with pytest.raises(UnknownNameError, match="(?s)prompt variant .plain.*.original."):
        rearrange_store(filled_store, RearrangeConfig(recipe="no-prompt-diversity"))
