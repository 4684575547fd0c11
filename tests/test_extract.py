import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.extract import all_answers, final_answer, parse_verdict, parse_verdicts


def test_final_answer_is_last_after_think():
    text = (
        "<think><sample><answer>1</answer></sample>\n</think>\nSo <answer>2</answer> and <answer> 3 </answer>"
    )
    assert final_answer(text) == "3"
    assert all_answers(text) == ["1", "2", "3"]


def test_answer_only_inside_think_does_not_count():
    assert final_answer("<think><answer>5</answer></think> nothing") is None


def test_unclosed_answer_is_no_answer():
    assert final_answer("<answer>42") is None
    assert final_answer("") is None and final_answer(None) is None


def test_verdict_cases():
    assert parse_verdict("<verdict>Correct</verdict>").value is True
    assert parse_verdict("<VERDICT>\n  incorrect \n</VERDICT>").value is False
    assert parse_verdict("text <verdict>**Correct**: all good").value is True
    assert parse_verdict("<verdict>Incorrect</verdict").value is False  # garbled closing tag
    assert parse_verdict("<verdict>Correct</verdict><verdict>Incorrect</verdict>").reason == "contradictory"
    assert parse_verdict("<verdict>Correct</verdict><verdict>correct</verdict>").value is True
    assert parse_verdict("looks correct").reason == "missing"
    assert parse_verdict("<verdict>maybe</verdict>").reason == "unrecognized"
    assert parse_verdict("<verdict></verdict>").reason == "unrecognized"


_alphabet = st.sampled_from(
    [
        "<verdict>",
        "</verdict>",
        "< VERDICT >",
        "Correct",
        "incorrect",
        "INCORRECT",
        "not",
        " ",
        "\n",
        "*",
        "x",
        "é",
        "İ",
        "\u2028",
        ":",
        "<",
        ">",
        "verdict",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_alphabet, max_size=12).map("".join), min_size=1, max_size=8))
def test_vectorised_verdicts_match_python(texts):
    frame = parse_verdicts(pl.Series(texts, dtype=pl.Utf8))
    for text, (value, reason) in zip(texts, frame.iter_rows()):
        expected = parse_verdict(text)
        assert (value, reason) == (expected.value, expected.reason), text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_extraction_never_raises(text):
    final_answer(text)
    all_answers(text)
    parse_verdict(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("oraAndOR ;|12+x\u212aé\u0130")), max_size=20))
def test_multiple_candidates_guard_equals_its_regex(text):
    from tracekit.tasks.base import _MULTI_RE, several_candidates

    assert several_candidates(text) == (_MULTI_RE.search(text) is not None)
