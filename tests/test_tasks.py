import json
import random
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.errors import ConfigError, UnknownNameError
from tracekit.tasks import TASKS, check_task, get_task
from tracekit.tasks.countdown import Countdown

PROCEDURAL = ["countdown", "multiplication", "letter_countdown", "acronym"]


@pytest.mark.parametrize("name", PROCEDURAL)
def test_registry_contract(name):
    task = get_task(name)
    check_task(task)  # the library's contract check, which every task from outside the package gets
    a = task.generate(25, seed=0)
    assert a.equals(task.generate(25, seed=0)), "same seed, same problems"
    assert not a.equals(task.generate(25, seed=1))
    assert a["problem_id"].n_unique() == 25
    for row in a.iter_rows(named=True):
        meta = json.loads(row["meta"])
        assert row["task"] == name and row["seed"] == 0 and row["index"] is not None
        oracle = task.score(f"<think>working</think><answer>{row['answer']}</answer>", meta)
        assert oracle.is_correct and oracle.reason == "ok", (row, oracle)
        assert task.score("<answer> </answer>", meta).reason == "empty_answer"
        assert task.score("no tags at all", meta).reason == "no_answer"
        assert not task.score(f"<answer>{row['answer']} or 7</answer>", meta).is_correct


def test_item_depends_only_on_seed_and_index():
    task = get_task("countdown")
    whole = task.generate(30, seed=5, n_numbers=4)
    later = task.generate(10, seed=5, n_numbers=4, start=int(whole["index"][20]))
    assert later["question"].to_list() == whole["question"][20:30].to_list()


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'countdown'"):
        get_task("countdwn")
    with pytest.raises(ConfigError, match="unknown option"):
        get_task("countdown").generate(2, n_number=3)


@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_countdown_splits_are_disjoint_and_solvable(n):
    task = Countdown()
    keys = {}
    for split in ("train", "validation", "test"):
        df = task.generate(60, seed=0, split=split, n_numbers=n)
        metas = [json.loads(m) for m in df["meta"]]
        split_keys = {(tuple(sorted(m["numbers"])), m["target"]) for m in metas}
        assert len(split_keys) == 60
        keys[split] = split_keys
        for m, w in zip(metas, df["answer"]):
            assert len(m["numbers"]) == n and task.score_answer(w, m).is_correct
    assert not (
        keys["train"] & keys["validation"]
        or keys["train"] & keys["test"]
        or keys["validation"] & keys["test"]
    )


META = {"numbers": [25, 5, 3, 4], "target": 15}


@pytest.mark.parametrize(
    "answer, ok, reason",
    [
        ("(25 - 5) * 3 / 4", True, "ok"),
        ("(25 - 5) * 3 / 4 = 15", True, "ok"),
        ("(25-5)*3/4=16", False, "wrong_value"),
        ("(25 - 5) × 3 ÷ 4", True, "ok"),
        ("Step 1: 25 - 5 = 20\nStep 2: 20 * 3 = 60\nStep 3: 60 / 4 = 15", True, "ok"),
        ("Step 1: 25 - 5 = 20\nStep 2: 20 * 3 = 61\nStep 3: 61 / 4 = 15", False, "wrong_step"),
        ("Step 1: 25 - 5 = 20\nStep 2: 20 - 5 = 15", False, "wrong_numbers"),
        ("25 - 5 - 5", False, "wrong_numbers"),
        ("15", False, "target_echo"),
        ("(25 - 5) * 3 / (4 - 4)", False, "division_by_zero"),
        ("__import__('os').system('true')", False, "unparseable"),
        ("2 ** 10", False, "unparseable"),
        ("(25 - 5) * 3 / 4\n(25 - 5) * 3 / 4", False, "multiple_answers"),
        (
            "((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))",
            False,
            "too_deep",
        ),
        ("1" * 40, False, "literal_too_large"),
    ],
)
def test_countdown_verifier_cases(answer, ok, reason):
    got = Countdown().score_answer(answer, META)
    assert (got.is_correct, got.reason) == (ok, reason)


def test_require_all():
    meta = dict(META, require_all=True)
    assert Countdown().score_answer("(25 - 5) * 3 / 4", meta).is_correct
    assert (
        Countdown()
        .score_answer("25 - 5 - 5 + 0", {"numbers": [25, 5, 5, 0, 9], "target": 15, "require_all": True})
        .reason
        == "unused_numbers"
    )


def _expr(draw_rng: random.Random, numbers: list[int]) -> tuple[str, Fraction]:
    items = [(str(n), Fraction(n)) for n in numbers]
    while len(items) > 1:
        draw_rng.shuffle(items)
        (ea, va), (eb, vb) = items.pop(), items.pop()
        op = draw_rng.choice("+-*/" if vb != 0 else "+-*")
        value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else None}[op]
        items.append((f"({ea} {op} {eb})", value))
    return items[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 100), min_size=2, max_size=6), st.integers(0, 2**32), st.data())
def test_any_expression_over_the_numbers_that_hits_the_target_passes(numbers, seed, data):
    rng = random.Random(seed)
    subset = data.draw(st.lists(st.sampled_from(range(len(numbers))), min_size=2, unique=True))
    expr, value = _expr(rng, [numbers[i] for i in subset])
    if value.denominator != 1:
        return
    meta = {"numbers": numbers, "target": int(value)}
    assert Countdown().score_answer(expr, meta).is_correct or expr.strip("()") == str(int(value))
    # using a number more often than it is given always fails
    x = numbers[subset[0]]
    used = sum(numbers[i] == x for i in subset)
    reused = f"({expr}) * {x} / {x}"
    if numbers.count(x) < used + 2:
        assert Countdown().score_answer(reused, meta).reason == "wrong_numbers"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=3000) | st.from_regex(r"[0-9()+*/ -]{0,400}", fullmatch=True))
def test_hostile_strings_never_raise(text):
    for task in TASKS.values():
        meta = {
            "numbers": [1, 2, 3],
            "target": 6,
            "a": 12,
            "b": 3,
            "letters": list("abcdefg"),
            "length": 4,
            "words": ["alpha", "beta"],
            "answer": "4",
        }
        check = task.score(f"<answer>{text}</answer>", meta)
        assert isinstance(check.is_correct, bool) and check.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(" * 10_000 + "1" + ")" * 10_000, "too_long"),  # past the 2,000-character bound: never parsed
        ("9" * 5000, "too_long"),
        ("1" * 1_000_000, "too_long"),
        ("1/" * 500 + "1", "too_long"),  # under the character bound, past the token bound
        ("-" * 1000 + "1", "too_long"),
        ("1+" * 401 + "1", "too_long"),
        ("(" * 41 + "1" + ")" * 41, "too_deep"),  # nesting bound (a recursive parser's stack)
        ("9" * 13, "literal_too_large"),  # literal bound
        ("2" + "*99999999999" * 150, "value_too_large"),  # value bound, checked as it is computed
        ("٣ + ٤", "unparseable"),  # digits outside ASCII
    ],
)
def test_adversarial_inputs_are_stopped_by_their_bound(text, reason):
    """Each input is rejected by the bound made for it, before any work that grows with it (so none can be
    slow: the worst-case times are measured in benchmarks/bench_verify.py, not tested)."""
    check = Countdown().score(f"<answer>{text}</answer>", META)
    assert (check.is_correct, check.reason) == (False, reason), text[:30]


def test_multiplication_and_words():
    mult = get_task("multiplication")
    assert mult.score_answer("1,234", {"a": 1234, "b": 1}).is_correct
    assert mult.score_answer("1234.", {"a": 1234, "b": 1}).is_correct
    assert mult.score_answer("12 * 3", {"a": 12, "b": 3}).reason == "not_a_number"
    letters = get_task("letter_countdown")
    meta = {"letters": list("tacxyzo"), "length": 3}
    assert letters.score_answer("cat", meta).is_correct
    assert letters.score_answer("tact", {"letters": list("tacxyzo"), "length": 4}).reason == "wrong_letters"
    assert letters.score_answer("xat", meta).reason == "not_in_dictionary"
    acro = get_task("acronym")
    meta = {"words": ["cheese", "apple", "zebra", "tiger"], "length": 3}
    assert acro.score_answer("cat", meta).is_correct
    assert acro.score_answer("tac", meta).reason == "wrong_letters"


def test_cross_check_against_reasoning_gym():
    """Our verifier (require_all, as reasoning-gym's) against reasoning-gym's countdown scorer.

    reasoning-gym parses with sympy and compares floats with a tolerance; on these answers
    (integers, + - * / and parentheses) both must agree exactly. Known, explained
    differences are excluded up front: reasoning-gym rejects an answer that repeats a
    target echo only by value, and it accepts '=' nowhere, so answers here have no '='.
    """
    rg = pytest.importorskip("reasoning_gym.games.countdown")
    scorer = rg.CountdownDataset(rg.CountdownConfig(size=1, seed=0))
    task = Countdown()
    rng = random.Random(0)
    problems = pl.concat([task.generate(400, seed=1, n_numbers=n) for n in (3, 4, 5, 6)])
    compared = disagreements = 0
    for witness, meta_json in problems.select("answer", "meta").iter_rows():
        meta = json.loads(meta_json)
        meta["require_all"] = True
        variants = [witness]
        variants.append(witness.replace("+", "-", 1))  # usually a wrong value
        variants.append(
            witness.replace(str(meta["numbers"][0]), str(meta["numbers"][0] + 1), 1)
        )  # wrong number
        nums = meta["numbers"]
        variants.append(" + ".join(map(str, rng.sample(nums, len(nums)))))  # all numbers, some value
        for answer in variants:
            ours = task.score_answer(answer, meta).is_correct
            theirs = (
                scorer.score_answer(answer, {"metadata": {"numbers": nums, "target": meta["target"]}}) == 1.0
            )
            compared += 1
            disagreements += ours != theirs
    assert compared >= 3000
    assert disagreements == 0


def test_word_cache_is_only_a_copy(tmp_path, monkeypatch):
    """The common-words cache is used when sound, and re-made when missing or corrupt."""
    from english_words import get_english_words_set

    from tracekit.tasks import words

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    truth = tuple(
        sorted(w for w in words.dictionary() & get_english_words_set(["gcide"], lower=True) if len(w) == 5)
    )
    for damage in (None, "{not json", '["a list"]', '{"5": 7}'):
        words._common_by_length.cache_clear()
        cache = words._cache_file()
        assert cache.is_relative_to(tmp_path)
        if damage is not None:
            cache.write_text(damage)
        assert words.common_words(5) == truth
        assert json.loads(cache.read_text())["5"] == list(truth)  # (re)written whole
    words._common_by_length.cache_clear()
    cache.write_text(json.dumps({"5": ["zzzzz"]}))  # a sound cache is what generation reads
    assert words.common_words(5) == ("zzzzz",)
    words._common_by_length.cache_clear()
