"""Schemas of tracekit's tables, as plain data with pandera models built from them.

Installed as ``tracekit.schemas``. :data:`TABLES` holds each table's columns (dtypes,
nullability, uniqueness, checks); :func:`validate` checks a frame against its table's
schema and raises :class:`tracekit.errors.SchemaError` naming the table, the column and
the first failing rows. The pandera models (``ProblemsModel``, ``SamplesModel``, ...,
:func:`model`) are built on first use, so importing this package does not import pandera.
"""

from tracekit.schemas.tables import (
    ID_COLUMNS,
    TABLES,
    Column,
    TableSpec,
    empty_frame,
    model,
    polars_schema,
    validate,
)

_LAZY = (
    "MODELS",
    "EvalsModel",
    "ProblemsModel",
    "ReflectionsModel",
    "RunsModel",
    "SamplesModel",
    "TracesModel",
    "ViewsModel",
)


def __getattr__(name: str):
    if name in _LAZY:
        from tracekit.schemas import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ID_COLUMNS",
    "TABLES",
    "Column",
    "TableSpec",
    "empty_frame",
    "model",
    "polars_schema",
    "validate",
]
