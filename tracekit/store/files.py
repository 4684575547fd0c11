"""Files written all or nothing, and tracekit's parquet settings (every writer uses these).

``atomic_write`` is the one way a file appears in a store or an export: it is filled under a
hidden temporary name, flushed to disk and renamed into place, so readers never see a torn file.

Temporary names are unique to the writer (``.tmp-NAME~PID@HOST~TOKEN``), so two writers never
share or delete each other's temporaries; :func:`is_stale_temporary` tells a leftover of a dead
writer (same host, process gone) from one still being written.

Where a command may read or write is checked in :mod:`tracekit.places`, not here.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import polars as pl
import xxhash

TMP_PREFIX = ".tmp-"
_TMP_RE = re.compile(r"^\.tmp-.*~(\d+)@([^~/]+)~[0-9a-f]+$")
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
    >>> temporary_path("/st/samples/part-x.parquet").name.startswith(".tmp-part-x.parquet~")
    True
    """
    path = Path(path)
    return path.with_name(f"{TMP_PREFIX}{path.name}~{os.getpid()}@{HOST}~{secrets.token_hex(6)}")


def is_stale_temporary(path: Path) -> bool:
    """True when ``path`` is a temporary of a writer that is provably gone: written on this
    host by a process that no longer exists. Anything else (another host, an old-style name,
    a live process) may still be in use and is left alone."""
    match = _TMP_RE.match(path.name)
    if match is None or match.group(2) != HOST:
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def file_digest(path: str | os.PathLike) -> str:
    """xxh3-128 of a file's bytes, in hex (fast: about memory speed)."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make the names in directory ``path`` (a rename, a new file) durable."""
    _fsync_dir(path)


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
    tmp = temporary_path(path)
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def create_exclusive(path: str | os.PathLike, data: bytes) -> bool:
    """Create ``path`` holding ``data``, all or nothing, unless it exists (then return False).

    The bytes are written and flushed under a temporary name, then hard-linked to ``path``:
    the link fails when another writer (thread, process or machine on a shared file system)
    created ``path`` first, and readers never see a partial file. Where the file system has
    no hard links, an exclusive create (``O_EXCL``) is used instead.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        tmp.write_bytes(data)
        _fsync_file(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # pragma: no cover - file systems without hard links
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temporary name, fsync, rename)."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


# ------------------------------------------------------------------ kept for the store's own modules
# The checks of where a command may read or write live in :mod:`tracekit.places`; the store's
# tables module still imports these two names from here (its root is checked for shape only).
from tracekit.places import check_dir_shape as check_output_dir  # noqa: E402,F401
from tracekit.places import check_writable_dir  # noqa: E402,F401
