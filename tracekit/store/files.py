"""Files written all or nothing, and tracekit's parquet settings (every writer uses these).

``atomic_write`` is the one way a file appears in a store or an export: it is filled under a
hidden temporary name, flushed to disk and renamed into place, so readers never see a torn file.

Temporary names are unique to the writer (``.tmp-NAME~PID@HOST~TOKEN``), so two writers never
share each other's temporaries. (Store parts and commit records are written through the
store's file system, :mod:`tracekit.store.fs`, whose temporaries prove their writer alive.)

Where a command may read or write is checked in :mod:`tracekit.places`, not here.
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


# ------------------------------------------------------------------ kept for the store's own modules
# The checks of where a command may read or write live in :mod:`tracekit.places`; the store's
# tables module still imports these two names from here (its root is checked for shape only).
from tracekit.places import check_dir_shape as check_output_dir  # noqa: E402,F401
from tracekit.places import check_writable_dir  # noqa: E402,F401
