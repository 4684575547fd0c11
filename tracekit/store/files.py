"""Files written all or nothing, and tracekit's parquet settings (every writer uses these).

``atomic_write`` is the one way a file appears in a store or an export: it is filled under a
hidden temporary name, flushed to disk and renamed into place, so readers never see a torn file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

TMP_PREFIX = ".tmp-"

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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create ``path`` all or nothing: ``write(tmp)`` fills a hidden temporary file beside it,
    which is flushed to disk and renamed into place. Readers never see a torn file."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temporary name, fsync, rename)."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))
