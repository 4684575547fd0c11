"""Schemas of tracekit's tables (pandera models over polars frames).

Installed as ``tracekit.schemas``. :func:`validate` checks a frame against its table's
model and raises :class:`tracekit.errors.SchemaError` naming the table, the column and
the first failing rows.
"""

from tracekit.schemas.tables import (
    ID_COLUMNS,
    MODELS,
    EvalsModel,
    ProblemsModel,
    ReflectionsModel,
    RunsModel,
    SamplesModel,
    TracesModel,
    ViewsModel,
    empty_frame,
    polars_schema,
    validate,
)

__all__ = [
    "MODELS",
    "ID_COLUMNS",
    "EvalsModel",
    "ProblemsModel",
    "ReflectionsModel",
    "RunsModel",
    "SamplesModel",
    "TracesModel",
    "ViewsModel",
    "empty_frame",
    "polars_schema",
    "validate",
]
