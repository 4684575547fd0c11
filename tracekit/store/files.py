"""Files written all or nothing, and tracekit's parquet settings (every writer uses these).

``atomic_write`` is the one way a file appears in a store or an export: it is filled under a
hidden temporary name, flushed to disk and renamed into place, so readers never see a torn file.

Temporary names are unique to the writer (``.tmp-NAME~PID@HOST~TOKEN``), so two writers never
share or delete each other's temporaries; :func:`is_stale_temporary` tells a leftover of a dead
writer (same host, process gone) from one still being written.

``check_output_dir``, ``check_output_file`` and ``check_input_file`` say, before any work is
done, whether a command can write (or read) where the user pointed it: a file where a folder
belongs, a folder under a file, a read-only or otherwise unwritable folder are errors that
name the path, and nothing is created to find out.
"""

from __future__ import annotations

import errno
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
    refuse_folder(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
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
        try:
            tmp.write_bytes(data)
            _fsync_file(tmp)
        except OSError as exc:
            raise _named(exc, path) from exc
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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temporary name, fsync, rename)."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


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
