"""The vectorised planner and layout give exactly the traces of the readable specification.

``tests/trace_spec.py`` builds traces one problem and one trace at a time in plain Python;
here hypothesis draws random pools and settings (every format, both layouts) and checks
that :func:`tracekit.rearrange.rearrange_pool` returns the same rows.
"""

from __future__ import annotations

import trace_spec as spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.rearrange import FORMATS, RearrangeConfig, rearrange_pool
from tracekit.rearrange.phrases import BANKS, PhraseBank

BANK = PhraseBank(
    phrases={name: tuple(f"{name} {i}." for i in range(1 + len(name) % 4)) for name in BANKS},
    digest="test-bank",
    source="test",
)
COLUMNS = [
    "trace_id",
    "problem_id",
    "format",
    "n_samples",
    "repeat",
    "sample_ids",
    "reflection_ids",
    "phrase_ids",
    "completion",
    "final_answer",
    "final_correct",
]


@st.composite
def problems(draw) -> list[spec.Problem]:
    out = []
    for p in range(draw(st.integers(1, 5))):
        samples = []
        for i in range(draw(st.integers(1, 9))):
            correct = draw(st.booleans())
            samples.append(
                spec.Sample(
                    sample_id=f"s-{p}-{i}",
                    variant=draw(st.sampled_from("abcd")),
                    correct=correct,
                    answer=None if not correct and draw(st.booleans()) else f"ans {p}.{i}",
                    response=f"response {p}.{i}" + draw(st.sampled_from(["", "\n<answer>x</answer>", " é"])),
                    reflections=[
                        (f"r-{p}-{i}-{k}", f"check {p}.{i}.{k}") for k in range(draw(st.integers(1, 3)))
                    ],
                )
            )
        if not any(s.correct for s in samples):  # the filter keeps problems with a correct sample only
            samples[0].correct, samples[0].answer = True, f"ans {p}.0"
        samples.sort(key=lambda s: (s.variant, s.sample_id))
        out.append(spec.Problem(f"p-{p}", samples))
    return out


@st.composite
def configs(draw) -> RearrangeConfig:
    formats = draw(st.lists(st.sampled_from(list(FORMATS)), min_size=1, max_size=4, unique=True))
    two = {"*C*IC", "*CC"} & set(formats)
    return RearrangeConfig(
        formats=tuple(formats),
        n_max=draw(st.integers(2 if two else 1, 5)),
        repeats=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**31)),
        layout=draw(st.sampled_from(["tracekit", "reference"])),
        draw_n=draw(st.booleans()),
        unique_variants=draw(st.booleans()),
        min_samples=draw(st.one_of(st.none(), st.integers(1, 4))),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), configs())
def test_vectorised_traces_equal_the_specification(problems, cfg):
    got = rearrange_pool(*spec.inputs(problems), cfg, BANK).select(COLUMNS).to_dicts()
    assert got == spec.build(problems, cfg, BANK, cfg.digest(BANK))


def test_the_specification_covers_every_format_and_layout():
    """A fixed pool where every format builds traces in both layouts (so the property test is not vacuous)."""
    variants = "aabbccdd"
    problem = spec.Problem(
        "p-0",
        [
            spec.Sample(f"s-{i}", variants[i], i % 3 != 1, f"a{i}", f"r{i}", [(f"r-{i}", f"f{i}")])
            for i in range(8)
        ],
    )
    for layout in ("tracekit", "reference"):
        cfg = RearrangeConfig(formats=tuple(FORMATS), n_max=3, layout=layout)
        want = spec.build([problem], cfg, BANK, cfg.digest(BANK))
        assert {row["format"] for row in want} == set(FORMATS)
        assert rearrange_pool(*spec.inputs([problem]), cfg, BANK).select(COLUMNS).to_dicts() == want


def test_repeats_stop_where_distinct_traces_run_out():
    """Repeats beyond a pool's distinct traces are dropped (and the drawing stops), in the
    specification and in the vectorised stage alike, across several groups of repeats."""
    from collections import Counter

    small = spec.Problem(
        "p-small",
        [spec.Sample(f"s-{i}", "ab"[i], i == 0, f"a{i}", f"r{i}", [(f"r-{i}", f"f{i}")]) for i in range(2)],
    )
    big = spec.Problem(
        "p-big",
        [
            spec.Sample(f"t-{i}", "abcd"[i % 4], i % 2 == 0, f"b{i}", f"q{i}", [(f"x-{i}", f"g{i}")])
            for i in range(8)
        ],
    )
    cfg = RearrangeConfig(formats=("*C_full", "star"), n_max=2, repeats=40, min_samples=1)
    want = spec.build([small, big], cfg, BANK, cfg.digest(BANK))
    drops = Counter()
    got = rearrange_pool(*spec.inputs([small, big]), cfg, BANK, drops=drops).select(COLUMNS).to_dicts()
    assert got == want
    per = Counter((row["problem_id"], row["format"]) for row in got)
    # p-small: one correct sample; *C_full shows it alone (N=1) or after the wrong one (N=2): 2 traces
    assert per[("p-small", "*C_full")] == 2 and per[("p-small", "star")] == 1 and per[("p-big", "star")] == 4
    assert 2 < per[("p-big", "*C_full")] < 40 * 2  # more distinct traces, still far fewer than 40 x 2
    shown = [(r["sample_ids"], r["reflection_ids"]) for r in got if r["problem_id"] == "p-big"]
    assert len(shown) == len({(tuple(s), tuple(r)) for s, r in shown})
    assert drops["traces/*C_full:repeat_duplicate"] > 0 and drops["built/star"] == 5
