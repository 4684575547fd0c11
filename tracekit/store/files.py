"""Files written all or nothing, and tracekit's parquet settings (every writer uses these).

``atomic_write`` is the one way a file appears in a store or an export: it is filled under a
hidden temporary name, flushed to disk and renamed into place, so readers never see a torn file.

Temporary names are unique to the writer (``.tmp-NAME~PID@HOST~TOKEN``), so two writers never
share each other's temporaries. (Store parts and commit records are written through the
store's file system, :mod:`tracekit.store.fs`, whose temporaries prove their writer alive.)

Where a command may read or write is checked in :mod:`tracekit.places`, not here.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tracekit.store.fs import TMP_PREFIX, fsync_dir, fsync_file

if TYPE_CHECKING:  # polars loads where parquet is written: atomic_write alone stays light
    import polars as pl

__all__ = ["atomic_write", "atomic_write_text", "write_parquet"]

HOST = socket.gethostname() or "localhost"

ROW_GROUP_BYTES = 16 * 1024 * 1024


def row_group_rows(frame: pl.DataFrame) -> int:
    """Rows per row group: about ``ROW_GROUP_BYTES`` of data, between 1,024 and 16,384 rows.

    Bounded row groups keep every reader's unit of work small (streaming exports, buckets).
    """
    per_row = frame.estimated_size() / max(1, frame.height)
    return int(min(16_384, max(1_024, ROW_GROUP_BYTES // max(1.0, per_row))))


def write_parquet(frame: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` with tracekit's settings: zstd level 1 (fast, within a few percent of
    level 3), statistics, row groups of about 16 MB."""
    import polars as pl

    try:
        frame.write_parquet(
            path,
            compression="zstd",
            compression_level=1,
            statistics=True,
            row_group_size=row_group_rows(frame),
        )
    except pl.exceptions.PolarsError as exc:
        raise _os_error(exc, path) from exc


def sink_parquet(frame: pl.LazyFrame, path: str | os.PathLike, *, row_group_size: int = 4_096) -> None:
    """Stream ``frame`` to ``path`` (zstd level 1, statistics; flat memory, all cores).

    Row groups of 4,096 rows: about 16 MB of typical traces, so readers stream them in small steps."""
    import polars as pl

    try:
        frame.sink_parquet(
            path, compression="zstd", compression_level=1, statistics=True, row_group_size=row_group_size
        )
    except pl.exceptions.PolarsError as exc:
        raise _os_error(exc, path) from exc


def temporary_path(path: str | os.PathLike) -> Path:
    """A hidden name beside ``path`` that no other writer (process or thread) will pick.

    Examples
    --------
    >>> temporary_path("/out/train.parquet").name.startswith(".tmp-train.parquet~")
    True
    """
    path = Path(path)
    return path.with_name(f"{TMP_PREFIX}{path.name}~{os.getpid()}@{HOST}~{secrets.token_hex(6)}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create ``path`` all or nothing: ``write(tmp)`` fills a hidden temporary file beside it,
    which is flushed to disk and renamed into place. Readers never see a torn file."""
    path = Path(path)
    refuse_folder(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise _named(exc, path) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def refuse_folder(path: Path) -> None:
    """An :class:`~tracekit.errors.OutputError` when the file ``path`` is to be written over a folder
    (renaming a file onto a folder fails, and the folder may hold someone's data)."""
    if path.is_dir():
        from tracekit.errors import OutputError

        msg = f"cannot write the file {path}: a folder of that name is in the way."
        raise OutputError(msg + "\nHint: move or remove that folder, or write somewhere else (--out).")


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_OS_ERROR = re.compile(r"\((?:os error|errno) (\d+)\)", re.IGNORECASE)


def _os_error(exc: Exception, path: str | os.PathLike) -> Exception:
    """The operating-system error inside a polars error (``... (os error 28)``) as an ``OSError``
    naming ``path``; ``exc`` itself when it holds none."""
    match = _OS_ERROR.search(str(exc))
    if match is None:
        return exc
    code = int(match.group(1))
    return OSError(code, os.strerror(code), str(path))


def _named(exc: OSError, path: Path) -> OSError:
    """A disk-full ``exc`` naming ``path`` (the file being made, not its hidden temporary); other
    errors as they are."""
    if exc.errno in DISK_FULL and type(exc) is OSError:
        return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
    return exc


def disk_full_message(exc: BaseException) -> str | None:
    """The command line's message for ``exc`` when it says a disk is full (or a quota spent),
    naming the file being written; ``None`` for any other error.

    Examples
    --------
    >>> full = OSError(errno.ENOSPC, "No space left on device", "/st/samples/p.parquet")
    >>> disk_full_message(full).splitlines()[0]
    'no space left on the device holding /st/samples/p.parquet (No space left on device), so it was not written.'
    """
    if not isinstance(exc, OSError):
        return None
    text = str(exc)
    full = exc.errno in DISK_FULL or "No space left on device" in text or "Disk quota exceeded" in text
    if not full:
        return None
    path = Path(exc.filename) if exc.filename else None
    if path is not None and path.name.startswith(TMP_PREFIX):  # a staged part: name the file it becomes
        path = path.with_name(path.name[len(TMP_PREFIX) :].split("~")[0])
    where = f"the device holding {path}" if path else "the device"
    reason = exc.strerror or os.strerror(errno.ENOSPC)
    name = "it was" if exc.filename else "a file was"
    return (
        f"no space left on {where} ({reason}), so {name} not written.\nHint: free some space there, or give "
        "another --store/--out; a failed write commits nothing, so the store holds what it held before "
        "(a run resumes from its last commit)."
    )


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file atomically (temporary name, fsync, rename)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temporary name, fsync, rename)."""
    atomic_write_bytes(Path(path), text.encode("utf-8"))
