"""The compiled fast path of the arithmetic evaluator agrees with the Python evaluator everywhere."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.tasks import arith
from tracekit.tasks.arith import ArithError, evaluate_python, evaluate_raw

native = pytest.mark.skipif(arith._native is None, reason="the C fast path was not built (no compiler)")


def outcome(fn, text):
    try:
        return fn(text)
    except ArithError as exc:
        return ("error", exc.reason, str(exc))


@st.composite
def expressions(draw, depth=0):
    """Expressions in the grammar, with spacing, unary minus, parentheses and big or zero literals."""
    if depth > 3 or draw(st.booleans()):
        literal = str(draw(st.one_of(st.integers(0, 20), st.integers(0, 10**12 - 1), st.just(0))))
        return draw(st.sampled_from(["", "-", "--"])) + literal
    left, right = draw(expressions(depth + 1)), draw(expressions(depth + 1))
    op = draw(st.sampled_from(["+", "-", "*", "/", " x ", "X"]))
    space = draw(st.sampled_from(["", " ", "\t", "\n"]))
    text = f"{left}{space}{op}{space}{right}"
    return f"({text})" if draw(st.booleans()) else text


@native
@settings(max_examples=1500, deadline=None)
@given(expressions())
def test_native_equals_python_on_expressions(text):
    assert outcome(evaluate_raw, text) == outcome(evaluate_python, text)


@native
@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789+-*/()xX .,=\t\n×÷−a_é")), max_size=60))
def test_native_equals_python_on_arbitrary_text(text):
    assert outcome(evaluate_raw, text) == outcome(evaluate_python, text)


@native
@pytest.mark.parametrize(
    "text",
    [
        "999999999999 * 999999999999 * 999999999999",  # past 63 bits: Python takes over
        "(" * 41 + "1" + ")" * 41,
        "-" * 41 + "1",
        "1 / (3 - 3)",
        "1" * 13,
        " + ".join(["1"] * 201),
        "",
        "   ",
        "2 3",
        "(1 + 2",
        "1 + 2)",
        "7 / -2",
        "-(3) * -(4)",
        "0 / 5",
        "12 x 3",
    ],
)
def test_native_edge_cases(text):
    assert outcome(evaluate_raw, text) == outcome(evaluate_python, text)


def test_native_fast_path_was_built_where_required():
    """CI sets TRACEKIT_REQUIRE_NATIVE=1: a broken C build must not silently fall back there."""
    if os.environ.get("TRACEKIT_REQUIRE_NATIVE") == "1":
        assert arith._native is not None
