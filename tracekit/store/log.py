"""The commit log of one table: which part files make up the table, commit by commit.

Layout of a table folder::

    samples/
      part-65f2a1c04e9b8d7a3f21.parquet     a part: written once, never changed
      _log/0000000001.json                  commit 1
      _log/0000000002.json                  commit 2 ...
      _log/0000000064.checkpoint.json       the table after commit 64 (a shortcut for readers)
      _log/.lock                            the commit lock

A commit is a small JSON record: the parts it adds (name, rows, bytes, xxh3 of the file,
and whether its ids were checked against the table) and the parts it removes. The table
is the result of applying commits 1..N in order; a file that no commit names is not part
of the table. Commit N+1 is created exclusively (see :func:`~tracekit.store.files.create_exclusive`):
of two writers that race for the same number exactly one wins, the other re-reads the log
and tries N+2. That holds across machines on a shared file system too; on one machine the
:meth:`CommitLog.lock` (``flock`` plus a thread lock) also keeps writers from racing at all.

Parts that a commit removes (``replace``, ``clear``) stay on disk for :data:`GRACE_S`
seconds, so a reader still streaming the old parts is not cut off; the first commit to the
table after that deletes them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tracekit.errors import StoreError
from tracekit.store.files import HOST, atomic_write, create_exclusive, file_digest

LOG_DIR = "_log"
CHECKPOINT_EVERY = 64
GRACE_S = 3600.0
_COMMIT_RE = re.compile(r"^(\d{10})\.json$")
_CHECKPOINT_RE = re.compile(r"^(\d{10})\.checkpoint\.json$")


@dataclass(frozen=True)
class PartEntry:
    """What the log knows about one part file.

    ``checked`` is True when the part's ids were checked against every earlier part of the
    table when it was committed (always, for parts tracekit writes; a part adopted from a
    format-1 store is checked when it was migrated). Readers drop repeated ids only from
    tables that hold an unchecked part.
    """

    name: str
    rows: int
    bytes: int
    xxh3: str
    checked: bool = True

    @classmethod
    def of_file(cls, path: Path, rows: int, *, checked: bool = True) -> PartEntry:
        return cls(path.name, rows, path.stat().st_size, file_digest(path), checked)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "rows": self.rows,
            "bytes": self.bytes,
            "xxh3": self.xxh3,
            "checked": self.checked,
        }

    @classmethod
    def from_json(cls, data: dict) -> PartEntry:
        return cls(data["name"], int(data["rows"]), int(data["bytes"]), data["xxh3"], bool(data["checked"]))


@dataclass(frozen=True)
class Snapshot:
    """A table as of one commit: its live parts in commit order, and the removed parts not yet deleted."""

    commit: int
    parts: tuple[PartEntry, ...] = ()
    retired: Mapping[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def all_checked(self) -> bool:
        """True when no id can appear twice (every part was checked when committed)."""
        return all(p.checked for p in self.parts)


def writer_id() -> str:
    return f"{os.getpid()}@{HOST}"


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``directory`` (a ``.lock`` file in it): a thread lock for
    this process and an ``flock`` for other processes (on NFS, Linux maps it to a lock the
    server keeps, so other machines respect it too)."""
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
            except (ImportError, OSError):  # pragma: no cover - no flock here: exclusive commits still hold
                pass
            yield
        finally:
            os.close(fd)  # releases the flock


class CommitLog:
    """The commit log of the table in ``table_dir`` (see the module docstring).

    A ``CommitLog`` caches what it has read: :meth:`snapshot` reads the whole log once, then
    only the commits written since (it probes for the next number).
    """

    def __init__(self, table_dir: Path) -> None:
        self.table_dir = table_dir
        self.dir = table_dir / LOG_DIR
        self._mutex = threading.Lock()
        self._commit = -1  # not loaded
        self._parts: dict[str, PartEntry] = {}
        self._retired: dict[str, float] = {}
        self._snapshot = Snapshot(0)

    def exists(self) -> bool:
        return self.dir.is_dir()

    def path_of(self, number: int) -> Path:
        return self.dir / f"{number:010d}.json"

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> Snapshot:
        """The table as of the newest commit."""
        with self._mutex:
            if self._commit < 0:
                self._load()
            changed = False
            while self.path_of(self._commit + 1).exists():
                self._apply(self._read(self.path_of(self._commit + 1)))
                changed = True
            if changed or self._snapshot.commit != self._commit:
                self._snapshot = Snapshot(self._commit, tuple(self._parts.values()), dict(self._retired))
            return self._snapshot

    def _load(self) -> None:
        names = os.listdir(self.dir) if self.dir.is_dir() else []
        commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT_RE.match(n)))
        last = commits[-1] if commits else 0
        checkpoints = sorted(int(m.group(1)) for n in names if (m := _CHECKPOINT_RE.match(n)))
        start = max([c for c in checkpoints if c <= last], default=0)
        self._commit, self._parts, self._retired = 0, {}, {}
        if start:
            data = self._read(self.dir / f"{start:010d}.checkpoint.json")
            self._commit = start
            self._parts = {e["name"]: PartEntry.from_json(e) for e in data["parts"]}
            self._retired = {k: float(v) for k, v in data["retired"].items()}
        missing = sorted(set(range(start + 1, last + 1)) - set(commits))
        if missing:
            msg = (
                f"the commit log {self.dir} lacks commit(s) {missing[:5]} (it has commits up to {last}).\n"
                "Hint: a file of the log was deleted; restore it from a backup."
            )
            raise StoreError(msg)
        for number in range(start + 1, last + 1):
            self._apply(self._read(self.path_of(number)))

    def _read(self, path: Path) -> dict:
        try:
            return json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            msg = (
                f"cannot read {path} of the commit log ({exc}).\n"
                "Hint: the log was damaged; restore the file from a backup."
            )
            raise StoreError(msg) from None

    def _apply(self, record: dict) -> None:
        if record.get("commit") != self._commit + 1:
            msg = f"{self.path_of(self._commit + 1)} holds commit {record.get('commit')}, not {self._commit + 1}."
            raise StoreError(msg)
        for name in record["remove"]:
            if self._parts.pop(name, None) is not None:
                self._retired[name] = float(record["time"])
        for entry in record["add"]:
            part = PartEntry.from_json(entry)
            self._parts[part.name] = part
        self._commit += 1

    # ------------------------------------------------------------------ writing
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this table's commit lock (see :func:`directory_lock`)."""
        with directory_lock(self.dir):
            yield

    def commit(self, base: Snapshot, *, op: str, add: list[PartEntry], remove: list[str]) -> bool:
        """Publish commit ``base.commit + 1``; False when another writer published that number first.

        The parts in ``add`` must already be in the table folder under their names.
        """
        number = base.commit + 1
        record = {
            "commit": number,
            "op": op,
            "time": time.time(),
            "writer": writer_id(),
            "add": [p.to_json() for p in add],
            "remove": list(remove),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        if not create_exclusive(self.path_of(number), json.dumps(record, sort_keys=True).encode()):
            return False
        if number % CHECKPOINT_EVERY == 0:
            try:  # a shortcut for readers only: the commit stands without it
                self._checkpoint(self.snapshot())
            except (OSError, StoreError):
                pass
        return True

    def _checkpoint(self, snap: Snapshot) -> None:
        retired = {n: t for n, t in snap.retired.items() if (self.table_dir / n).exists()}
        data = {"commit": snap.commit, "parts": [p.to_json() for p in snap.parts], "retired": retired}
        path = self.dir / f"{snap.commit:010d}.checkpoint.json"
        atomic_write(path, lambda tmp: tmp.write_bytes(json.dumps(data, sort_keys=True).encode()))

    def delete_retired(self, snap: Snapshot) -> None:
        """Delete the files of parts removed more than :data:`GRACE_S` seconds ago (under the lock)."""
        now, grace_s = time.time(), GRACE_S
        for name, removed_at in snap.retired.items():
            if now - removed_at > grace_s:
                (self.table_dir / name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ checking
    def problems(self) -> list[tuple[Path, str]]:
        """Damage of the log itself: records that do not parse, gaps in the numbering."""
        if not self.dir.is_dir():
            return []
        out = []
        names = os.listdir(self.dir)
        commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT_RE.match(n)))
        for number in sorted(set(range(1, (commits[-1] if commits else 0) + 1)) - set(commits)):
            out.append((self.path_of(number), "missing: this commit of the log was deleted"))
        for number in commits:
            try:
                json.loads(self.path_of(number).read_bytes())
            except (OSError, ValueError) as exc:
                out.append((self.path_of(number), f"unreadable commit record ({exc})"))
        return out
