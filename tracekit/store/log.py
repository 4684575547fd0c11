"""The store's commit log: which part files make up every table, commit by commit.

Layout (store format 3)::

    STORE/
      tracekit-store.json                    marker: {"format": 3, "id": "<store id>"}
      _log/0000000001.json                   commit 1
      _log/0000000002.json                   commit 2 ...
      _log/0000000064.checkpoint.json        every table after commit 64 (a shortcut for readers)
      samples/part-65f2a1c04e9b8d7a3f21.parquet   a part: written once, never changed

A commit is a small JSON record naming, per table, the parts it adds (name, rows, bytes, xxh3
of the file, whether its ids were checked against the table) and the parts it removes. One
commit may change several tables: a command's last commit adds its ``runs`` row, its
``views`` rows and (for ``rearrange --replace``) its new traces together, so readers see the
command's effect whole or not at all. The store is the result of applying commits 1..N in
order; a file that no commit names is not part of it.

Commit N+1 is created with the file system's put-if-absent (see
:meth:`tracekit.store.fs.StoreFS.put_if_absent`): of two writers that race for one number,
exactly one wins; the other re-reads the log, checks its rows again and tries N+2. That
holds across machines on a shared file system and on object storage; on one machine the
log's lock also keeps writers from racing at all.

Every record names the store's id and the xxh3 of the record before it, so a record copied
in from another store (or a log folder pasted over) is found: the store is then read as
possibly holding repeated ids (readers drop repeats) and ``tracekit info`` says why.

Parts that a commit removes (``replace``, ``compact``, ``forget``) stay on disk for
:data:`GRACE_S` seconds, so a reader still streaming an older snapshot is not cut off; a
commit after that deletes them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import xxhash

from tracekit.errors import StoreError
from tracekit.store.fs import StoreFS, writer_token

LOG_DIR = "_log"
CHECKPOINT_EVERY = 64
GRACE_S = 3600.0
_COMMIT_RE = re.compile(r"^(\d{10})\.json$")
_CHECKPOINT_RE = re.compile(r"^(\d{10})\.checkpoint\.json$")
# ops whose removals keep every row (the ids stay in the table)
ROW_PRESERVING = frozenset({"compact", "adopt"})


@dataclass(frozen=True)
class PartEntry:
    """What the log knows about one part file.

    ``checked`` is True when the part's ids were checked against every earlier part of the
    table when it was committed (always, for parts tracekit writes; a part adopted from an
    older store format is checked when it was migrated). Readers drop repeated ids only from
    tables that hold an unchecked part.
    """

    name: str
    rows: int
    bytes: int
    xxh3: str
    checked: bool = True

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "rows": self.rows,
            "bytes": self.bytes,
            "xxh3": self.xxh3,
            "checked": self.checked,
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> PartEntry:
        if not isinstance(data, dict):
            raise _damaged(where, f"a part entry is {type(data).__name__}, not an object")
        for key, kind in (("name", str), ("rows", int), ("bytes", int), ("xxh3", str), ("checked", bool)):
            value = data.get(key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise _damaged(where, f"a part entry's {key!r} is {value!r}, not {kind.__name__}")
        if "/" in data["name"] or data["name"].startswith("."):
            raise _damaged(where, f"a part entry names {data['name']!r}, not a part file")
        return cls(data["name"], data["rows"], data["bytes"], data["xxh3"], data["checked"])


@dataclass(frozen=True)
class Snapshot:
    """One table as of one commit: its live parts in commit order, and removed parts not yet deleted.

    ``sound`` is False when the log that made it holds records that do not continue this
    store's chain (see the module docstring): ids may then repeat.
    """

    commit: int
    parts: tuple[PartEntry, ...] = ()
    retired: Mapping[str, float] = field(default_factory=dict)
    sound: bool = True

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def all_checked(self) -> bool:
        """True when no id can appear twice (every part was checked when committed)."""
        return self.sound and all(p.checked for p in self.parts)


@dataclass(frozen=True)
class StoreSnapshot:
    """Every table as of one commit of the store log.

    ``removals`` lists, for the commits this snapshot's log has read, ``(commit, table, op,
    writer)`` of every commit that removed parts of a table without keeping its rows (a
    replace, a forget): a command checks it to find rows removed while it ran.
    ``legacy``: read from an older store format (format 1 or 2) that was not migrated yet.
    ``whole``: tables that an older format viewed whole when the store was migrated (no
    command had recorded a view of them); their view stays whole until a command records one.
    """

    commit: int
    tables: Mapping[str, Snapshot] = field(default_factory=dict)
    sound: bool = True
    problems: tuple[tuple[str, str], ...] = ()
    legacy: bool = False
    whole: frozenset[str] = frozenset()

    def table(self, name: str) -> Snapshot:
        return self.tables.get(name) or Snapshot(self.commit, sound=self.sound)


def _recent(retired: Mapping[str, float]) -> dict[str, float]:
    """Removed parts a checkpoint keeps tracking: those whose files may still be on disk (a
    commit deletes them once :data:`GRACE_S` has passed; a week later they are surely gone)."""
    now = time.time()
    return {n: t for n, t in retired.items() if now - t < GRACE_S + 7 * 24 * 3600}


def _damaged(where: str, what: str) -> StoreError:
    msg = (
        f"the commit log of the store is damaged: {where}: {what}.\n"
        "Hint: restore the file from a backup; `tracekit info --store DIR` lists every problem of the store."
    )
    return StoreError(msg)


def record_hash(data: bytes) -> str:
    return xxhash.xxh3_64_hexdigest(data)


def parse_record(data: bytes, where: str, number: int) -> dict:
    """A commit record's JSON, checked for shape: raises :class:`StoreError` naming ``where``."""
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise _damaged(where, f"not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise _damaged(where, f"a record is {type(record).__name__}, not an object")
    if record.get("commit") != number:
        raise _damaged(where, f"holds commit {record.get('commit')!r}, not {number}")
    tables = record.get("tables")
    if not isinstance(tables, dict):
        raise _damaged(where, "has no 'tables' object")
    if not isinstance(record.get("time"), int | float) or isinstance(record.get("time"), bool):
        raise _damaged(where, f"its 'time' is {record.get('time')!r}, not a number")
    for table, change in tables.items():
        if not isinstance(change, dict):
            raise _damaged(where, f"table {table!r}: a change is {type(change).__name__}, not an object")
        if not isinstance(change.get("add", []), list) or not isinstance(change.get("remove", []), list):
            raise _damaged(where, f"table {table!r}: 'add' and 'remove' must be lists")
        change["add"] = [PartEntry.from_json(e, f"{where}, table {table!r}") for e in change.get("add", [])]
        if not all(isinstance(n, str) for n in change.get("remove", [])):
            raise _damaged(where, f"table {table!r}: 'remove' must list part names")
        change.setdefault("remove", [])
        retired = change.get("retired", {})
        if not isinstance(retired, dict) or not all(isinstance(t, int | float) for t in retired.values()):
            raise _damaged(where, f"table {table!r}: 'retired' must map part names to times")
        change["retired"] = retired
    return record


class CommitLog:
    """The store's commit log (see the module docstring), on a :class:`~tracekit.store.fs.StoreFS`.

    A ``CommitLog`` caches what it has read: :meth:`snapshot` reads the whole log once (from
    the newest checkpoint), then only the commits written since (it probes for the next
    number). ``store_id`` is the id every record must name.
    """

    def __init__(self, fs: StoreFS, store_id: str) -> None:
        self.fs = fs
        self.store_id = store_id
        self._mutex = threading.Lock()
        self._commit = -1  # not loaded
        self._tables: dict[str, dict[str, PartEntry]] = {}
        self._retired: dict[str, dict[str, float]] = {}
        self._last_hash = ""
        self._sound = True
        self._problems: list[tuple[str, str]] = []
        self._removals: list[tuple[int, str, str, str]] = []
        self._whole: frozenset[str] = frozenset()
        self._snapshot = StoreSnapshot(0)

    def path_of(self, number: int) -> str:
        return f"{LOG_DIR}/{number:010d}.json"

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> StoreSnapshot:
        """The store as of the newest commit."""
        with self._mutex:
            if self._commit < 0:
                self._load()
            changed = False
            while True:
                data = self._try_read(self._commit + 1)
                if data is None:
                    break
                self._apply(data, self._commit + 1)
                changed = True
            if changed or self._snapshot.commit != self._commit:
                self._snapshot = self._freeze()
            return self._snapshot

    def removals_since(self, commit: int) -> list[tuple[int, str, str, str]]:
        """``(commit, table, op, writer)`` of the commits after ``commit`` that removed rows."""
        self.snapshot()
        with self._mutex:
            return [r for r in self._removals if r[0] > commit]

    def _freeze(self) -> StoreSnapshot:
        tables = {
            t: Snapshot(self._commit, tuple(parts.values()), dict(self._retired.get(t, {})), self._sound)
            for t, parts in self._tables.items()
        }
        for t, retired in self._retired.items():
            if t not in tables:
                tables[t] = Snapshot(self._commit, (), dict(retired), self._sound)
        return StoreSnapshot(self._commit, tables, self._sound, tuple(self._problems), whole=self._whole)

    def _try_read(self, number: int) -> bytes | None:
        try:
            return self.fs.read_bytes(self.path_of(number))
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise _damaged(self.fs_path(self.path_of(number)), "a folder, not a commit record") from None
        except OSError as exc:
            raise _damaged(self.fs_path(self.path_of(number)), f"cannot be read ({exc})") from None

    def fs_path(self, path: str) -> str:
        return f"{self.fs.url.rstrip('/')}/{path}"

    def _names(self) -> list[str]:
        if self.fs.exists(LOG_DIR) and not self.fs.is_dir(LOG_DIR):
            raise _damaged(self.fs_path(LOG_DIR), "a file, not the log's folder")
        return [e.name for e in self.fs.list(LOG_DIR) if not e.is_dir]

    def _load(self) -> None:
        names = self._names()
        commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT_RE.match(n)))
        last = commits[-1] if commits else 0
        checkpoints = sorted(int(m.group(1)) for n in names if (m := _CHECKPOINT_RE.match(n)))
        self._commit, self._tables, self._retired, self._last_hash = 0, {}, {}, ""
        for start in reversed([c for c in checkpoints if c <= last]):
            if self._load_checkpoint(start):
                break
        missing = sorted(set(range(self._commit + 1, last + 1)) - set(commits))
        if missing:
            raise _damaged(
                self.fs_path(LOG_DIR), f"commit(s) {missing[:5]} are missing (it has commits up to {last})"
            )
        for number in range(self._commit + 1, last + 1):
            data = self._try_read(number)
            if data is None:
                raise _damaged(self.fs_path(self.path_of(number)), "vanished while the log was read")
            self._apply(data, number)

    def _load_checkpoint(self, number: int) -> bool:
        path = f"{LOG_DIR}/{number:010d}.checkpoint.json"
        try:
            data = json.loads(self.fs.read_bytes(path))
            tables = {
                t: {e["name"]: PartEntry.from_json(e, path) for e in parts}
                for t, parts in data["tables"].items()
            }
            retired = {t: {n: float(v) for n, v in r.items()} for t, r in data["retired"].items()}
            last_hash, store_id = str(data["hash"]), data["store"]
            whole = frozenset(str(t) for t in data.get("whole", []))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, StoreError):
            return False  # a checkpoint is only a shortcut: read the commits instead
        if store_id != self.store_id or data.get("commit") != number:
            return False
        self._commit, self._tables, self._retired, self._last_hash = number, tables, retired, last_hash
        self._whole = whole
        return True

    def _apply(self, data: bytes, number: int) -> None:
        where = self.fs_path(self.path_of(number))
        record = parse_record(data, where, number)
        if record.get("store") != self.store_id or record.get("prev") != self._last_hash:
            if self._sound:
                self._problems.append(
                    (
                        self.path_of(number),
                        "does not continue this store's log (copied from another store or edited); "
                        "readers drop repeated ids",
                    )
                )
            self._sound = False
        op = str(record.get("op", "?"))
        if op == "adopt" and isinstance(record.get("viewed_whole"), list):
            self._whole = frozenset(str(t) for t in record["viewed_whole"])
        for table, change in record["tables"].items():
            parts = self._tables.setdefault(table, {})
            retired = self._retired.setdefault(table, {})
            removed_rows = False
            for name in change["remove"]:
                if parts.pop(name, None) is not None:
                    retired[name] = float(record["time"])
                    removed_rows = True
            for name, when in change["retired"].items():
                retired[name] = float(when)
            for part in change["add"]:
                parts[part.name] = part
                retired.pop(part.name, None)
            if removed_rows and op not in ROW_PRESERVING:
                self._removals.append((number, table, op, str(record.get("writer", "?"))))
        self._last_hash = record_hash(data)
        self._commit = number

    # ------------------------------------------------------------------ writing
    def lock(self):
        """Hold the log's lock (a no-op on object storage: the commit primitive suffices)."""
        return self.fs.lock(LOG_DIR)

    def commit(self, base: StoreSnapshot, *, op: str, changes: dict[str, dict]) -> bool:
        """Publish commit ``base.commit + 1``; False when another writer published that number first.

        ``changes`` maps a table to ``{"add": [PartEntry, ...], "remove": [names]}``; the added
        parts must already be visible under their names.
        """
        number = base.commit + 1
        with self._mutex:
            prev = self._last_hash if self._commit == base.commit else None
        if prev is None:  # base is not the newest we read: the caller must re-read first
            return False
        record = {
            "commit": number,
            "store": self.store_id,
            "prev": prev,
            "op": op,
            "time": time.time(),
            "writer": writer_token(),
            "tables": {
                t: {"add": [p.to_json() for p in c.get("add", [])], "remove": list(c.get("remove", []))}
                for t, c in sorted(changes.items())
            },
        }
        if not self.fs.put_if_absent(self.path_of(number), json.dumps(record, sort_keys=True).encode()):
            return False
        if number % CHECKPOINT_EVERY == 0:
            try:  # a shortcut for readers only: the commit stands without it
                self._checkpoint(self.snapshot())
            except (OSError, StoreError):
                pass
        return True

    def forget_retired(self, table: str, names: list[str]) -> None:
        """Stop tracking removed parts whose files were deleted (this process only; checkpoints
        leave them out too)."""
        with self._mutex:
            for name in names:
                self._retired.get(table, {}).pop(name, None)
            self._snapshot = self._freeze()

    def _checkpoint(self, snap: StoreSnapshot) -> None:
        with self._mutex:
            if self._commit != snap.commit:
                return
            data = {
                "commit": snap.commit,
                "store": self.store_id,
                "hash": self._last_hash,
                "tables": {t: [p.to_json() for p in s.parts] for t, s in snap.tables.items()},
                "retired": {t: _recent(s.retired) for t, s in snap.tables.items()},
                "whole": sorted(snap.whole),
            }
        self.fs.put(
            f"{LOG_DIR}/{snap.commit:010d}.checkpoint.json", json.dumps(data, sort_keys=True).encode()
        )

    def problems(self) -> list[tuple[str, str]]:
        """Damage of the log itself: records that do not parse, gaps, foreign records."""
        """Paths are relative to the store root."""
        try:
            names = self._names()
        except StoreError as exc:
            return [(LOG_DIR, str(exc).splitlines()[0])]
        out = []
        commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT_RE.match(n)))
        for number in sorted(set(range(1, (commits[-1] if commits else 0) + 1)) - set(commits)):
            out.append((self.path_of(number), "missing: this commit of the log was deleted"))
        damaged = False
        for number in commits:
            try:
                parse_record(self.fs.read_bytes(self.path_of(number)), self.path_of(number), number)
            except (OSError, StoreError) as exc:
                text = str(exc).splitlines()[0].split(": ", 2)[-1]
                out.append((self.path_of(number), f"unreadable commit record ({text})"))
                damaged = True
        if not damaged and not out:
            try:
                out += [(path, what) for path, what in self.snapshot().problems]
            except StoreError:
                pass
        return out
