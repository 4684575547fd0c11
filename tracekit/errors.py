"""The exceptions tracekit raises: one base class and a few precise subclasses.

Every message says what is wrong, where (table, column, row, file, line) and, when
there is one, how to fix it, on a line starting with ``Hint:``.
"""

from __future__ import annotations


class TracekitError(Exception):
    """Base class of every error tracekit raises on purpose."""


class ConfigError(TracekitError, ValueError):
    """A configuration value or file is invalid (unknown key, wrong type, bad range)."""


class SchemaError(TracekitError, ValueError):
    """A table does not match its schema; the message names table, column and failing rows."""


class StoreError(TracekitError, OSError):
    """A store file is corrupt, truncated, foreign or missing; the message names the file."""


class OutputError(TracekitError, OSError):
    """A file or folder cannot be written where the user asked (a file where a folder belongs,
    a folder where a file belongs, no permission, a read-only file system)."""


class InputFormatError(TracekitError, ValueError):
    """A user-supplied input file has the wrong layout (missing columns, wrong types)."""


class UnknownNameError(TracekitError, KeyError):
    """An unknown registry name (task, format, prompt variant, backend); suggests close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(TracekitError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class TracekitWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints ``warning: ...``)."""


def warn(msg: str) -> None:
    """Issue a :class:`TracekitWarning` (shown by the command line as one ``warning:`` line)."""
    import warnings

    warnings.warn(msg, TracekitWarning, stacklevel=2)


DID_YOU_MEAN_CUTOFF = 0.5  # how alike a known name must be to be suggested (difflib's ratio)


def close_names(name: str, known, *, n: int = 3) -> list[str]:
    """The known names most like ``name`` (case-insensitive): the one did-you-mean rule.

    >>> close_names("countdwn", ["countdown", "acronym"])
    ['countdown']
    """
    import difflib

    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=DID_YOU_MEAN_CUTOFF)
    return [lowered[c] for c in close]


def did_you_mean(name: str, known) -> str:
    """`` Did you mean 'x'?`` (or ``''``) for a sentence that names an unknown ``name``."""
    close = close_names(name, known)
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""


def unknown_name(
    kind: str, name: str, known: list[str] | tuple[str, ...], *, where: str = "", hint: str = ""
) -> UnknownNameError:
    """Build an :class:`UnknownNameError` with a did-you-mean suggestion; ``where`` prefixes
    the message (``"rearrange: "``), ``hint`` ends it.

    Examples
    --------
    >>> str(unknown_name("format", "*c_full", ["0C", "*C_full"]))
    "unknown format '*c_full'. Did you mean '*C_full'?\\nKnown: '0C', '*C_full'"
    """
    msg = f"{where}unknown {kind} {name!r}.{did_you_mean(name, known)}"
    msg += "\nKnown: " + ", ".join(repr(k) for k in known)
    return UnknownNameError(msg + (f"\nHint: {hint}" if hint else ""))


def require(module: str, extra: str):
    """Import an optional dependency or raise an error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        msg = (
            f"{module!r} is needed for this feature but is not installed.\n"
            f"Hint: pip install 'tracekit[{extra}]'"
        )
        raise MissingDependencyError(msg) from exc
