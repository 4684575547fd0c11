"""The ``tracekit`` command line (installed as ``tracekit.cli``; outside the library folder).

Each command is a few lines over the library, in the module of its group: :mod:`.build`
(``run``), :mod:`.data` (import, rearrange, export, info, schema), :mod:`.deliver` (push,
train), :mod:`.tasks` (tasks, score), :mod:`.measure` (eval, skills, report). The CLI may import both
the library and the trainer adapters; the library imports neither. Errors the library raises on purpose
print one ``error:`` line and exit with 2.
"""

from __future__ import annotations

import sys

import typer

from tracekit.errors import TracekitError


def main() -> None:
    import tracekit

    tracekit.tune_allocator()  # before polars is imported by any command
    try:
        app(standalone_mode=True)
    except TracekitError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


from tracekit.cli import build, data, deliver, measure, tasks  # noqa: E402,F401  (registers the commands)
from tracekit.cli.app import app  # noqa: E402

__all__ = ["app", "main"]
