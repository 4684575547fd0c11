"""The compiled one-pass schema checks agree with pandera, which stays the authority."""

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.errors import SchemaError
from tracekit.schemas import validate
from tracekit.schemas.tables import MODELS, _compiled_checks, _model, _passes_compiled_checks


def valid_samples(n: int = 4) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": [f"s-{i:03d}" for i in range(n)],
            "sample_key": [f"k-{i:03d}" for i in range(n)],
            "problem_id": ["p-1"] * n,
            "prompt_variant": ["plain"] * n,
            "sample_index": list(range(n)),
            "model": ["m"] * n,
            "max_tokens": [64] * n,
            "prompt": [None] * n,
            "response": ["r"] * n,
            "finish_reason": ["stop"] * n,
            "n_tokens": [3] * n,
            "extracted_answer": ["1"] * n,
            "is_correct": [True] * n,
            "reason": ["ok"] * n,
            "source": ["generate"] * n,
        },
        schema_overrides={"prompt": pl.Utf8},
    )


def pandera_accepts(table: str, frame: pl.DataFrame) -> bool:
    import pandera.errors as pe

    try:
        _model(table).validate(frame, lazy=True)
        return True
    except (pe.SchemaErrors, pe.SchemaError):
        return False


def test_every_table_compiles():
    assert all(_compiled_checks(table) is not None for table in MODELS)


# mutations: (column, value) put into row 1; None means null
MUTATIONS = [
    ("sample_id", "s-000"),
    ("sample_id", "s"),
    ("sample_id", None),
    ("sample_key", "ab"),
    ("prompt_variant", ""),
    ("sample_index", -1),
    ("max_tokens", 0),
    ("max_tokens", None),
    ("prompt", None),
    ("prompt", ""),
    ("finish_reason", "halt"),
    ("finish_reason", None),
    ("n_tokens", -5),
    ("extracted_answer", None),
    ("reason", ""),
    ("source", "other"),
    ("response", ""),
    ("model", ""),
    ("problem_id", "p-ü"),
    ("sample_key", "kéé"),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(MUTATIONS), max_size=3))
def test_compiled_checks_agree_with_pandera(mutations):
    frame = valid_samples()
    for column, value in mutations:
        values = frame[column].to_list()
        values[1] = value
        frame = frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))
    assert _passes_compiled_checks("samples", frame) == pandera_accepts("samples", frame)


def test_failures_are_explained_by_pandera():
    frame = valid_samples().with_columns(finish_reason=pl.Series(["stop", "halt", "stop", "stop"]))
    with pytest.raises(SchemaError, match="finish_reason.*rows \\[1\\]"):
        validate("samples", frame)
    # another column order or an extra column leaves the fast path; pandera decides
    reordered = valid_samples().select(list(reversed(valid_samples().columns)))
    assert not _passes_compiled_checks("samples", reordered) and validate("samples", reordered).height == 4
    with pytest.raises(SchemaError, match="unexpected"):
        validate("samples", valid_samples().with_columns(extra=pl.lit(1)))
