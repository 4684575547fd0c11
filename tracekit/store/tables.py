"""The store: a directory of parquet tables, the only owner of tables on disk.

Layout (store format 2)::

    STORE/
      tracekit-store.json                marker: {"format": 2}
      problems/part-<token>.parquet      part files, written once, never changed
      problems/_log/0000000001.json      the table's commit log (see tracekit.store.log)
      samples/ reflections/ traces/ runs/

* **Validated**: every write is checked against the table's schema
  (:func:`tracekit.schemas.validate`); every read checks each part's size against the
  log and its columns and types, and :meth:`Store.read` validates the rows too.
* **Committed**: a table is exactly the parts its commit log names. A writer fills its
  parts under temporary names of its own, then publishes them in one commit record; a
  killed writer leaves the table as it was. Files the log does not name are never read
  (:meth:`Store.check` reports them); dotfiles are ignored.
* **Several writers**: any number of threads and processes may write one store at once.
  Part names are unique, nobody touches another writer's temporaries, and ids are checked
  against the table at commit time, under the table's lock, so no id is written twice.
* **Format 1** stores (``part-NNNNNN.parquet`` files, no log) are read as they are (with
  repeated ids dropped on read) and migrated by their first write (see
  :mod:`tracekit.store.legacy`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tracekit.errors import StoreError
from tracekit.schemas import ID_COLUMNS, MODELS, polars_schema, validate
from tracekit.store.files import _atomic_write_bytes
from tracekit.store.log import CommitLog, PartEntry, Snapshot

STORE_FORMAT = 2
READS_FORMATS = (1, 2)
MARKER = "tracekit-store.json"


class Store:
    """A tracekit store rooted at ``root``.

    Parameters
    ----------
    root
        The store directory.
    create
        Create the directory (and its marker) when it does not exist yet.

    A ``Store`` object may be shared by threads. It caches what it has read of the commit
    logs and the ids of the parts it has read or written (to check new rows against them).

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> st = Store(tempfile.mkdtemp() + "/st", create=True)
    >>> st.count("samples")
    0
    """

    def __init__(self, root: str | os.PathLike, *, create: bool = False) -> None:
        self.root = Path(root)
        marker = self.root / MARKER
        if self.root.exists() and not self.root.is_dir():
            msg = (
                f"store {self.root} is a file, not a store folder.\nHint: give --store the folder of a store."
            )
            raise StoreError(msg)
        if not marker.exists():
            if not create:
                msg = (
                    f"{self.root} is not a tracekit store (no {MARKER}).\n"
                    "Hint: create one with `tracekit import-skillfactory ... --store DIR` or `tracekit run`."
                )
                raise StoreError(msg)
            if self.root.exists() and any(p for p in self.root.iterdir() if not p.name.startswith(".")):
                msg = f"refusing to create a store in {self.root}: the directory is not empty and holds no {MARKER}."
                raise StoreError(msg)
            from tracekit.store.files import check_output_dir

            check_output_dir(self.root, "store")
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(marker, json.dumps({"format": STORE_FORMAT}).encode())
        self.format = read_marker(marker)
        self._mutex = threading.RLock()
        self._logs: dict[str, CommitLog] = {}
        self._ids: dict[str, dict[str, pl.Series]] = {}
        self._verified: set[tuple[str, str, int]] = set()

    # ------------------------------------------------------------------ paths
    def table_dir(self, table: str) -> Path:
        if table not in MODELS:
            from tracekit.errors import unknown_name

            raise unknown_name("table", table, list(MODELS))
        return self.root / table

    def _log(self, table: str) -> CommitLog:
        with self._mutex:
            if table not in self._logs:
                self._logs[table] = CommitLog(self.table_dir(table))
            return self._logs[table]

    def snapshot(self, table: str) -> Snapshot:
        """``table`` as of its newest commit: the parts that make it up (see :class:`Snapshot`).

        Pass it to :meth:`parts` and :meth:`scan` to read one consistent state while other
        writers commit.
        """
        log = self._log(table)
        if log.exists():
            snap = log.snapshot()
            if snap.commit:
                return snap
        if self.format == 1:
            from tracekit.store.legacy import legacy_snapshot

            return legacy_snapshot(self, table)
        return Snapshot(0)

    def parts(self, table: str, *, snapshot: Snapshot | None = None) -> list[Path]:
        """The part files of ``table`` in commit order (those of ``snapshot`` when given)."""
        snap = snapshot or self.snapshot(table)
        return [self.table_dir(table) / p.name for p in snap.parts]

    # ------------------------------------------------------------------ reads
    def scan(self, table: str, *, snapshot: Snapshot | None = None) -> pl.LazyFrame:
        """A lazy frame over every committed part of ``table`` (each part's size and schema checked,
        rows not re-validated). Repeated ids are dropped (first kept) in the rare tables that may
        hold them (see :attr:`Snapshot.all_checked`); other tables are read as they are."""
        snap = snapshot or self.snapshot(table)
        schema = polars_schema(table)
        if not snap.parts:
            return pl.LazyFrame(schema=schema)
        paths = [str(self._verified_path(table, p, schema)) for p in snap.parts]
        frame = pl.scan_parquet(paths, schema=schema)
        if not snap.all_checked:
            frame = frame.unique(ID_COLUMNS[table], keep="first", maintain_order=True)
        return frame

    def read(self, table: str, *, columns: Iterable[str] | None = None) -> pl.DataFrame:
        """Read ``table`` fully and validate its rows (``columns`` selects and skips row validation)."""
        frame = self.scan(table)
        if columns is not None:
            return frame.select(list(columns)).collect()
        df = frame.collect()
        return validate(table, df, source=str(self.table_dir(table)))

    def ids(self, table: str) -> pl.Series:
        """The id column of ``table`` (each id once)."""
        snap = self.snapshot(table)
        ids = self._ids_of(table, snap.parts).alias(ID_COLUMNS[table])
        return ids if snap.all_checked else ids.unique(maintain_order=True)

    def count(self, table: str) -> int:
        """Rows of ``table``, from its commit log (no file is read unless ids may repeat)."""
        snap = self.snapshot(table)
        return snap.rows if snap.all_checked else self.ids(table).len()

    def counts(self) -> dict[str, int]:
        return {table: self.count(table) for table in MODELS}

    def _verified_path(self, table: str, part: PartEntry, schema: pl.Schema) -> Path:
        """The path of ``part`` after checking it is there, has the size the log says and the table's schema."""
        path = self.table_dir(table) / part.name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            msg = (
                f"part {path} of table {table!r} is missing (the commit log says it holds {part.rows} rows).\n"
                "Hint: restore it from a backup, or drop it from the table with `Store(DIR).forget_missing(TABLE)` "
                "and re-run the command that wrote it; `tracekit info --store DIR` lists every problem of the store."
            )
            raise StoreError(msg) from None
        key = (table, part.name, size)
        if key in self._verified:
            return path
        if size != part.bytes:
            msg = (
                f"part {path} of table {table!r} has {size} bytes, the commit log says {part.bytes}: "
                "the file was changed after it was written.\n"
                "Hint: restore it from a backup; `tracekit info --store DIR` lists every problem of the store."
            )
            raise StoreError(msg)
        self._check_part(table, path, schema)
        self._verified.add(key)
        return path

    def _check_part(self, table: str, path: Path, schema: pl.Schema) -> int:
        try:
            meta = pq.read_metadata(path)
            found = pl.read_parquet_schema(path)
        except Exception as exc:  # pyarrow raises several types for bad files
            msg = (
                f"cannot read {path} (table {table!r}): the file is corrupt or truncated ({exc}).\n"
                "Hint: restore it from a backup or delete it and re-run the command that wrote it."
            )
            raise StoreError(msg) from None
        if dict(found) != dict(schema):
            expected = {k: str(v) for k, v in schema.items()}
            got = {k: str(v) for k, v in found.items()}
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
            msg = (
                f"{path} does not belong to table {table!r}: "
                f"missing columns {missing}, unexpected columns {extra}, wrong types "
                f"{[(k, got[k], expected[k]) for k in wrong]}.\n"
                "Hint: a file written by another tool or another table was put in this directory."
            )
            raise StoreError(msg)
        return meta.num_rows

    def _ids_of(self, table: str, parts: Iterable[PartEntry]) -> pl.Series:
        """The ids of ``parts`` (read once per part and cached), concatenated without copying."""
        parts = list(parts)
        id_col = ID_COLUMNS[table]
        with self._mutex:
            cache = self._ids.setdefault(table, {})
            missing = [p for p in parts if p.name not in cache]
        if missing:
            schema = polars_schema(table)
            paths = [str(self._verified_path(table, p, schema)) for p in missing]
            column = pl.scan_parquet(paths, schema=schema).select(id_col).collect().to_series()
            if column.len() != sum(p.rows for p in missing):
                msg = f"table {table!r}: the parts {paths} hold {column.len()} rows, the commit log says otherwise."
                raise StoreError(msg)
            offset = 0
            with self._mutex:
                for p in missing:
                    cache[p.name] = column.slice(offset, p.rows)
                    offset += p.rows
        with self._mutex:
            pieces = [cache[p.name] for p in parts]
        if not pieces:
            return pl.Series(id_col, [], dtype=pl.Utf8)
        return pl.concat(pieces, rechunk=False)

    def _remember_ids(self, table: str, snap: Snapshot, written: dict[str, pl.Series]) -> None:
        with self._mutex:
            cache = self._ids.setdefault(table, {})
            cache.update(written)
            live = {p.name for p in snap.parts}
            for name in [n for n in cache if n not in live]:
                del cache[name]

    # ----------------------------------------------------------------- writes
    def write(self, table: str, frame: pl.DataFrame, *, known_ids: pl.Series | None = None) -> int:
        """Validate ``frame`` and append the rows whose ids ``table`` lacks, in one commit; return how many.

        Safe with any number of concurrent writers: ids are checked again at commit time
        against what other writers committed meanwhile. ``known_ids`` (ids the caller knows
        the table holds) only saves writing rows that would be dropped at commit anyway.
        """
        from tracekit.store.transaction import Transaction

        with Transaction(self, table) as tx:
            tx.write(table, frame, known_ids=known_ids)
        return tx.rows

    def transaction(self, table: str, *, replace: bool = False):
        """Writes to ``table`` that appear together in one commit (a :class:`Transaction`).

        With ``replace=True`` the commit makes the written rows the table's whole content
        (the old parts are dropped in the same commit): readers see the old table until then.
        Leaving the ``with`` block by an exception writes nothing.

        Examples
        --------
        >>> import tempfile
        >>> from tracekit.schemas import empty_frame
        >>> st = Store(tempfile.mkdtemp() + "/st", create=True)
        >>> with st.transaction("traces", replace=True) as tx:
        ...     _ = tx.write("traces", empty_frame("traces"))
        >>> st.count("traces")
        0
        """
        from tracekit.store.transaction import Transaction

        return Transaction(self, table, replace=replace)

    def clear(self, table: str) -> int:
        """Remove every row of ``table`` (one commit); return how many it held."""
        n = self.count(table)
        with self.transaction(table, replace=True):
            pass
        return n

    def forget_missing(self, table: str) -> list[Path]:
        """Drop from ``table`` the parts whose files are gone, in one commit; return their paths.

        The way back to a readable table when a part was deleted and no backup exists: the
        rows it held are gone, and re-running the command that wrote them writes them again.
        """
        self._writable()
        log = self._log(table)
        with log.lock():
            while True:
                snap = log.snapshot()
                gone = [p.name for p in snap.parts if not (self.table_dir(table) / p.name).exists()]
                if not gone or log.commit(snap, op="forget", add=[], remove=gone):
                    return [self.table_dir(table) / name for name in gone]

    def compact(self, table: str) -> int:
        """Merge the small parts of ``table`` into a few bigger ones, in one commit (rows and ids
        unchanged); return how many parts were merged. See :func:`tracekit.store.transaction.compact`."""
        from tracekit.store.transaction import compact

        return compact(self, table)

    def check_writable(self) -> None:
        """Raise :class:`~tracekit.errors.OutputError` unless files can be created in the store's
        folder and in each table's folder and log (a read-only file system, a permission): called
        before a command writes anything, so that it fails whole instead of half-way."""
        from tracekit.store.files import check_writable_dir
        from tracekit.store.log import LOG_DIR

        folders = [self.root]
        for table in MODELS:
            folders += [d for d in (self.root / table, self.root / table / LOG_DIR) if d.is_dir()]
        for folder in folders:
            check_writable_dir(folder, f"store {self.root}")

    def _writable(self) -> None:
        """Migrate a format-1 store before its first write (see :mod:`tracekit.store.legacy`)."""
        if self.format == 1:
            from tracekit.store.legacy import migrate

            migrate(self)
            self.format = STORE_FORMAT

    # ---------------------------------------------------------------- checking
    def check(self, *, checksums: bool = False) -> list:
        """Every problem of the store, each with its path (see :func:`tracekit.store.check.check_store`)."""
        from tracekit.store.check import check_store

        return check_store(self, checksums=checksums)


@contextmanager
def created_store(root: str | os.PathLike) -> Iterator[Store]:
    """``Store(root, create=True)`` for one command: when this call created the store and the
    block fails before any table holds data, what the call created is removed again (the
    marker, empty table folders, and the store folder when it was new), so a command that fails
    on bad input leaves no empty store behind."""
    root = Path(root)
    folder_existed, existed = root.exists(), (root / MARKER).exists()
    store = Store(root, create=True)
    try:
        yield store
    except BaseException:
        if not existed:
            _remove_new_store(root, keep_folder=folder_existed)
        raise


def _remove_new_store(root: Path, *, keep_folder: bool) -> None:
    import shutil

    tables = [root / t for t in MODELS if (root / t).is_dir()]
    if any(p.is_file() and not p.name.startswith(".") for t in tables for p in t.rglob("*")):
        return  # data arrived after all (another writer): keep it
    for table in tables:
        shutil.rmtree(table, ignore_errors=True)
    (root / MARKER).unlink(missing_ok=True)
    if not keep_folder:
        shutil.rmtree(root, ignore_errors=True)


def read_marker(marker: Path) -> int:
    try:
        version = json.loads(marker.read_text())["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{marker} is corrupt: {exc}") from None
    if version not in READS_FORMATS:
        msg = (
            f"{marker}: store format {version} is not supported (this tracekit reads formats {READS_FORMATS}).\n"
            "Hint: upgrade tracekit."
        )
        raise StoreError(msg)
    return version
