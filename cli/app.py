"""The ``tracekit`` Typer app and the options every command shares."""

from __future__ import annotations

import typer
import typer.core


def _flag_shows_no_type(display_type_rich):
    """Typer's help prints a type after every option, ``<bool>`` after flags too (``--replace
    <bool>``, ``--help <bool>``), which reads as if the flag took a value: flags show none."""

    def display(self, ctx):
        return None if getattr(self, "is_flag", False) else display_type_rich(self, ctx)

    return display


typer.core.TyperOption.display_type_rich = _flag_shows_no_type(typer.core.TyperOption.display_type_rich)

app = typer.Typer(
    help="Build SkillFactory-style silver reasoning traces: sample, verify, self-verify, rearrange, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help is plain text: `pip install 'tracekit[train]'` keeps its brackets
)

StoreOpt = typer.Option(
    ..., "--store", "-s", help="The store: a folder, or s3://bucket/prefix (see docs/object-store.md)."
)


def split_values(values: list[str] | None) -> list[str]:
    """Values of a repeatable option, each of which may also be comma-separated."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out
