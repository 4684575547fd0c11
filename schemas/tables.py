"""Pandera models of the tables: problems, samples, reflections, traces, runs, views, evals.

Long tables keyed by stable ids (see :mod:`tracekit.ids`); list columns only where a
row really names several other rows (a trace's sample, reflection and phrase ids; the
ids a view holds).
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from tracekit.errors import SchemaError

FINISH_REASONS = ["stop", "length", "unknown"]
VERDICT_REASONS = ["ok", "missing", "unrecognized", "contradictory"]
SPLITS = ["train", "validation", "test"]


class ProblemsModel(pa.DataFrameModel):
    """One verifiable problem. ``meta`` is a JSON object with the task's structured fields."""

    problem_id: str = pa.Field(unique=True, str_length={"min_value": 3})
    task: str = pa.Field(str_length={"min_value": 1})
    question: str = pa.Field(str_length={"min_value": 1})
    answer: str = pa.Field()
    split: str = pa.Field(isin=SPLITS)
    difficulty: str = pa.Field()
    seed: pl.Int64 | None = pa.Field(nullable=True)
    index: pl.Int64 | None = pa.Field(nullable=True, ge=0)
    meta: str = pa.Field(str_startswith="{")

    class Config:
        name = "problems"
        strict = True  # an unexpected column is an error, not silently carried
        coerce = False


class SamplesModel(pa.DataFrameModel):
    """One model response to one problem under one prompt variant, with its verdict.

    ``sample_key`` identifies the request (problem, variant, rendered prompt, model and
    revision, sampling settings but ``max_tokens``, seed, index; an imported sample: its
    content); a sample regenerated with another ``max_tokens`` gets a new ``sample_id``
    under the same key. Which row serves a run is decided by
    :func:`tracekit.sample.serving_rows`, and the run's view names it.
    """

    sample_id: str = pa.Field(unique=True, str_length={"min_value": 3})
    sample_key: str = pa.Field(str_length={"min_value": 3})  # all that decides the text but max_tokens
    problem_id: str = pa.Field(str_length={"min_value": 3})
    prompt_variant: str = pa.Field(str_length={"min_value": 1})
    sample_index: pl.Int64 = pa.Field(ge=0)
    model: str = pa.Field()
    max_tokens: pl.Int64 | None = pa.Field(nullable=True, ge=1)
    prompt: str | None = pa.Field(nullable=True)
    response: str = pa.Field()
    finish_reason: str = pa.Field(isin=FINISH_REASONS)
    n_tokens: pl.Int64 | None = pa.Field(nullable=True, ge=0)
    extracted_answer: str | None = pa.Field(nullable=True)
    is_correct: bool = pa.Field()
    reason: str = pa.Field(str_length={"min_value": 1})
    source: str = pa.Field(isin=["import", "generate", "scripted"])

    class Config:
        name = "samples"
        strict = True  # an unexpected column is an error, not silently carried
        coerce = False


class ReflectionsModel(pa.DataFrameModel):
    """One self-verification of a sample. Whether it is kept (its verdict equals the sample's
    ``is_correct``) is decided by the filter (:mod:`tracekit.filter`), not stored."""

    reflection_id: str = pa.Field(unique=True, str_length={"min_value": 3})
    sample_id: str = pa.Field(str_length={"min_value": 3})
    problem_id: str = pa.Field(str_length={"min_value": 3})
    reflection_index: pl.Int64 = pa.Field(ge=0)
    model: str = pa.Field()
    text: str = pa.Field()
    finish_reason: str = pa.Field(isin=FINISH_REASONS)
    verdict: bool | None = pa.Field(nullable=True)
    verdict_reason: str = pa.Field(isin=VERDICT_REASONS)

    class Config:
        name = "reflections"
        strict = True  # an unexpected column is an error, not silently carried
        coerce = False


class TracesModel(pa.DataFrameModel):
    """One rearranged silver trace, linked to the sample, reflection and phrase ids it used."""

    trace_id: str = pa.Field(unique=True, str_length={"min_value": 3})
    problem_id: str = pa.Field(str_length={"min_value": 3})
    format: str = pa.Field(str_length={"min_value": 1})
    n_samples: pl.Int64 = pa.Field(ge=1)
    repeat: pl.Int64 = pa.Field(ge=0)
    prompt: str = pa.Field(str_length={"min_value": 1})
    completion: str = pa.Field(str_length={"min_value": 1})
    sample_ids: pl.List(pl.Utf8) = pa.Field()
    reflection_ids: pl.List(pl.Utf8) = pa.Field()
    phrase_ids: pl.List(pl.Utf8) = pa.Field()
    final_answer: str | None = pa.Field(nullable=True)
    final_correct: bool = pa.Field()
    config_hash: str = pa.Field(str_length={"min_value": 1})

    class Config:
        name = "traces"
        strict = True  # an unexpected column is an error, not silently carried
        coerce = False


class RunsModel(pa.DataFrameModel):
    """The run manifest: one row per command that wrote to the store."""

    run_id: str = pa.Field(unique=True, str_length={"min_value": 3})
    command: str = pa.Field()
    config_json: str = pa.Field(str_startswith="{")
    config_hash: str = pa.Field()
    tracekit_version: str = pa.Field()
    model: str | None = pa.Field(nullable=True)
    model_revision: str | None = pa.Field(nullable=True)
    sampling_json: str = pa.Field(str_startswith="{")
    seed: pl.Int64 | None = pa.Field(nullable=True)
    row_counts_json: str = pa.Field(str_startswith="{")
    drops_json: str = pa.Field(str_startswith="{")
    timings_json: str = pa.Field(str_startswith="{")
    versions_json: str = pa.Field(str_startswith="{")
    started_at: str = pa.Field()
    finished_at: str = pa.Field()

    class Config:
        name = "runs"
        strict = True  # an unexpected column is an error, not silently carried
        coerce = False


VIEW_TABLES = ["problems", "samples", "reflections", "traces"]


class ViewsModel(pa.DataFrameModel):
    """Which rows a command defines: the ids of ``table`` rows in the view of run ``run_id``.

    A view counts once its ``runs`` row exists (see :mod:`tracekit.store.views`). ``extends``:
    the rows add to the view before it (an import) instead of replacing it (a run, a
    rearrangement). A run's ids may be split over several rows.
    """

    view_id: str = pa.Field(unique=True, str_length={"min_value": 3})
    run_id: str = pa.Field(str_length={"min_value": 3})
    table: str = pa.Field(isin=VIEW_TABLES)
    extends: bool = pa.Field()
    ids: pl.List(pl.Utf8) = pa.Field()

    class Config:
        name = "views"
        strict = True  # an unexpected column is an error, not silently carried
        coerce = False


class EvalsModel(pa.DataFrameModel):
    """One scored model response to a held-out problem (``tracekit eval``).

    ``label`` names the model in result tables (several models share a store);
    ``sample_key`` is the request's resume key (as in ``samples``: prompt, model,
    sampling settings but ``max_tokens``, index), unique within (label, revision,
    condition). ``condition`` is ``base`` (one generation) or ``forced`` (budget forcing
    continued the base response ``n_forced`` times, up to ``max_tokens`` in all). The
    problem's task, difficulty, answer and verifier fields travel with every row, because
    evaluation problems are kept out of the ``problems`` table (the training problems).
    ``lineage_json`` says where the model came from (checkpoint folder, fingerprint, the
    training lineage a checkpoint carries) and which eval config made the row.
    """

    eval_id: str = pa.Field(unique=True, str_length={"min_value": 3})
    sample_key: str = pa.Field(str_length={"min_value": 3})
    label: str = pa.Field(str_length={"min_value": 1})
    model: str = pa.Field()
    model_revision: str | None = pa.Field(nullable=True)
    condition: str = pa.Field(isin=["base", "forced"])
    n_forced: pl.Int64 = pa.Field(ge=0)
    problem_id: str = pa.Field(str_length={"min_value": 3})
    task: str = pa.Field(str_length={"min_value": 1})
    difficulty: str = pa.Field()
    answer: str = pa.Field()
    meta: str = pa.Field(str_startswith="{")
    sample_index: pl.Int64 = pa.Field(ge=0)
    max_tokens: pl.Int64 = pa.Field(ge=1)
    prompt: str = pa.Field(str_startswith="[")
    response: str = pa.Field()
    finish_reason: str = pa.Field(isin=FINISH_REASONS)
    n_tokens: pl.Int64 | None = pa.Field(nullable=True, ge=0)
    extracted_answer: str | None = pa.Field(nullable=True)
    is_correct: bool = pa.Field()
    reason: str = pa.Field(str_length={"min_value": 1})
    config_hash: str = pa.Field(str_length={"min_value": 1})
    lineage_json: str = pa.Field(str_startswith="{")

    class Config:
        name = "evals"
        strict = True  # an unexpected column is an error, not silently carried
        coerce = False


MODELS: dict[str, type[pa.DataFrameModel]] = {
    "problems": ProblemsModel,
    "samples": SamplesModel,
    "reflections": ReflectionsModel,
    "traces": TracesModel,
    "runs": RunsModel,
    "views": ViewsModel,
    "evals": EvalsModel,
}

ID_COLUMNS = {
    "problems": "problem_id",
    "samples": "sample_id",
    "reflections": "reflection_id",
    "traces": "trace_id",
    "runs": "run_id",
    "views": "view_id",
    "evals": "eval_id",
}

_PY_TO_POLARS = {str: pl.Utf8, bool: pl.Boolean, int: pl.Int64, float: pl.Float64}


def polars_schema(table: str) -> pl.Schema:
    """The exact polars schema (column order and dtypes) of ``table``."""
    model = _model(table)
    out: dict[str, pl.DataType] = {}
    for name, column in model.to_schema().columns.items():
        dtype = column.dtype.type
        out[name] = _PY_TO_POLARS.get(dtype, dtype)
    return pl.Schema(out)


def empty_frame(table: str) -> pl.DataFrame:
    """An empty frame with ``table``'s schema."""
    return pl.DataFrame(schema=polars_schema(table))


def _model(table: str) -> type[pa.DataFrameModel]:
    from tracekit.errors import unknown_name

    try:
        return MODELS[table]
    except KeyError:
        raise unknown_name("table", table, list(MODELS)) from None


def validate(table: str, frame: pl.DataFrame, *, source: str | None = None) -> pl.DataFrame:
    """Validate ``frame`` against ``table``'s schema and return it.

    Raises :class:`~tracekit.errors.SchemaError` naming the table, each failing
    column and its first failing rows (``source`` names the file, if any).

    Examples
    --------
    >>> import polars as pl
    >>> validate("problems", pl.DataFrame({"problem_id": ["p-1"]}))
    Traceback (most recent call last):
    ...
    tracekit.errors.SchemaError: table 'problems' failed validation:
      - missing column(s): ['task', 'question', 'answer', 'split', 'difficulty', 'meta']
    Hint: ...
    """
    import pandera.errors as pe

    model = _model(table)
    if _passes_compiled_checks(table, frame):
        return frame
    try:
        return model.validate(frame, lazy=True)
    except pe.SchemaErrors as exc:
        raise SchemaError(_describe(table, exc, source)) from None
    except pe.SchemaError as exc:  # pragma: no cover - lazy=True collects, kept for safety
        raise SchemaError(f"table {table!r}{_where(source)} failed validation: {exc}") from None


# pandera's built-in checks as polars expressions, so that a valid frame is confirmed in one
# parallel pass (pandera runs one query per check); any failure is re-checked by pandera,
# which stays the authority and writes the error message.
_COMPILED: dict[str, list[pl.Expr] | None] = {}


def _check_expr(name: str, column: str, stats: dict) -> pl.Expr | None:
    col = pl.col(column)
    if name == "str_length" and stats.get("exact_value") is None:
        low, high = stats.get("min_value"), stats.get("max_value")
        if low == 1 and high is None:  # at least one character <=> at least one byte (cheap on long texts)
            return col.str.len_bytes() >= 1
        chars = col.str.len_chars()
        return (chars >= (low if low is not None else 0)) & (
            chars <= high if high is not None else pl.lit(True)
        )
    if name == "isin":
        return col.is_in(list(stats["allowed_values"]))
    if name == "greater_than_or_equal_to":
        return col >= stats["min_value"]
    if name == "str_startswith":
        return col.str.starts_with(stats["string"])
    return None  # a check this fast path does not know: pandera runs it


def _compiled_checks(table: str) -> list[pl.Expr] | None:
    if table not in _COMPILED:
        schema = _model(table).to_schema()
        exprs: list[pl.Expr] | None = []
        for column, spec in schema.columns.items():
            if not spec.nullable:
                exprs.append(pl.col(column).is_not_null().all())
            if spec.unique:
                exprs.append(pl.col(column).n_unique() == pl.len())
            for check in spec.checks:
                expr = _check_expr(check.name, column, check.statistics or {})
                if expr is None or getattr(check, "ignore_na", True) is not True:
                    exprs = None
                    break
                exprs.append(expr.fill_null(True).all())
            if exprs is None:
                break
        _COMPILED[table] = exprs
    return _COMPILED[table]


def _passes_compiled_checks(table: str, frame: pl.DataFrame) -> bool:
    """True when ``frame`` certainly passes ``table``'s schema (exact columns, dtypes and checks)."""
    exprs = _compiled_checks(table)
    if exprs is None or not isinstance(frame, pl.DataFrame) or frame.schema != polars_schema(table):
        return False
    if frame.height == 0:
        return True
    return all(frame.select([e.alias(f"c{i}") for i, e in enumerate(exprs)]).row(0))


def _where(source: str | None) -> str:
    return f" (file {source})" if source else ""


def _describe(table: str, exc, source: str | None, max_rows: int = 5) -> str:
    lines = [f"table {table!r}{_where(source)} failed validation:"]
    cases = exc.failure_cases
    if isinstance(cases, pl.DataFrame) and cases.height:
        for (column, check), group in cases.group_by(["column", "check"], maintain_order=True):
            names = [str(v) for v in group["failure_case"].to_list()]
            if check == "column_in_dataframe":
                lines.append(f"  - missing column(s): {names}")
                continue
            if check == "column_in_schema":
                lines.append(f"  - unexpected column(s): {names}")
                continue
            rows = [r for r in group["index"].to_list() if r is not None][:max_rows]
            values = [str(v)[:60] for v in group["failure_case"].to_list()[:max_rows]]
            where = f" at rows {rows}" if rows else ""
            lines.append(
                f"  - column {column!r}: check {check!r} failed{where}; "
                f"{group.height} failing value(s), first: {values}"
            )
    else:
        for err in exc.schema_errors:
            lines.append(f"  - {err}")
    lines.append(f"Hint: see `tracekit schema {table}` for the expected columns and types.")
    return "\n".join(lines)
