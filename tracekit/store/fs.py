"""The file system under a store: the few operations the commit log and the tables need.

A store talks to its storage only through a :class:`StoreFS` (paths are ``/``-separated and
relative to the store's root):

* ``read_bytes``, ``put`` (a whole small file, replaced atomically), ``put_if_absent`` (the
  commit primitive: create a file unless it exists; exactly one of two racing writers wins),
  ``list``, ``size``, ``delete``, ``open`` (for reading);
* ``stage`` / ``publish`` / ``discard``: a part file filled by a callback, made visible under its
  final name at commit (locally a hidden temporary renamed into place; on object storage the
  object is uploaded under its final name straight away: a part no commit names is not in the
  table, so there is nothing to rename);
* ``lock``: a lock that keeps writers of one machine from racing at all (``flock``); it may be
  a no-op (object storage), because the commit primitive alone is what makes commits safe;
* ``collect_garbage``: remove what dead writers left behind.

:class:`LocalFS` is a folder on a local or shared (NFS) disk. Object stores (``s3://...`` and
other fsspec URLs) are in :mod:`tracekit.store.remote`.

Temporaries of a local writer carry the writer's token (``.tmp-NAME~TOKEN~RANDOM``); the
writer holds an exclusive ``flock`` on ``.writers/TOKEN`` in the store for as long as it
lives. A temporary is removed only when that lock can be taken, which proves its writer is
gone: the kernel releases a dead process's locks, whatever PID namespace (container) it ran
in, and a live writer's lock is never free. Temporaries of the older ``~PID@HOST~`` form are
removed only after :data:`OLD_TEMPORARY_AGE_S`, as are temporaries whose writer's lock file is gone
(nothing can prove them alive or dead).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

TMP_PREFIX = ".tmp-"
WRITERS_DIR = ".writers"
OLD_TEMPORARY_AGE_S = 7 * 24 * 3600.0  # temporaries of the pre-token naming (PID@HOST)
_TOKEN_RE = re.compile(r"^\.tmp-.*~([0-9a-f]{16})~[0-9a-f]+$")
_OLD_TMP_RE = re.compile(r"^\.tmp-.*~(\d+)@([^~/]+)~[0-9a-f]+$")


@dataclass(frozen=True)
class Entry:
    """One name in a folder: a file (with its size and modification time) or a folder."""

    name: str
    is_dir: bool
    size: int = 0
    mtime: float = 0.0


@dataclass
class Staged:
    """A part being written: ``where`` is what :meth:`StoreFS.publish` and ``discard`` need."""

    path: str  # the final path, relative to the store root
    where: str  # a local temporary (LocalFS) or the final key (object stores)
    size: int = 0
    xxh3: str = ""
    published: bool = False


class StoreFS(Protocol):
    """The operations a store uses (see the module docstring)."""

    url: str
    remote: bool

    def read_bytes(self, path: str) -> bytes: ...
    def put(self, path: str, data: bytes) -> None: ...
    def put_if_absent(self, path: str, data: bytes) -> bool: ...
    def list(self, folder: str) -> list[Entry]: ...
    def size(self, path: str) -> int | None: ...
    def delete(self, path: str) -> None: ...
    def open(self, path: str) -> IO[bytes]: ...
    def stage(self, path: str, fill: Callable[[Path], None]) -> Staged: ...
    def publish(self, staged: list[Staged]) -> None: ...
    def discard(self, staged: Staged) -> None: ...
    def lock(self, folder: str) -> contextmanager: ...
    def collect_garbage(self, folders: list[str]) -> None: ...
    def scan_source(self, path: str) -> str: ...
    def open_source(self, source: str): ...
    def storage_options(self) -> dict | None: ...
    def is_dir(self, path: str) -> bool: ...
    def exists(self, path: str) -> bool: ...


# ---------------------------------------------------------------------- the local writer token
_TOKEN_GUARD = threading.Lock()
_TOKEN: dict[str, object] = {}  # pid -> token, and the lock files this process holds


def writer_token() -> str:
    """This process's writer token (16 hex digits; a forked child gets its own)."""
    with _TOKEN_GUARD:
        if _TOKEN.get("pid") != os.getpid():
            _TOKEN.clear()
            _TOKEN.update(pid=os.getpid(), token=secrets.token_hex(8), held={})
        return _TOKEN["token"]  # type: ignore[return-value]


def _hold_writer_lock(root: Path) -> None:
    """Take (once per process and store) the exclusive lock ``.writers/TOKEN`` that proves this
    writer is alive; it is released by the kernel when the process ends."""
    token = writer_token()
    with _TOKEN_GUARD:
        held: dict = _TOKEN["held"]  # type: ignore[assignment]
        key = os.path.realpath(root)
        if key in held:
            return
        folder = root / WRITERS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / token, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):  # pragma: no cover - no flock: temporaries are then kept
            pass
        held[key] = fd


def _writer_is_gone(root: Path, token: str) -> bool:
    """True when the writer with ``token`` provably ended: its lock file can be locked."""
    if token == writer_token():
        return False
    try:
        fd = os.open(root / WRITERS_DIR / token, os.O_RDWR)
    except FileNotFoundError:
        return False  # no proof either way: keep its temporaries
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (ImportError, OSError):
        return False
    finally:
        os.close(fd)


def file_digest(path: str | os.PathLike) -> str:
    """xxh3-128 of a file's bytes, in hex (fast: about memory speed)."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def digest_of(fs, path: str) -> str:
    """xxh3-128 of the file at ``path`` of a store's file system (streamed)."""
    import xxhash

    h = xxhash.xxh3_128()
    with fs.open(path) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush ``path``'s bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the names in folder ``path`` (a rename, a new file) durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class LocalFS:
    """A store in a local (or NFS) folder ``root``."""

    remote = False

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def full(self, path: str) -> Path:
        return self.root / path if path else self.root

    # ------------------------------------------------------------------ reading
    def read_bytes(self, path: str) -> bytes:
        return self.full(path).read_bytes()

    def open(self, path: str) -> IO[bytes]:
        return open(self.full(path), "rb")

    def size(self, path: str) -> int | None:
        try:
            return self.full(path).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, path: str) -> bool:
        return self.full(path).exists()

    def is_dir(self, path: str) -> bool:
        return self.full(path).is_dir()

    def list(self, folder: str) -> list[Entry]:
        """The names in ``folder`` (none when it does not exist); a name that vanishes while it
        is listed (another writer's temporary) is left out."""
        out = []
        try:
            names = os.listdir(self.full(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for name in sorted(names):
            try:
                st = os.stat(self.full(folder) / name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            out.append(Entry(name, is_dir, 0 if is_dir else st.st_size, st.st_mtime))
        return out

    def scan_source(self, path: str) -> str:
        """What polars and pyarrow read ``path`` as (a local path here; a URL on object stores)."""
        return str(self.full(path))

    def open_source(self, source: str):
        """``source`` (from :meth:`scan_source`) as pyarrow opens it."""
        return source

    def storage_options(self) -> dict | None:
        return None

    # ------------------------------------------------------------------ writing
    def _temporary(self, path: Path) -> Path:
        _hold_writer_lock(self.root)
        return path.with_name(f"{TMP_PREFIX}{path.name}~{writer_token()}~{secrets.token_hex(6)}")

    def put(self, path: str, data: bytes) -> None:
        final = self.full(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temporary(final)
        try:
            tmp.write_bytes(data)
            fsync_file(tmp)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Create ``path`` holding ``data`` unless it exists (False then). The bytes are
        flushed under a temporary name and hard-linked to ``path``: the link fails when
        another writer created it first, and readers never see a partial file. Without hard
        links an exclusive create (``O_EXCL``) is used."""
        final = self.full(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temporary(final)
        try:
            tmp.write_bytes(data)
            fsync_file(tmp)
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            except OSError:  # pragma: no cover - file systems without hard links
                try:
                    fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(final.parent)
        return True

    def delete(self, path: str) -> None:
        self.full(path).unlink(missing_ok=True)

    def stage(self, path: str, fill: Callable[[Path], None]) -> Staged:
        final = self.full(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temporary(final)
        try:
            fill(tmp)
            fsync_file(tmp)
            size, digest = tmp.stat().st_size, file_digest(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Staged(path, str(tmp), size, digest)

    def publish(self, staged: list[Staged]) -> None:
        folders = set()
        for item in staged:
            if not item.published:
                os.rename(item.where, self.full(item.path))
                item.where, item.published = str(self.full(item.path)), True
                folders.add(self.full(item.path).parent)
        for folder in folders:
            fsync_dir(folder)

    def discard(self, staged: Staged) -> None:
        Path(staged.where).unlink(missing_ok=True)

    @contextmanager
    def lock(self, folder: str) -> Iterator[None]:
        """Hold the exclusive lock of ``folder`` (its ``.lock`` file): a thread lock for this
        process and an ``flock`` for other processes (on NFS, Linux maps it to a lock the
        server keeps, so other machines respect it too)."""
        directory = self.full(folder)
        directory.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(directory)
        with _THREAD_LOCKS_GUARD:
            thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
        with thread_lock:
            fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_EX)
                except (ImportError, OSError):  # pragma: no cover - exclusive creates still hold
                    pass
                yield
            finally:
                os.close(fd)  # releases the flock

    def collect_garbage(self, folders: list[str]) -> None:
        """Remove the temporaries in ``folders`` whose writers are provably gone (see the module
        docstring), then the lock files of writers that are gone."""
        gone: dict[str, bool] = {}
        now = time.time()
        for folder in folders:
            directory = self.full(folder)
            if not directory.is_dir():
                continue
            for path in directory.glob(TMP_PREFIX + "*"):
                if match := _TOKEN_RE.match(path.name):
                    token = match.group(1)
                    if token not in gone:
                        gone[token] = _writer_is_gone(self.root, token)
                    if gone[token]:
                        path.unlink(missing_ok=True)
                        continue
                    if (self.root / WRITERS_DIR / token).exists():
                        continue  # its writer holds its lock: alive
                if match or _OLD_TMP_RE.match(path.name):  # no lock file, no proof either way: only age tells
                    try:
                        if now - path.stat().st_mtime > OLD_TEMPORARY_AGE_S:
                            path.unlink(missing_ok=True)
                    except FileNotFoundError:
                        continue
        writers = self.root / WRITERS_DIR
        if writers.is_dir():
            for path in writers.iterdir():
                if gone.get(path.name) is not False and _writer_is_gone(self.root, path.name):
                    path.unlink(missing_ok=True)


def is_temporary(name: str) -> bool:
    return name.startswith(TMP_PREFIX)
