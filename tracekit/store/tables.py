"""The store: a folder (or bucket prefix) of parquet tables, the only owner of tables on disk.

Layout (store format 3)::

    STORE/
      tracekit-store.json                marker: {"format": 3, "id": "..."}
      _log/0000000001.json               the store's commit log (see tracekit.store.log)
      problems/part-<token>.parquet      part files, written once, never changed
      samples/ reflections/ traces/ runs/ views/ evals/

* **Validated**: every write is checked against the table's schema
  (:func:`tracekit.schemas.validate`); every read checks each part's size against the
  log and its columns and types, and :meth:`Store.read` validates the rows too.
* **Committed**: the store is exactly the parts its commit log names. A writer fills its
  parts first, then publishes them in one commit record (which may change several tables);
  a killed writer leaves the store as it was. Files the log does not name are never read
  (:meth:`Store.check` reports them); dotfiles are ignored.
* **Several writers**: any number of threads and processes (and machines) may write one store
  at once. Part names are unique, nobody touches another live writer's temporaries, and ids
  are checked against the table at commit time, so no id is written twice.
* **Older formats** (1: part files, no log; 2: one log per table) are read as they are and
  migrated by their first write (see :mod:`tracekit.store.legacy`).
* **Where**: a local folder (or a ``file:`` URL naming one), or ``s3://bucket/prefix``
  (:mod:`tracekit.store.remote`; other URL schemes are refused with a clear error).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from tracekit.errors import StoreError
from tracekit.places import check_dir_shape, check_writable_dir
from tracekit.schemas import ID_COLUMNS, TABLES, polars_schema, validate
from tracekit.store.fs import LocalFS, StoreFS
from tracekit.store.log import LOG_DIR, CommitLog, PartEntry, Snapshot, StoreSnapshot
from tracekit.store.parts import MARKER, STORE_FORMAT, check_part, new_marker, read_marker


def open_fs(root: str | os.PathLike, storage_options: dict | None = None) -> StoreFS:
    """The file system of a store at ``root``: a local folder, or a URL (``s3://...``; other
    schemes are refused by :func:`tracekit.store.remote.remote_fs`). A ``file:`` URL is the local
    folder it names, as fsspec reads it: ``file:///abs/st`` and ``file:/abs/st`` are ``/abs/st``,
    ``file://rel/st`` is ``rel/st`` (relative to the working folder)."""
    text = os.fspath(root)
    if text.startswith("file:"):
        return LocalFS(
            text.removeprefix("file://") if text.startswith("file://") else text.removeprefix("file:")
        )
    if "://" in text:
        from tracekit.store.remote import remote_fs

        return remote_fs(text, storage_options)
    return LocalFS(text)


class Store:
    """A tracekit store rooted at ``root`` (a folder, or a URL such as ``s3://bucket/prefix``).

    Parameters
    ----------
    root
        The store folder or URL.
    create
        Create the store (its marker) when it does not exist yet.
    storage_options
        Options of the object store (endpoint, region, ...; see :mod:`tracekit.store.remote`).

    A ``Store`` object may be shared by threads. It caches what it has read of the commit
    log and the ids of the parts it has read (to check new rows against them).

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> st = Store(tempfile.mkdtemp() + "/st", create=True)
    >>> st.count("samples")
    0
    """

    def __init__(
        self, root: str | os.PathLike, *, create: bool = False, storage_options: dict | None = None
    ) -> None:
        self.fs = open_fs(root, storage_options)
        self.root = self.fs.root if not self.fs.remote else self.fs.url  # a file: URL's folder
        self.url = self.fs.url
        if not self.fs.remote and self.root.exists() and not self.root.is_dir():
            msg = f"store {root} is a file, not a store folder.\nHint: give --store the folder of a store."
            raise StoreError(msg)
        try:
            marker = read_marker(self.fs)
        except FileNotFoundError:
            if not create:
                msg = (
                    f"{self.url} is not a tracekit store (no {MARKER}).\n"
                    "Hint: create one with `tracekit import-skillfactory ... --store DIR` or `tracekit run`."
                )
                raise StoreError(msg) from None
            self._create()
            marker = read_marker(self.fs)
        self.format = marker["format"]
        self.id = marker.get("id", "")
        self._mutex = threading.RLock()
        self._log = CommitLog(self.fs, self.id)
        self._ids: dict[str, dict] = {}  # table -> part name -> sorted id hashes (see id_hashes)
        self._last_read: tuple[str, str, pl.Series] | None = None  # one part's ids (see find_ids)
        self._verified: set[tuple[str, str, int]] = set()

    def _create(self) -> None:
        if any(not e.name.startswith(".") for e in self.fs.list("")):
            msg = f"refusing to create a store in {self.url}: the folder is not empty and holds no {MARKER}."
            raise StoreError(msg)
        if not self.fs.remote:
            check_dir_shape(self.root, "store")
        if not self.fs.put_if_absent(MARKER, json.dumps(new_marker()).encode()):
            return  # another writer created it first: use theirs

    # ------------------------------------------------------------------ paths
    def table_dir(self, table: str) -> Path:
        """The local folder of ``table`` (local stores)."""
        self.check_table(table)
        return Path(self.root) / table

    def check_table(self, table: str) -> None:
        if table not in TABLES:
            from tracekit.errors import unknown_name

            raise unknown_name("table", table, list(TABLES))

    def where(self, path: str = ""):
        """``path`` (relative to the store root) as users see it: a Path in a local store, a URL
        in an object store."""
        if self.fs.remote:
            return f"{self.url.rstrip('/')}/{path}" if path else self.url
        return Path(self.root) / path if path else Path(self.root)

    def part_path(self, table: str, name: str) -> str:
        """The path of a part relative to the store root."""
        return f"{table}/{name}"

    @property
    def log(self) -> CommitLog:
        """The store's commit log (see :mod:`tracekit.store.log`)."""
        return self._log

    def snapshot(self, table: str | None = None) -> Snapshot | StoreSnapshot:
        """The store (or one ``table``) as of the newest commit (see :class:`StoreSnapshot`).

        Pass a store snapshot to :meth:`scan` (and to :func:`tracekit.store.views.view`) to
        read one consistent state of several tables while other writers commit.
        """
        if self.format < STORE_FORMAT:
            from tracekit.store.legacy import legacy_snapshot

            snap = legacy_snapshot(self)
        else:
            snap = self._log.snapshot()
        if table is None:
            return snap
        self.check_table(table)
        return snap.table(table)

    def _table_snapshot(self, table: str, snapshot: Snapshot | StoreSnapshot | None) -> Snapshot:
        if snapshot is None:
            return self.snapshot(table)
        if isinstance(snapshot, StoreSnapshot):
            return snapshot.table(table)
        return snapshot

    def parts(self, table: str, *, snapshot: Snapshot | StoreSnapshot | None = None) -> list[Path]:
        """The part files of ``table`` in commit order (local stores; those of ``snapshot`` when given)."""
        snap = self._table_snapshot(table, snapshot)
        return [self.table_dir(table) / p.name for p in snap.parts]

    # ------------------------------------------------------------------ reads
    def scan(
        self, table: str, *, snapshot: Snapshot | StoreSnapshot | None = None, row_groups: bool = False
    ) -> pl.LazyFrame:
        """A lazy frame over every committed part of ``table`` (each part's size and schema checked,
        rows not re-validated). Repeated ids are dropped (first kept) in the rare tables that may
        hold them (see :attr:`Snapshot.all_checked`); other tables are read as they are.

        ``row_groups``: the parts are read one row group at a time, as polars asks for rows
        (:func:`~tracekit.store.stream.row_group_scan`: the same rows in the same pieces, with
        flat memory under a slow consumer, such as an export's sink; slower for narrow reads)."""
        self.check_table(table)
        snap = self._table_snapshot(table, snapshot)
        schema = polars_schema(table)
        if not snap.parts:
            return pl.LazyFrame(schema=schema)
        sources = [self.fs.scan_source(self.verified_part(table, p, schema)) for p in snap.parts]
        if row_groups:
            from tracekit.store.stream import row_group_scan

            frame = row_group_scan(
                sources, schema, storage_options=self.fs.storage_options(), opener=self.fs.open_source
            )
        else:
            frame = pl.scan_parquet(sources, schema=schema, storage_options=self.fs.storage_options())
        if not snap.all_checked:
            frame = frame.unique(ID_COLUMNS[table], keep="first", maintain_order=True)
        return frame

    def read(self, table: str, *, columns: Iterable[str] | None = None) -> pl.DataFrame:
        """Read ``table`` fully and validate its rows (``columns`` selects and skips row validation)."""
        frame = self.scan(table)
        if columns is not None:
            return frame.select(list(columns)).collect()
        df = frame.collect()
        return validate(table, df, source=f"{self.url}/{table}")

    def ids(self, table: str, *, snapshot: Snapshot | StoreSnapshot | None = None) -> pl.Series:
        """The id column of ``table`` (each id once), read from its parts (nothing kept: to ask
        whether some ids are there, :meth:`find_ids` reads less)."""
        id_col = ID_COLUMNS[table]
        return self.scan(table, snapshot=snapshot).select(id_col).collect().to_series().alias(id_col)

    def count(self, table: str, *, snapshot: Snapshot | StoreSnapshot | None = None) -> int:
        """Rows of ``table``, from its commit log (no file is read unless ids may repeat)."""
        snap = self._table_snapshot(table, snapshot)
        return snap.rows if snap.all_checked else self.ids(table, snapshot=snap).len()

    def counts(self, *, snapshot: StoreSnapshot | None = None) -> dict[str, int]:
        snapshot = snapshot or self.snapshot()
        return {table: self.count(table, snapshot=snapshot) for table in TABLES}

    def verified_part(self, table: str, part: PartEntry, schema: pl.Schema | None = None) -> str:
        """The path of ``part`` after checking it is there, has the size the log says and the
        table's schema (checked once per part and size)."""
        path = self.part_path(table, part.name)
        size = self.fs.size(path)
        where = f"{self.url}/{path}"
        if size is None:
            msg = (
                f"part {where} of table {table!r} is missing (the commit log says it holds {part.rows} rows).\n"
                "Hint: restore it from a backup, or drop it from the table with `Store(DIR).forget_missing(TABLE)` "
                "and re-run the command that wrote it; `tracekit info --store DIR` lists every problem of the store."
            )
            raise StoreError(msg)
        key = (table, part.name, size)
        if key in self._verified:
            return path
        if size != part.bytes:
            msg = (
                f"part {where} of table {table!r} has {size} bytes, the commit log says {part.bytes}: "
                "the file was changed after it was written.\n"
                "Hint: restore it from a backup; `tracekit info --store DIR` lists every problem of the store."
            )
            raise StoreError(msg)
        check_part(self.fs, table, path, schema or polars_schema(table))
        self._verified.add(key)
        return path

    def id_hashes(self, table: str, parts: Iterable[PartEntry]) -> list:
        """The sorted 64-bit hashes of each part's ids (numpy ``uint64``), read once per part and
        cached: 8 bytes a row, the ids themselves are never kept (see :meth:`find_ids`)."""
        import numpy as np

        parts = list(parts)
        id_col = ID_COLUMNS[table]
        with self._mutex:
            cache = self._ids.setdefault(table, {})
            missing = [p for p in parts if p.name not in cache]
        schema = polars_schema(table)
        for group in part_groups(missing, HASH_READ_ROWS):  # a bounded number of ids in memory at once
            sources = [self.fs.scan_source(self.verified_part(table, p, schema)) for p in group]
            scan = pl.scan_parquet(sources, schema=schema, storage_options=self.fs.storage_options())
            hashes = scan.select(id_col).collect().to_series().hash(seed=0).to_numpy()
            if len(hashes) != sum(p.rows for p in group):
                msg = f"table {table!r}: the parts {sources} hold {len(hashes)} rows, the commit log says otherwise."
                raise StoreError(msg)
            offset = 0
            with self._mutex:
                for p in group:
                    cache[p.name] = np.sort(hashes[offset : offset + p.rows])
                    offset += p.rows
        with self._mutex:
            return [cache[p.name] for p in parts]

    def find_ids(self, table: str, parts: Iterable[PartEntry], ids: pl.Series) -> pl.Series:
        """Those of ``ids`` that the rows of ``parts`` hold. Exact, with memory that does not grow
        with the table: the cached hashes (:meth:`id_hashes`) name the parts that may hold one,
        and only those parts' ids are read, one part at a time, and compared as strings."""
        import numpy as np

        parts = list(parts)
        id_col = ID_COLUMNS[table]
        found = [pl.Series(id_col, [], dtype=pl.Utf8)]
        if not parts or not ids.len():
            return found[0]
        wanted = np.sort(ids.hash(seed=0).to_numpy())
        for part, hashes in zip(parts, self.id_hashes(table, parts)):
            if not len(hashes):
                continue
            at = np.minimum(np.searchsorted(hashes, wanted), len(hashes) - 1)
            if not (hashes[at] == wanted).any():
                continue
            column = self._part_ids(table, part)
            found.append(column.filter(column.is_in(ids.implode())))
        return pl.concat(found).unique(maintain_order=True)

    def _part_ids(self, table: str, part: PartEntry) -> pl.Series:
        """The ids of one part; the last part read is kept (callers that look up chunk after
        chunk of one table, like a rearrangement, mostly hit the same part again)."""
        last = self._last_read
        if last is not None and last[:2] == (table, part.name):
            return last[2]
        source = self.fs.scan_source(self.verified_part(table, part))
        id_col = ID_COLUMNS[table]
        column = pl.read_parquet(
            source, columns=[id_col], storage_options=self.fs.storage_options()
        ).to_series()
        self._last_read = (table, part.name, column)
        return column

    def forget_ids(self, snapshot: StoreSnapshot) -> None:
        """Drop the cached id hashes of parts that ``snapshot`` no longer holds."""
        with self._mutex:
            for table, cache in self._ids.items():
                live = {p.name for p in snapshot.table(table).parts}
                for name in [n for n in cache if n not in live]:
                    del cache[name]

    # ----------------------------------------------------------------- writes
    def write(self, table: str, frame: pl.DataFrame) -> int:
        """Validate ``frame`` and append the rows whose ids ``table`` lacks, in one commit; return how many.

        Safe with any number of concurrent writers: ids are checked again at commit time
        against what other writers committed meanwhile.
        """
        from tracekit.store.transaction import Transaction

        with Transaction(self, table) as tx:
            tx.write(table, frame)
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

    def forget_missing(self, table: str) -> list[str]:
        """Drop from ``table`` the parts whose files are gone, in one commit; return their paths.

        The way back to a readable table when a part was deleted and no backup exists: the
        rows it held are gone, and re-running the command that wrote them writes them again.
        """
        self.ensure_current_format()
        with self._log.lock():
            while True:
                snap = self._log.snapshot()
                gone = [
                    p.name
                    for p in snap.table(table).parts
                    if self.fs.size(self.part_path(table, p.name)) is None
                ]
                if not gone or self._log.commit(snap, op="forget", changes={table: {"remove": gone}}):
                    return [self.where(f"{table}/{name}") for name in gone]

    def compact(self, table: str) -> int:
        """Merge the small parts of ``table`` into a few bigger ones, in one commit (rows and ids
        unchanged); return how many parts were merged. See :func:`tracekit.store.transaction.compact`."""
        from tracekit.store.transaction import compact

        return compact(self, table)

    def check_writable(self) -> None:
        """Raise :class:`~tracekit.errors.OutputError` unless files can be created in the store's
        folder, its log and each table's folder (a read-only file system, a permission): called
        before a command writes anything, so that it fails whole instead of half-way."""
        if self.fs.remote:
            return  # object stores: permissions show at the first write, which changes nothing
        folders = [Path(self.root)]
        for sub in [LOG_DIR, *TABLES]:
            if (Path(self.root) / sub).is_dir():
                folders.append(Path(self.root) / sub)
        for folder in folders:
            check_writable_dir(folder, f"store {self.root}")

    def ensure_current_format(self) -> None:
        """Migrate an older store format before its first write (see :mod:`tracekit.store.legacy`)."""
        if self.format < STORE_FORMAT:
            from tracekit.store.legacy import migrate

            migrate(self)
            marker = read_marker(self.fs)
            self.format, self.id = marker["format"], marker["id"]
            self._log = CommitLog(self.fs, self.id)

    def collect_garbage(self) -> None:
        """Remove what is provably no longer needed: temporaries of writers that are gone, parts
        removed more than :data:`tracekit.store.log.GRACE_S` ago, and on object storage parts no
        commit names that are older than :data:`tracekit.store.remote.ORPHAN_AGE_S` (checked
        every 64th commit: listing a bucket costs requests). Called before each commit."""
        import time

        from tracekit.store.log import CHECKPOINT_EVERY, GRACE_S

        self.fs.collect_garbage(["", LOG_DIR, *TABLES])
        snap = self._log.snapshot()
        now = time.time()
        for table, tsnap in snap.tables.items():
            done = [n for n, removed_at in tsnap.retired.items() if now - removed_at > GRACE_S]
            for name in done:
                self.fs.delete(self.part_path(table, name))
            if done:
                self._log.forget_retired(table, done)
        if self.fs.remote and snap.commit % CHECKPOINT_EVERY == 0:
            from tracekit.store.remote import ORPHAN_AGE_S

            for table in TABLES:
                known = {p.name for p in snap.table(table).parts} | set(snap.table(table).retired)
                for entry in self.fs.list(table):
                    if (
                        entry.name.startswith("part-")
                        and entry.name not in known
                        and now - entry.mtime > ORPHAN_AGE_S
                    ):
                        self.fs.delete(self.part_path(table, entry.name))

    # ---------------------------------------------------------------- checking
    def check(self, *, checksums: bool = False) -> list:
        """Every problem of the store, each with its path (see :func:`tracekit.store.check.check_store`)."""
        from tracekit.store.check import check_store

        return check_store(self, checksums=checksums)


@contextmanager
def created_store(root: str | os.PathLike, *, storage_options: dict | None = None) -> Iterator[Store]:
    """``Store(root, create=True)`` for one command: when this call created the store and the
    block fails before any table holds data, what the call created is removed again (the
    marker, empty table folders, and the store folder when it was new), so a command that fails
    on bad input leaves no new empty store behind."""
    fs = open_fs(root, storage_options)
    folder_existed = fs.remote or fs.root.exists()
    try:
        read_marker(fs)
        existed = True
    except FileNotFoundError:
        existed = False
    except StoreError:
        existed = True
    store = Store(root, create=True, storage_options=storage_options)
    try:
        yield store
    except BaseException:
        if not existed:
            _remove_new_store(store, keep_folder=folder_existed)
        raise


def _remove_new_store(store: Store, *, keep_folder: bool) -> None:
    if store.fs.exists(LOG_DIR) and any(not e.name.startswith(".") for e in store.fs.list(LOG_DIR)):
        return  # something was committed after all (another writer): keep it
    if store.fs.remote:
        store.fs.delete(MARKER)
        return
    import shutil

    root = Path(store.root)
    for sub in [LOG_DIR, *TABLES]:
        if (root / sub).is_dir() and not any(
            p.is_file() and not p.name.startswith(".") for p in (root / sub).rglob("*")
        ):
            shutil.rmtree(root / sub, ignore_errors=True)
    (root / MARKER).unlink(missing_ok=True)
    if not keep_folder and not any(not p.name.startswith(".") for p in root.iterdir()):
        shutil.rmtree(root, ignore_errors=True)


HASH_READ_ROWS = 2_000_000  # ids read at once when hashing parts (about 60 MB of strings)


def part_groups(parts: Iterable[PartEntry], limit: int, *, by: str = "rows") -> Iterator[list[PartEntry]]:
    """Consecutive runs of ``parts`` of at most ``limit`` rows (``by="bytes"``: file bytes)
    together, a bigger part alone."""
    group: list[PartEntry] = []
    held = 0
    for part in parts:
        size = getattr(part, by)
        if group and held + size > limit:
            yield group
            group, held = [], 0
        group.append(part)
        held += size
    if group:
        yield group
