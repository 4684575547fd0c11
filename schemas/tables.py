"""The tables' schemas: problems, samples, reflections, traces, runs, views, evals.

Long tables keyed by stable ids (see :mod:`tracekit.ids`); list columns only where a
row really names several other rows (a trace's sample, reflection and phrase ids; the
ids a view holds).

Each schema is plain data (:data:`TABLES`: columns, dtypes, nullability, uniqueness and
checks), so reading it costs no import of pandera; the pandera models that validation
falls back to (and that write its error messages) are built from it on first use
(:func:`model`, or ``tracekit.schemas.ProblemsModel`` and the like).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tracekit.errors import SchemaError

FINISH_REASONS = ["stop", "length", "unknown"]
VERDICT_REASONS = ["ok", "missing", "unrecognized", "contradictory"]
SPLITS = ["train", "validation", "test"]
VIEW_TABLES = ["problems", "samples", "reflections", "traces"]


@dataclass(frozen=True)
class Column:
    """One column: its polars dtype, whether it may be null or must be unique, and its
    checks as pandera ``Field`` arguments (``str_length``, ``isin``, ``ge``, ``str_startswith``)."""

    name: str
    dtype: Any
    nullable: bool = False
    unique: bool = False
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    """A table: its name, what a row is, its pandera model's class name, its columns in order."""

    name: str
    doc: str
    model_name: str
    columns: tuple[Column, ...]

    @property
    def id_column(self) -> str:
        """The unique id column (each table has exactly one)."""
        (col,) = [c.name for c in self.columns if c.unique]
        return col


def _c(name, dtype, *, nullable=False, unique=False, **checks) -> Column:
    return Column(name, dtype, nullable, unique, checks)


_ID = {"str_length": {"min_value": 3}}  # ids and keys: at least three characters
_TEXT = {"str_length": {"min_value": 1}}  # not empty
_JSON = {"str_startswith": "{"}  # a JSON object
Str, Int, Bool, Ids = pl.Utf8, pl.Int64, pl.Boolean, pl.List(pl.Utf8)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "problems",
            "One verifiable problem. ``meta`` is a JSON object with the task's structured fields.",
            "ProblemsModel",
            (
                _c("problem_id", Str, unique=True, **_ID),
                _c("task", Str, **_TEXT),
                _c("question", Str, **_TEXT),
                _c("answer", Str),
                _c("split", Str, isin=SPLITS),
                _c("difficulty", Str),
                _c("seed", Int, nullable=True),
                _c("index", Int, nullable=True, ge=0),
                _c("meta", Str, **_JSON),
            ),
        ),
        TableSpec(
            "samples",
            """One model response to one problem under one prompt variant, with its verdict.

    ``sample_key`` identifies the request (problem, variant, rendered prompt, model and
    revision, sampling settings but ``max_tokens``, seed, index; an imported sample: its
    content); a sample regenerated with another ``max_tokens`` gets a new ``sample_id``
    under the same key. Which row serves a run is decided by
    :func:`tracekit.sample.serving_rows`, and the run's view names it.""",
            "SamplesModel",
            (
                _c("sample_id", Str, unique=True, **_ID),
                _c("sample_key", Str, **_ID),  # all that decides the text but max_tokens
                _c("problem_id", Str, **_ID),
                _c("prompt_variant", Str, **_TEXT),
                _c("sample_index", Int, ge=0),
                _c("model", Str),
                _c("max_tokens", Int, nullable=True, ge=1),
                _c("prompt", Str, nullable=True),
                _c("response", Str),
                _c("finish_reason", Str, isin=FINISH_REASONS),
                _c("n_tokens", Int, nullable=True, ge=0),
                _c("extracted_answer", Str, nullable=True),
                _c("is_correct", Bool),
                _c("reason", Str, **_TEXT),
                _c("source", Str, isin=["import", "generate", "scripted"]),
            ),
        ),
        TableSpec(
            "reflections",
            """One self-verification of a sample. Whether it is kept (its verdict equals the sample's
    ``is_correct``) is decided by the filter (:mod:`tracekit.filter`), not stored.""",
            "ReflectionsModel",
            (
                _c("reflection_id", Str, unique=True, **_ID),
                _c("sample_id", Str, **_ID),
                _c("problem_id", Str, **_ID),
                _c("reflection_index", Int, ge=0),
                _c("model", Str),
                _c("text", Str),
                _c("finish_reason", Str, isin=FINISH_REASONS),
                _c("verdict", Bool, nullable=True),
                _c("verdict_reason", Str, isin=VERDICT_REASONS),
            ),
        ),
        TableSpec(
            "traces",
            "One rearranged silver trace, linked to the sample, reflection and phrase ids it used.",
            "TracesModel",
            (
                _c("trace_id", Str, unique=True, **_ID),
                _c("problem_id", Str, **_ID),
                _c("format", Str, **_TEXT),
                _c("n_samples", Int, ge=1),
                _c("repeat", Int, ge=0),
                _c("prompt", Str, **_TEXT),
                _c("completion", Str, **_TEXT),
                _c("sample_ids", Ids),
                _c("reflection_ids", Ids),
                _c("phrase_ids", Ids),
                _c("final_answer", Str, nullable=True),
                _c("final_correct", Bool),
                _c("config_hash", Str, **_TEXT),
            ),
        ),
        TableSpec(
            "runs",
            "The run manifest: one row per command that wrote to the store.",
            "RunsModel",
            (
                _c("run_id", Str, unique=True, **_ID),
                _c("command", Str),
                _c("config_json", Str, **_JSON),
                _c("config_hash", Str),
                _c("tracekit_version", Str),
                _c("model", Str, nullable=True),
                _c("model_revision", Str, nullable=True),
                _c("sampling_json", Str, **_JSON),
                _c("seed", Int, nullable=True),
                _c("row_counts_json", Str, **_JSON),
                _c("drops_json", Str, **_JSON),
                _c("timings_json", Str, **_JSON),
                _c("versions_json", Str, **_JSON),
                _c("started_at", Str),
                _c("finished_at", Str),
            ),
        ),
        TableSpec(
            "views",
            """Which rows a command defines: the ids of ``table`` rows in the view of run ``run_id``.

    A view counts once its ``runs`` row exists (see :mod:`tracekit.store.views`). ``extends``:
    the rows add to the view before it (an import) instead of replacing it (a run, a
    rearrangement). A run's ids may be split over several rows.""",
            "ViewsModel",
            (
                _c("view_id", Str, unique=True, **_ID),
                _c("run_id", Str, **_ID),
                _c("table", Str, isin=VIEW_TABLES),
                _c("extends", Bool),
                _c("ids", Ids),
            ),
        ),
        TableSpec(
            "evals",
            """One scored model response to a held-out problem (``tracekit eval``).

    ``label`` names the model in result tables (several models share a store);
    ``sample_key`` is the request's resume key (as in ``samples``: prompt, model,
    sampling settings but ``max_tokens``, index), unique within (label, revision,
    condition). ``condition`` is ``base`` (one generation) or ``forced`` (budget forcing
    continued the base response ``n_forced`` times, up to ``max_tokens`` in all). The
    problem's task, difficulty, answer and verifier fields travel with every row, because
    evaluation problems are kept out of the ``problems`` table (the training problems).
    ``lineage_json`` says where the model came from (checkpoint folder, fingerprint, the
    training lineage a checkpoint carries) and which eval config made the row.""",
            "EvalsModel",
            (
                _c("eval_id", Str, unique=True, **_ID),
                _c("sample_key", Str, **_ID),
                _c("label", Str, **_TEXT),
                _c("model", Str),
                _c("model_revision", Str, nullable=True),
                _c("condition", Str, isin=["base", "forced"]),
                _c("n_forced", Int, ge=0),
                _c("problem_id", Str, **_ID),
                _c("task", Str, **_TEXT),
                _c("difficulty", Str),
                _c("answer", Str),
                _c("meta", Str, **_JSON),
                _c("sample_index", Int, ge=0),
                _c("max_tokens", Int, ge=1),
                _c("prompt", Str, str_startswith="["),
                _c("response", Str),
                _c("finish_reason", Str, isin=FINISH_REASONS),
                _c("n_tokens", Int, nullable=True, ge=0),
                _c("extracted_answer", Str, nullable=True),
                _c("is_correct", Bool),
                _c("reason", Str, **_TEXT),
                _c("config_hash", Str, **_TEXT),
                _c("lineage_json", Str, **_JSON),
            ),
        ),
    )
}

ID_COLUMNS = {name: spec.id_column for name, spec in TABLES.items()}


def _spec(table: str) -> TableSpec:
    try:
        return TABLES[table]
    except KeyError:
        from tracekit.errors import unknown_name

        raise unknown_name("table", table, list(TABLES)) from None


_SCHEMAS: dict[str, pl.Schema] = {}


def polars_schema(table: str) -> pl.Schema:
    """The exact polars schema (column order and dtypes) of ``table``."""
    if table not in _SCHEMAS:
        _SCHEMAS[table] = pl.Schema({c.name: c.dtype for c in _spec(table).columns})
    return _SCHEMAS[table]


def empty_frame(table: str) -> pl.DataFrame:
    """An empty frame with ``table``'s schema."""
    return pl.DataFrame(schema=polars_schema(table))


_MODELS: dict[str, type] = {}


def model(table: str) -> type:
    """``table``'s pandera model (a ``pandera.polars.DataFrameModel``), built from its
    :class:`TableSpec` on first use: strict (an unexpected column is an error, not silently
    carried), no coercion."""
    if table not in _MODELS:
        import pandera.polars as pa

        spec = _spec(table)
        namespace: dict[str, Any] = {"__doc__": spec.doc, "__module__": __name__, "__annotations__": {}}
        for col in spec.columns:
            kind = {pl.Utf8: str, pl.Boolean: bool}.get(col.dtype, col.dtype)
            namespace["__annotations__"][col.name] = kind | None if col.nullable else kind
            namespace[col.name] = pa.Field(nullable=col.nullable, unique=col.unique, **col.checks)
        namespace["Config"] = type("Config", (), {"name": table, "strict": True, "coerce": False})
        _MODELS[table] = type(spec.model_name, (pa.DataFrameModel,), namespace)
    return _MODELS[table]


_model = model  # (the name the schema tests use)
_BY_MODEL_NAME = {spec.model_name: name for name, spec in TABLES.items()}


def __getattr__(name: str):
    """``ProblemsModel`` and the like, and ``MODELS`` (table -> model), built on first use."""
    if name in _BY_MODEL_NAME:
        return model(_BY_MODEL_NAME[name])
    if name == "MODELS":
        return {table: model(table) for table in TABLES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    _spec(table)  # an unknown table fails here
    if _passes_compiled_checks(table, frame):
        return frame
    try:
        return model(table).validate(frame, lazy=True)
    except pe.SchemaErrors as exc:
        raise SchemaError(_describe(table, exc, source)) from None
    except pe.SchemaError as exc:  # pragma: no cover - lazy=True collects, kept for safety
        raise SchemaError(f"table {table!r}{_where(source)} failed validation: {exc}") from None


# pandera's built-in checks as polars expressions, so that a valid frame is confirmed in one
# parallel pass (pandera runs one query per check); any failure is re-checked by pandera,
# which stays the authority and writes the error message.
_COMPILED: dict[str, list[pl.Expr] | None] = {}


def _check_expr(name: str, column: str, arg) -> pl.Expr | None:
    col = pl.col(column)
    if name == "str_length" and arg.get("exact_value") is None:
        low, high = arg.get("min_value"), arg.get("max_value")
        if low == 1 and high is None:  # at least one character <=> at least one byte (cheap on long texts)
            return col.str.len_bytes() >= 1
        chars = col.str.len_chars()
        return (chars >= (low if low is not None else 0)) & (
            chars <= high if high is not None else pl.lit(True)
        )
    if name == "isin":
        return col.is_in(list(arg))
    if name == "ge":
        return col >= arg
    if name == "str_startswith":
        return col.str.starts_with(arg)
    return None  # a check this fast path does not know: pandera runs it


def _compiled_checks(table: str) -> list[pl.Expr] | None:
    if table not in _COMPILED:
        exprs: list[pl.Expr] | None = []
        for column in _spec(table).columns:
            if not column.nullable:
                exprs.append(pl.col(column.name).is_not_null().all())
            if column.unique:
                exprs.append(pl.col(column.name).n_unique() == pl.len())
            for name, arg in column.checks.items():
                expr = _check_expr(name, column.name, arg)
                if expr is None:
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
