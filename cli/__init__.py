"""The ``tracekit`` command line (installed as ``tracekit.cli``; outside the library folder).

Each command is a few lines over the library, in the module of its group: :mod:`.build`
(``run``), :mod:`.data` (import, rearrange, export, info, schema), :mod:`.deliver` (push,
train), :mod:`.tasks` (tasks, score), :mod:`.measure` (eval, skills, report). The CLI may import both
the library and the trainer adapters; the library imports neither. Errors the library raises on purpose
print one ``error:`` line and exit with 2, as does a full disk (``ENOSPC``, ``EDQUOT``); its
warnings (:class:`~tracekit.errors.TracekitWarning`) print one ``warning:`` line each.
"""

from __future__ import annotations

import sys
import warnings

import typer

from tracekit.errors import TracekitError, TracekitWarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, TracekitWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        warnings._showwarnmsg_impl(warnings.WarningMessage(message, category, filename, lineno, file, line))


def main() -> None:
    import tracekit

    tracekit.tune_allocator()  # before polars is imported by any command
    with warnings.catch_warnings():  # restores the warning settings afterwards (tests call main() often)
        warnings.simplefilter("always", TracekitWarning)
        warnings.showwarning = _show_warning
        try:
            app(standalone_mode=True)
        except TracekitError as exc:
            typer.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:  # a full disk is the machine's state, not a bug: one line, like bad input
            from tracekit.store.files import disk_full_message

            msg = disk_full_message(exc)
            if msg is None:
                raise
            typer.echo(f"error: {msg}", err=True)
            sys.exit(2)


from tracekit.cli import build, data, deliver, measure, tasks  # noqa: E402,F401  (registers the commands)
from tracekit.cli.app import app  # noqa: E402

__all__ = ["app", "main"]
