"""Files written all or nothing, and tracekit's parquet settings (every writer uses these).

``atomic_write`` is the one way a file appears in a store or an export: it is filled under a
hidden temporary name, flushed to disk and renamed into place, so readers never see a torn file.

Temporary names are unique to the writer (``.tmp-NAME~PID@HOST~TOKEN``), so two writers never
share each other's temporaries. (Store parts and commit records are written through the
store's file system, :mod:`tracekit.store.fs`, whose temporaries prove their writer alive.)

``check_output_dir``, ``check_output_file`` and ``check_input_file`` say, before any work is
done, whether a command can write (or read) where the user pointed it: a file where a folder
belongs, a folder under a file, a read-only or otherwise unwritable folder are errors that
name the path, and nothing is created to find out.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import polars as pl

from tracekit.store.fs import TMP_PREFIX, file_digest, fsync_dir, fsync_file

__all__ = ["file_digest", "fsync_dir", "fsync_file", "atomic_write", "atomic_write_text", "write_parquet"]

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
    frame.write_parquet(
        path, compression="zstd", compression_level=1, statistics=True, row_group_size=row_group_rows(frame)
    )


def sink_parquet(frame: pl.LazyFrame, path: str | os.PathLike, *, row_group_size: int = 4_096) -> None:
    """Stream ``frame`` to ``path`` (zstd level 1, statistics; flat memory, all cores).

    Row groups of 4,096 rows: about 16 MB of typical traces, so readers stream them in small steps."""
    frame.sink_parquet(
        path, compression="zstd", compression_level=1, statistics=True, row_group_size=row_group_size
    )


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
    tmp = temporary_path(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file atomically (temporary name, fsync, rename)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temporary name, fsync, rename)."""
    atomic_write_bytes(Path(path), text.encode("utf-8"))


# ------------------------------------------------------------------ where a command may write
def _first_file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_writable_dir(folder: str | os.PathLike, what: str) -> None:
    """Raise :class:`~tracekit.errors.OutputError` unless new files can be created in ``folder``
    (an existing folder): one hidden temporary file is created and removed. Root ignores file
    modes, so only an attempt tells (a read-only file system, a full disk, a permission)."""
    from tracekit.errors import OutputError

    probe = temporary_path(Path(folder) / "probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        msg = (
            f"{what}: cannot create files in {folder}: {exc.strerror or exc}.\n"
            "Hint: make the folder writable (or not read-only), or name another one."
        )
        raise OutputError(msg) from None
    os.close(fd)
    os.unlink(probe)


def check_output_dir(path: str | os.PathLike, what: str) -> Path:
    """Check that ``path`` can be an output folder (it exists as a writable folder, or can be
    created): nothing is created. Raises :class:`~tracekit.errors.OutputError`."""
    from tracekit.errors import OutputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"{what} {path} is a file, not a folder.\nHint: name a folder (it is created when missing)."
        raise OutputError(msg)
    blocker = _first_file_above(path)
    if blocker is not None:
        msg = f"{what} {path}: {blocker} is a file, so no folder can be made under it.\nHint: name another folder."
        raise OutputError(msg)
    existing = next(p for p in (path, *path.parents) if p.exists())
    check_writable_dir(existing, what)
    return path


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """Check that ``path`` can be written as a file (an existing file is replaced): its folder
    exists and is writable, and ``path`` is not a folder. Raises :class:`~tracekit.errors.OutputError`."""
    from tracekit.errors import OutputError

    path = Path(path)
    if path.is_dir():
        msg = (
            f"{what} {path} is a folder, not a file.\nHint: name a file inside it, e.g. {path / 'out.jsonl'}."
        )
        raise OutputError(msg)
    blocker = _first_file_above(path)
    if blocker is not None:
        msg = f"{what} {path}: {blocker} is a file, not a folder.\nHint: name a file in an existing folder."
        raise OutputError(msg)
    if not path.parent.is_dir():
        msg = f"{what} {path}: the folder {path.parent} does not exist.\nHint: create it first."
        raise OutputError(msg)
    check_writable_dir(path.parent, what)
    return path


def check_input_file(path: str | os.PathLike, what: str, hint: str) -> Path:
    """``path`` as a :class:`Path` when it is an existing file; else an
    :class:`~tracekit.errors.InputFormatError` saying what it is instead."""
    from tracekit.errors import InputFormatError

    path = Path(path)
    if path.is_dir():
        raise InputFormatError(f"{what} {path} is a folder, not a file.\nHint: {hint}")
    if not path.exists():
        raise InputFormatError(f"{what} {path} does not exist.\nHint: {hint}")
    return path
