"""The ``tracekit`` Typer app and the options every command shares."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Build SkillFactory-style silver reasoning traces: sample, verify, self-verify, rearrange, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StoreOpt = typer.Option(..., "--store", "-s", help="Store directory (a folder of parquet tables).")


def split_values(values: list[str] | None) -> list[str]:
    """Values of a repeatable option, each of which may also be comma-separated."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out
