"""Writes that appear together, in one commit: :class:`Transaction` (one table) and
:class:`Transactions` (several tables, one commit record).

Every write to a store goes through here (:meth:`Store.write` is a transaction of one part):

1. the frame is validated and rows whose ids the table (or this transaction) already holds
   are dropped;
2. the rest is written as a part (:meth:`Transaction.stage`) without any lock: compression
   and the disk are the slow part, and writers do them in parallel. Locally it is a hidden
   temporary of this writer's own; on object storage it is uploaded under its final name;
3. at commit (:func:`commit_together`), under the log's lock where there is one, the ids are
   checked once more against the parts other writers committed meanwhile (the rare part that
   overlaps is rewritten without those rows), the parts are made visible and one commit record
   publishes them; a writer that lost the race for the record's number re-reads and retries.

A kill before step 3 ends leaves the store as it was (temporaries of a dead writer are
removed by a later commit once the writer is provably gone: see :mod:`tracekit.store.fs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from tracekit.errors import StoreError
from tracekit.ids import HashSet
from tracekit.schemas import ID_COLUMNS, polars_schema, validate
from tracekit.store.files import write_parquet
from tracekit.store.fs import Staged
from tracekit.store.log import PartEntry, Snapshot, StoreSnapshot
from tracekit.store.parts import new_part_name


@dataclass
class Pending:
    """A part written but not yet committed."""

    staged: Staged
    entry: PartEntry
    seen: frozenset[str]  # parts whose ids it was checked against


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
    """``frame`` without the rows whose id is in ``known``."""
    if not known.len() or not frame.height:
        return frame
    return frame.filter(~pl.col(id_col).is_in(known.implode()))


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

    def __init__(self, store, table: str, *, replace: bool = False, unique: bool = False) -> None:
        store.check_table(table)  # an unknown table fails here
        store.ensure_current_format()
        self.store, self.table, self.replace = store, table, replace
        self.rows = 0
        self.pending: list[Pending] = []
        # hashes of the staged ids (see :meth:`_drop_staged`), 8 bytes a row; none when the
        # writer promises ``unique`` ids (each id written once in this transaction: an import,
        # whose ids are unique in its file by construction)
        self._staged = None if unique else HashSet()
        self.state = "open"

    # ------------------------------------------------------------------ writing
    def write(self, table: str, frame: pl.DataFrame) -> int:
        """Validate ``frame`` and stage the rows that are new; return how many were staged."""
        if table != self.table:
            raise StoreError(f"this transaction writes table {self.table!r}, not {table!r}.")
        self._check_open()
        id_col = ID_COLUMNS[table]
        frame = conform(table, frame)
        hashes = frame[id_col].hash(seed=0).to_numpy()
        if self.pending and frame.height and self._staged is not None:
            frame, hashes = self._drop_staged(frame, id_col, hashes)
        seen: frozenset[str] = frozenset()
        if not self.replace and frame.height:
            snap = self.store.snapshot(table)
            known = self.store.find_ids(table, snap.parts, frame[id_col])
            if known.len():
                frame = drop_ids(frame, id_col, known)
                hashes = frame[id_col].hash(seed=0).to_numpy()
            seen = frozenset(p.name for p in snap.parts)
        if not frame.height:
            return 0
        self.stage(frame, seen=seen, hashes=hashes)
        return frame.height

    def _check_open(self) -> None:
        if self.state != "open":
            raise StoreError(f"this transaction of table {self.table!r} is already {self.state}.")

    def _drop_staged(
        self, frame: pl.DataFrame, id_col: str, hashes: np.ndarray
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """``frame`` (and its ids' ``hashes``) without the rows this transaction staged already.
        The staged ids' 64-bit hashes find the candidates (a write costs O(its rows log staged),
        and a transaction keeps 8 bytes a staged row, not its ids); only when there are any (a
        repeated id, or a collision) are the staged parts' ids read back and compared as strings,
        so a collision never drops a row."""
        maybe = self._staged.contains(hashes)
        if not maybe.any():
            return frame, hashes
        suspects = frame[id_col].filter(pl.Series(maybe))
        staged = self.staged_ids(suspects)
        keep = ~maybe
        keep[maybe] = ~suspects.is_in(staged.implode()).to_numpy()
        return frame.filter(pl.Series(keep)), hashes[keep]

    def staged_ids(self, ids: pl.Series, pending: list[Pending] | None = None) -> pl.Series:
        """Those of ``ids`` that the staged parts (``pending``: all of them) hold, read back one
        part at a time."""
        id_col = ID_COLUMNS[self.table]
        found = [pl.Series(id_col, [], dtype=pl.Utf8)]
        for part in list(self.pending if pending is None else pending):  # (a writer thread may append)
            column = self.read_pending(part, [id_col]).to_series()
            found.append(column.filter(column.is_in(ids.implode())))
        return pl.concat(found)

    def stage(
        self, frame: pl.DataFrame, *, seen: frozenset[str] = frozenset(), hashes: np.ndarray | None = None
    ) -> Pending:
        """Write ``frame`` (already conformed, ids unique and new) as a part of this transaction.

        ``seen``: the parts its ids were checked against (the commit checks the others)."""
        self._check_open()
        if hashes is None:
            hashes = frame[ID_COLUMNS[self.table]].hash(seed=0).to_numpy()
        pending = self._write_part(frame, seen)
        self.pending.append(pending)
        if self._staged is not None:
            self._staged.add(np.sort(hashes), sorted_unique=True)  # ids are unique within a frame
        return pending

    def _write_part(self, frame: pl.DataFrame, seen: frozenset[str]) -> Pending:
        fs = self.store.fs
        name = new_part_name()
        staged = fs.stage(self.store.part_path(self.table, name), lambda tmp: write_parquet(frame, tmp))
        try:
            entry = PartEntry(name, frame.height, staged.size, staged.xxh3)
        except BaseException:
            fs.discard(staged)
            raise
        return Pending(staged, entry, seen)

    def read_pending(self, pending: Pending, columns: list[str] | None = None) -> pl.DataFrame:
        """The rows of a staged part (read back from its file)."""
        fs = self.store.fs
        source = (
            fs.scan_source(pending.staged.path)
            if fs.remote or pending.staged.published
            else pending.staged.where
        )
        return pl.read_parquet(source, columns=columns, storage_options=fs.storage_options())

    # ------------------------------------------------------------------ committing
    def commit(self) -> int:
        """Publish every staged part in one commit (with ``replace``, as the whole table)."""
        commit_together(self.store, [self])
        return self.rows

    def recheck(self, snap: Snapshot) -> None:
        """Drop rows that parts committed since each pending part was checked already hold.

        The committed parts' cached id hashes are looked up among the staged ones first; only
        on a hit (a real race, or a collision) are staged ids read back and compared."""
        if self.replace:
            return
        id_col = ID_COLUMNS[self.table]
        names = frozenset(p.name for p in snap.parts)
        kept = []
        for pending in self.pending:
            new = [p for p in snap.parts if p.name not in pending.seen and p.name != pending.entry.name]
            if new and self._may_hold(new):
                ids = self.read_pending(pending, [id_col]).to_series()
                committed = self.store.find_ids(self.table, new, ids)
                if committed.len():  # rare: a real race (none found: only a hash collision)
                    frame = drop_ids(self.read_pending(pending), id_col, committed)
                    self.store.fs.discard(pending.staged)
                    if frame.height:
                        kept.append(self._write_part(frame, names))
                    continue
            pending.seen = names
            kept.append(pending)
        self.pending = kept

    def _may_hold(self, parts: list[PartEntry]) -> bool:
        """May ``parts`` hold an id this transaction staged? (Without staged hashes: yes.)"""
        if self._staged is None:
            return True
        return any(self._staged.contains(h).any() for h in self.store.id_hashes(self.table, parts))

    def changes(self, snap: StoreSnapshot) -> dict | None:
        """What the commit record says of this table (None: nothing to commit)."""
        if not self.pending and not self.replace:
            return None
        remove = [p.name for p in snap.table(self.table).parts] if self.replace else []
        return {"add": [p.entry for p in self.pending], "remove": remove}

    def committed(self) -> None:
        self.state = "committed"
        self.rows = sum(p.entry.rows for p in self.pending)

    def abort(self) -> None:
        """Delete every staged part; the table is left as it was."""
        if self.state == "committed":
            return
        for pending in self.pending:
            if not pending.staged.published:
                self.store.fs.discard(pending.staged)
        self.pending = []
        self.state = "aborted"


def commit_together(
    store,
    txns: list[Transaction],
    *,
    op: str | None = None,
    check: Callable[[StoreSnapshot], None] | None = None,
) -> None:
    """Publish the staged parts of every transaction in ``txns`` in one commit record.

    ``check(snapshot)`` runs before each attempt, under the lock, against the newest snapshot;
    it raises to refuse the commit (then nothing is published). On any error every
    transaction is aborted: the store is left as it was.
    """
    for txn in txns:
        txn._check_open()
    log = store.log
    op = op or ("replace" if any(t.replace for t in txns) else "append")
    try:
        with log.lock():
            _best_effort(store.collect_garbage)
            while True:
                snap = log.snapshot()
                for txn in txns:
                    txn.recheck(snap.table(txn.table))
                if check is not None:
                    check(snap)
                changes = {t.table: c for t in txns if (c := t.changes(snap)) is not None}
                if not changes:
                    break
                store.fs.publish([p.staged for t in txns for p in t.pending])
                if log.commit(snap, op=op, changes=changes):
                    break
                # another writer (another machine) took that number: check again, try the next
        for txn in txns:
            txn.committed()
    except BaseException:
        for txn in txns:
            txn.abort()
        raise
    _best_effort(lambda: store.forget_ids(log.snapshot()))


class Transactions(_CommitOnExit):
    """One :class:`Transaction` per table, written through one object and committed together in
    one commit record at the end: a command that fails or is killed before :meth:`commit`
    leaves every table as it was. :meth:`write` has :meth:`Store.write`'s signature, so a
    :class:`~tracekit.store.overlap.BackgroundWriter` can write into it.
    """

    def __init__(self, store, tables: tuple[str, ...] = (), *, replace: tuple[str, ...] = ()) -> None:
        self.store = store
        self.open: dict[str, Transaction] = {}
        for table in tables:
            self.add(table, replace=table in replace)
        self.rows: dict[str, int] = {}

    def add(self, table: str, *, replace: bool = False, unique: bool = False) -> Transaction:
        """The transaction of ``table`` in this group (opened on first use; ``unique``: see
        :class:`Transaction`)."""
        if table not in self.open:
            self.open[table] = Transaction(self.store, table, replace=replace, unique=unique)
        elif self.open[table].replace != replace:
            raise StoreError(f"table {table!r} is already in this commit with replace={not replace}.")
        return self.open[table]

    def write(self, table: str, frame: pl.DataFrame) -> int:
        if table not in self.open:
            raise StoreError(f"these transactions write tables {list(self.open)}, not {table!r}.")
        return self.open[table].write(table, frame)

    def commit(self, *, check: Callable[[StoreSnapshot], None] | None = None) -> dict[str, int]:
        """Commit every table's transaction in one record; return the rows each published."""
        commit_together(self.store, list(self.open.values()), check=check)
        self.rows = {table: txn.rows for table, txn in self.open.items()}
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
    snap = store.snapshot(table)
    small = [p for p in snap.parts if p.bytes < below]
    if len(small) < 2:
        return 0
    groups: list[list[PartEntry]] = [[]]
    for part in small:  # consecutive small parts, about ``into`` bytes per merged part
        if groups[-1] and sum(p.bytes for p in groups[-1]) + part.bytes > into:
            groups.append([])
        groups[-1].append(part)
    txn = Transaction(store, table)
    fs = store.fs
    for group in groups:
        sources = [fs.scan_source(store.verified_part(table, p)) for p in group]
        frame = pl.concat(
            [pl.read_parquet(s, storage_options=fs.storage_options()) for s in sources], how="vertical"
        )
        if not all(p.checked for p in group):
            frame = frame.unique(ID_COLUMNS[table], keep="first", maintain_order=True)
        txn.stage(conform(table, frame))
    names = {p.name for p in small}

    def still_there(now: StoreSnapshot) -> None:
        if not names <= {p.name for p in now.table(table).parts}:
            raise _Superseded

    try:
        commit_together(store, [_Compaction(txn, sorted(names))], op="compact", check=still_there)
    except _Superseded:  # another writer replaced or compacted them: nothing to do
        return 0
    return len(small)


class _Superseded(Exception):
    pass


class _Compaction(Transaction):
    """A transaction that adds merged parts and removes the parts they merge (no id checks:
    the rows are the table's own)."""

    def __init__(self, txn: Transaction, remove: list[str]) -> None:  # noqa: D107 - wraps txn
        self.__dict__.update(txn.__dict__)
        self._remove = remove

    def recheck(self, snap: Snapshot) -> None:
        return None

    def changes(self, snap: StoreSnapshot) -> dict | None:
        return {"add": [p.entry for p in self.pending], "remove": self._remove}


def _best_effort(step) -> None:
    """Run housekeeping around a commit; the commit stands whatever happens to it."""
    try:
        step()
    except (OSError, StoreError):
        pass
