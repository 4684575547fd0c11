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


def listed(values: list[str] | None, option: str) -> list[str] | None:
    """The names given to the repeatable option ``option`` (:func:`split_values`), or ``None`` when
    it was not given; given with no name in it (``--formats ''``, ``--variants ','``) is an error,
    not the default."""
    if values is None:
        return None
    names = split_values(values)
    if not names:
        from tracekit.errors import ConfigError

        msg = f"{option} was given {', '.join(map(repr, values))}, which names nothing."
        raise ConfigError(
            msg + f"\nHint: name at least one (comma-separated), or leave {option} out for the default."
        )
    return names


def at_least(value: int | None, option: str, low: int, example: str) -> int | None:
    """``value`` of the integer option ``option``, refused (an error, before any work) below ``low``."""
    if value is not None and value < low:
        from tracekit.errors import ConfigError

        msg = f"{option} must be >= {low}, got {value}."
        raise ConfigError(msg + f"\nHint: e.g. {option} {example}.")
    return value
