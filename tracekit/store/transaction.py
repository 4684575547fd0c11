"""Writes to one table that appear together, in one commit: :class:`Transaction`.

Every write to a store goes through here (:meth:`Store.write` is a transaction of one part):

1. the frame is validated and rows whose ids the table (or this transaction) already holds
   are dropped;
2. the rest is written as a part under a temporary name of this writer's own, without any
   lock: compression and the disk are the slow part, and writers do them in parallel;
3. at commit, under the table's lock, the ids are checked once more against the parts other
   writers committed meanwhile (the rare part that overlaps is rewritten without those rows),
   the parts are renamed into place and one commit record publishes them.

A kill before step 3 ends leaves the table as it was (the temporaries of a dead writer are
deleted by a later commit on the same host); after it, the new parts are in.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tracekit.errors import StoreError
from tracekit.ids import HashSet
from tracekit.schemas import ID_COLUMNS, polars_schema, validate
from tracekit.store.files import (
    TMP_PREFIX,
    _fsync_file,
    fsync_dir,
    is_stale_temporary,
    temporary_path,
    write_parquet,
)
from tracekit.store.log import LOG_DIR, PartEntry, Snapshot


def new_part_name() -> str:
    """``part-<8 hex of the time><12 random hex>.parquet``: unique, roughly in write order."""
    return f"part-{int(time.time()):08x}{secrets.token_hex(6)}.parquet"


@dataclass
class _Pending:
    """A part written but not yet committed."""

    path: Path  # a temporary name until published, then the part's own name
    entry: PartEntry
    hashes: np.ndarray  # 64-bit hashes of its ids (8 bytes a row; the ids are read back when a hash matches)
    seen: frozenset[str]  # parts whose ids it was checked against
    published: bool = False

    def ids(self, id_col: str) -> pl.Series:
        return pl.read_parquet(self.path, columns=[id_col]).to_series()


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the table's column order and types, validated (see :func:`tracekit.schemas.validate`)."""
    schema = polars_schema(table)
    if all(c in frame.columns for c in schema):
        frame = frame.select(list(schema))
        cast = {c: t for c, t in schema.items() if frame.schema[c] != t and frame.schema[c] == pl.Null}
        if cast:  # all-null columns built from Python lists come in as Null
            frame = frame.with_columns([pl.col(c).cast(t) for c, t in cast.items()])
    return validate(table, frame)


def drop_ids(frame: pl.DataFrame, id_col: str, known: pl.Series) -> pl.DataFrame:
    """``frame`` without the rows whose id is in ``known`` (hashes the small side only)."""
    if not known.len() or not frame.height:
        return frame
    hits = known.filter(known.is_in(frame[id_col].implode()))
    return frame.filter(~pl.col(id_col).is_in(hits.implode())) if hits.len() else frame


class _CommitOnExit:
    """``with`` support: commit when the block ends normally, abort when it raises."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class Transaction(_CommitOnExit):
    """Writes to ``table`` of ``store`` that one commit publishes (see :meth:`Store.transaction`).

    ``write(table, frame)`` has the signature of :meth:`Store.write`, so code that writes to a
    store (a :class:`~tracekit.store.overlap.BackgroundWriter`) can write into a transaction.
    :attr:`rows` is the number of rows the commit published.
    """

    def __init__(self, store, table: str, *, replace: bool = False) -> None:
        store.table_dir(table)  # an unknown table fails here
        store._writable()
        self.store, self.table, self.replace = store, table, replace
        self.rows = 0
        self._pending: list[_Pending] = []
        self._staged = HashSet()  # hashes of the staged ids (see :meth:`_drop_staged`)
        self._state = "open"

    # ------------------------------------------------------------------ writing
    def write(self, table: str, frame: pl.DataFrame, *, known_ids: pl.Series | None = None) -> int:
        """Validate ``frame`` and stage the rows that are new; return how many were staged."""
        if table != self.table:
            raise StoreError(f"this transaction writes table {self.table!r}, not {table!r}.")
        if self._state != "open":
            raise StoreError(f"this transaction of table {self.table!r} is already {self._state}.")
        id_col = ID_COLUMNS[table]
        frame = conform(table, frame)
        if known_ids is not None:
            frame = drop_ids(frame, id_col, known_ids)
        hashes = frame[id_col].hash(seed=0).to_numpy()
        if self._pending and frame.height:
            frame, hashes = self._drop_staged(frame, id_col, hashes)
        seen: frozenset[str] = frozenset()
        if not self.replace and frame.height:
            snap = self.store.snapshot(table)
            known = self.store._ids_of(table, snap.parts)
            if known.len():
                frame = drop_ids(frame, id_col, known)
                hashes = frame[id_col].hash(seed=0).to_numpy()
            seen = frozenset(p.name for p in snap.parts)
        if not frame.height:
            return 0
        self._pending.append(self._stage(frame, seen, hashes))
        self._staged.add(np.sort(hashes), sorted_unique=True)  # ids are unique within a frame
        return frame.height

    def _drop_staged(
        self, frame: pl.DataFrame, id_col: str, hashes: np.ndarray
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """``frame`` (and its ids' ``hashes``) without the rows this transaction staged already.
        The 64-bit hashes find the candidates (a write costs O(its rows log staged), not O(all
        staged rows)); candidates are then compared as strings, so a collision never drops a row."""
        maybe = self._staged.contains(hashes)
        if not maybe.any():
            return frame, hashes
        suspects = frame[id_col].filter(pl.Series(maybe))
        staged = pl.Series(id_col, [], dtype=pl.Utf8)
        for pending in self._pending:
            if np.isin(hashes[maybe], pending.hashes).any():  # rare: a repeated id (or a collision)
                ids = pending.ids(id_col)
                staged.append(ids.filter(ids.is_in(suspects.implode())))
        keep = ~maybe
        keep[maybe] = ~suspects.is_in(staged.implode()).to_numpy()
        return frame.filter(pl.Series(keep)), hashes[keep]

    def _stage(self, frame: pl.DataFrame, seen: frozenset[str], hashes: np.ndarray) -> _Pending:
        directory = self.store.table_dir(self.table)
        directory.mkdir(parents=True, exist_ok=True)
        name = new_part_name()
        tmp = temporary_path(directory / name)
        try:
            write_parquet(frame, tmp)
            _fsync_file(tmp)
            entry = PartEntry.of_file(tmp, frame.height)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        entry = PartEntry(name, entry.rows, entry.bytes, entry.xxh3)
        return _Pending(tmp, entry, hashes, seen)

    # ------------------------------------------------------------------ committing
    def commit(self) -> int:
        """Publish every staged part in one commit (with ``replace``, as the whole table)."""
        if self._state != "open":
            raise StoreError(f"this transaction of table {self.table!r} is already {self._state}.")
        store, table = self.store, self.table
        log = store._log(table)
        directory = store.table_dir(table)
        try:
            with log.lock():
                _delete_stale_temporaries(directory)
                while self._state == "open":
                    snap = log.snapshot()
                    if not self.replace:
                        self._recheck(snap)
                    if not self._pending and not self.replace:
                        self._state = "committed"
                        break
                    self._publish(directory)
                    remove = [p.name for p in snap.parts] if self.replace else []
                    op = "replace" if self.replace else "append"
                    if log.commit(snap, op=op, add=[p.entry for p in self._pending], remove=remove):
                        self._state = "committed"
                        self.rows = sum(p.entry.rows for p in self._pending)
                        _best_effort(lambda: self._after_commit(log))
                    # else another writer (another machine) took that number: check again, try the next
        finally:
            if self._state != "committed":
                self.abort()
        return self.rows

    def _after_commit(self, log) -> None:
        new = log.snapshot()
        self.store._remember_ids(self.table, new, {})  # forget removed parts; new ones are read when needed
        log.delete_retired(new)

    def _recheck(self, snap: Snapshot) -> None:
        """Drop rows that parts committed since each pending part was checked already hold."""
        id_col = ID_COLUMNS[self.table]
        names = frozenset(p.name for p in snap.parts)
        kept = []
        hashed: dict[tuple[str, ...], np.ndarray] = {}  # pending parts usually saw the same parts
        for pending in self._pending:
            new = [p for p in snap.parts if p.name not in pending.seen and p.name != pending.entry.name]
            key = tuple(p.name for p in new)
            if new and key not in hashed:
                hashed[key] = np.sort(self.store._ids_of(self.table, new).hash(seed=0).to_numpy())
            if new and _any_in(pending.hashes, hashed[key]):
                committed = self.store._ids_of(self.table, new)
                frame = drop_ids(pl.read_parquet(pending.path), id_col, committed)  # rare: a real race
                if frame.height < pending.entry.rows:  # (equal: only a hash collision)
                    pending.path.unlink(missing_ok=True)
                    if frame.height:
                        kept.append(self._stage(frame, names, frame[id_col].hash(seed=0).to_numpy()))
                    continue
            pending.seen = names
            kept.append(pending)
        self._pending = kept

    def _publish(self, directory: Path) -> None:
        renamed = False
        for pending in self._pending:
            if not pending.published:
                final = directory / pending.entry.name
                pending.path.rename(final)
                pending.path, pending.published, renamed = final, True, True
        if renamed:
            fsync_dir(directory)

    def abort(self) -> None:
        """Delete every staged part; the table is left as it was."""
        if self._state == "committed":
            return
        for pending in self._pending:
            pending.path.unlink(missing_ok=True)
        self._pending = []
        self._state = "aborted"


class Transactions(_CommitOnExit):
    """One :class:`Transaction` per table, written through one object and committed together at
    the end (one commit per table, in the order given): a command that fails or is killed before
    :meth:`commit` leaves every table as it was. :meth:`write` has :meth:`Store.write`'s signature,
    so a :class:`~tracekit.store.overlap.BackgroundWriter` can write into it.
    """

    def __init__(self, store, tables: tuple[str, ...]) -> None:
        self.open = {table: Transaction(store, table) for table in tables}
        self.rows: dict[str, int] = {}

    def write(self, table: str, frame: pl.DataFrame, *, known_ids: pl.Series | None = None) -> int:
        if table not in self.open:
            raise StoreError(f"these transactions write tables {list(self.open)}, not {table!r}.")
        return self.open[table].write(table, frame, known_ids=known_ids)

    def commit(self) -> dict[str, int]:
        """Commit every table's transaction; return the rows each published."""
        for table, txn in self.open.items():
            self.rows[table] = txn.commit()
        return self.rows

    def abort(self) -> None:
        for txn in self.open.values():
            txn.abort()


COMPACT_BELOW = 8 * 1024 * 1024  # parts smaller than this are merged by :func:`compact`
COMPACT_INTO = 64 * 1024 * 1024  # about the size of each merged part


def compact(store, table: str, *, below: int = COMPACT_BELOW, into: int = COMPACT_INTO) -> int:
    """Merge the small parts of ``table`` (each under ``below`` bytes) into parts of about
    ``into`` bytes, published in one commit that adds the merged parts and removes the small
    ones; return how many parts were merged (0: fewer than two small parts).

    Rows and ids are unchanged, so views, resume and readers are unaffected: readers of an
    older snapshot keep reading the removed parts (they stay on disk for the grace period, as
    after a replace), and a compaction killed before its commit leaves the table as it was. A
    writer that removed one of the small parts meanwhile wins: the compaction then does nothing.
    """
    directory = store.table_dir(table)
    snap = store.snapshot(table)
    small = [p for p in snap.parts if p.bytes < below]
    if len(small) < 2:
        return 0
    store._writable()
    groups: list[list[PartEntry]] = [[]]
    for part in small:  # consecutive small parts, about ``into`` bytes per merged part
        if groups[-1] and sum(p.bytes for p in groups[-1]) + part.bytes > into:
            groups.append([])
        groups[-1].append(part)
    txn = Transaction(store, table, replace=True)  # replace: no id check (the rows are the table's own)
    try:
        for group in groups:
            frame = pl.concat([pl.read_parquet(directory / p.name) for p in group], how="vertical")
            if not all(p.checked for p in group):
                frame = frame.unique(ID_COLUMNS[table], keep="first", maintain_order=True)
            frame = conform(table, frame)
            txn._pending.append(
                txn._stage(frame, frozenset(), frame[ID_COLUMNS[table]].hash(seed=0).to_numpy())
            )
        log = store._log(table)
        names = {p.name for p in small}
        with log.lock():
            while True:
                now = log.snapshot()
                if not names <= {p.name for p in now.parts}:
                    txn.abort()  # another writer replaced or compacted them: nothing to do
                    return 0
                txn._publish(directory)
                if log.commit(now, op="compact", add=[p.entry for p in txn._pending], remove=sorted(names)):
                    txn._state = "committed"
                    break
        _best_effort(lambda: txn._after_commit(log))
        return len(small)
    finally:
        txn.abort()


def _any_in(values: np.ndarray, sorted_values: np.ndarray) -> bool:
    """Does any of ``values`` occur in ``sorted_values`` (sorted)? O(len(values) log n)."""
    if not len(sorted_values) or not len(values):
        return False
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return bool((sorted_values[at] == values).any())


def _delete_stale_temporaries(directory: Path) -> None:
    """Remove temporaries of writers that are provably gone (same host, process ended)."""
    for folder in (directory, directory / LOG_DIR):
        if folder.is_dir():
            for path in folder.glob(TMP_PREFIX + "*"):
                if is_stale_temporary(path):
                    path.unlink(missing_ok=True)


def _best_effort(step) -> None:
    """Run housekeeping after a commit; the commit stands whatever happens to it."""
    try:
        step()
    except (OSError, StoreError):
        pass
