"""The current view: which rows of a table a store means now, and older rows as history.

A store is append-only: changing a run's configuration (fewer samples, another prompt,
other reflection settings, another ``n_max``) adds rows and never deletes the old ones.
What a store *means* is its **current view**: the rows that the latest commands define.

* A ``run`` defines the problems, samples, reflections and traces of its configuration
  (it replaces the view of those four tables).
* ``import-skillfactory`` adds the problems, samples and reflections of its file to the
  view (imports accumulate).
* ``rearrange`` defines the traces (it replaces the view of ``traces``).
* ``export`` reads the current view and defines nothing.

Each of these commands records the ids it defines in the ``views`` table, in the same
commit as its ``runs`` row and its last rows (see :mod:`tracekit.store.manifest`); the view
of table T is the union of the ids recorded by the latest command that replaced T's view and
by every command that extended it since. Runs of one configuration split with ``--shard i/n``
count together: the view is the union of the latest run of every shard. Rows that no
finished command named are not in any view: a command killed half-way (even the first one
of a store) publishes nothing, and rows written by the library's stage functions alone
(``store.write`` outside :func:`~tracekit.store.manifest.recording`) are not current either.
(A store migrated from an older format keeps viewing whole the tables no command had
recorded a view of, as those versions did, until a command records one.)

Every reader takes one snapshot of the store (see :meth:`Store.snapshot`) and reads the
runs, the views and the table from it, so it sees the store before a command's last
commit or after it, never a mix.

Older rows stay reachable: ``view(store, T, run=X)`` is the view of T as it was right
after run X (a run id, or a configuration hash: the latest run with that hash). The one
exception is ``rearrange --replace``, which removes the traces it replaces: an older view
of ``traces`` then lacks them.

Examples
--------
>>> import tempfile, polars as pl
>>> from tracekit.store import Store
>>> from tracekit.store.manifest import recording
>>> from tracekit.tasks import get_task
>>> st = Store(tempfile.mkdtemp() + "/st", create=True)
>>> problems = get_task("multiplication").generate(3, seed=0)
>>> _ = st.write("problems", problems)
>>> view(st, "problems").collect().height  # no finished command named them: not current
0
>>> with recording(st, "demo", {}) as rec:
...     rec.add_view("problems", problems["problem_id"].head(2))
>>> view(st, "problems").collect().height
2
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import polars as pl

from tracekit.errors import StoreError
from tracekit.schemas import ID_COLUMNS, polars_schema
from tracekit.schemas.tables import VIEW_TABLES
from tracekit.store.hashslices import HashSlices, all_in, missing, slices_for
from tracekit.store.log import StoreSnapshot
from tracekit.store.tables import Store, part_groups


def _snap(store: Store, snapshot: StoreSnapshot | None) -> StoreSnapshot:
    return snapshot if snapshot is not None else store.snapshot()


def _runs(store: Store, snap: StoreSnapshot) -> pl.DataFrame:
    """Finished runs, oldest first."""
    runs = store.scan("runs", snapshot=snap).select(
        "run_id", "command", "config_hash", "config_json", "finished_at"
    )
    return runs.collect().sort("finished_at", "run_id")


def find_run(store: Store, run: str, *, snapshot: StoreSnapshot | None = None) -> str:
    """The run id that ``run`` names: a run id, or a configuration hash (its latest run)."""
    runs = _runs(store, _snap(store, snapshot))
    if run in set(runs["run_id"].to_list()):
        return run
    same = runs.filter(pl.col("config_hash") == run)
    if same.height:
        return same["run_id"][-1]
    recent = ", ".join(f"{r} ({c})" for r, c in runs.select("run_id", "command").tail(5).iter_rows())
    msg = (
        f"store {store.root}: no run has the id or configuration hash {run!r}.\n"
        f"Hint: `tracekit info --store {store.root}` lists the runs; the latest are: {recent or 'none'}."
    )
    raise StoreError(msg)


def _shard(config_json: str) -> tuple[int, int] | None:
    """``(i, n)`` of a run made with ``--shard i/n`` (recorded in its configuration)."""
    try:
        shard = json.loads(config_json).get("shard")
        i, n = (int(x) for x in str(shard).split("/"))
    except (ValueError, TypeError, AttributeError):
        return None
    return (i, n) if 0 <= i < n else None


def view_runs(
    store: Store, table: str, *, run: str | None = None, snapshot: StoreSnapshot | None = None
) -> list[str] | None:
    """The runs whose recorded ids make up the view of ``table`` (oldest first), or None when
    no finished command recorded a view of it.

    ``run``: the view as it was right after that run (a run id or a configuration hash).
    """
    if table not in VIEW_TABLES:
        msg = f"table {table!r} has no view; views exist for {VIEW_TABLES}."
        raise StoreError(msg)
    snap = _snap(store, snapshot)
    runs = _runs(store, snap)
    if run is not None:
        last = find_run(store, run, snapshot=snap)
        runs = runs.head(runs["run_id"].to_list().index(last) + 1)
    if not snap.table("views").parts or runs.height == 0:
        return None
    defined = (
        store.scan("views", snapshot=snap)
        .filter(pl.col("table") == table)
        .select("run_id", "extends")
        .unique()
        .collect()
        .join(runs.with_row_index("order"), on="run_id")
        .sort("order", descending=True)
    )
    chain: list[str] = []
    group: tuple[str, int] | None = None  # (config hash, n) of the shards being gathered
    shards: set[int] = set()
    for run_id, extends, config_hash, config_json in defined.select(
        "run_id", "extends", "config_hash", "config_json"
    ).iter_rows():
        shard = None if extends else _shard(config_json)
        if group is None:
            chain.append(run_id)
            if extends:
                continue
            if shard is None:
                break
            group, shards = (config_hash, shard[1]), {shard[0]}
            continue
        if extends:
            chain.append(run_id)
        elif shard is not None and (config_hash, shard[1]) == group:
            if shard[0] not in shards:
                chain.append(run_id)
                shards.add(shard[0])
        else:
            break
    return chain[::-1] or None


def view_ids(
    store: Store, table: str, *, run: str | None = None, snapshot: StoreSnapshot | None = None
) -> pl.Series | None:
    """The ids of the rows in the view of ``table``, or None when the view is every row of the
    table (its ids cover the table).

    A table no finished command recorded a view of has an empty view (see the module
    docstring). With ``run``, such a table is an error: which of its rows existed at that
    time is not recorded."""
    snap = _snap(store, snapshot)
    chain = view_runs(store, table, run=run, snapshot=snap)
    id_col = ID_COLUMNS[table]
    if chain is None:
        if run is not None and store.count(table, snapshot=snap):
            msg = (
                f"store {store.root}: no command had recorded a view of table {table!r} by run {run!r}, "
                "so its rows at that time are unknown.\n"
                f"Hint: read the current view (no run), or `store.scan({table!r})` for every row ever written."
            )
            raise StoreError(msg)
        if snap.legacy or table in snap.whole:
            return None
        return pl.Series(id_col, [], dtype=pl.Utf8)
    # first whether the view covers the table, on 64-bit hashes: the ids themselves are only
    # needed, and read, when it does not
    with _named_hashes(store, table, chain, snap, hash_passes(store, table, snap)) as named:
        if _named_cover(store, table, named, snap):
            return None
    named = (
        store.scan("views", snapshot=snap)
        .filter((pl.col("table") == table) & pl.col("run_id").is_in(chain))
        .select(pl.col("ids").explode())
        .drop_nulls()
    )
    return named.unique().collect().to_series().rename(id_col)


def narrowing(
    store: Store, table: str, ids: pl.Series | None, *, snapshot: StoreSnapshot | None = None
) -> pl.Series | None:
    """``ids`` as a filter on ``table``, or None when they name every row the table holds (so a
    reader may skip filtering). Counting is not enough: ids of rows a later ``--replace``
    removed would make a partial view look whole."""
    if ids is None:
        return None
    snap = _snap(store, snapshot)
    ids = ids.rename(ID_COLUMNS[table])
    if ids.len() < store.count(table, snapshot=snap):
        return ids
    return None if _covers(store, table, ids.hash(seed=0), snap) else ids


COVER_ROWS = 1_000_000  # id hashes in one slice of a check over every id of a table (8 MB)


def hash_passes(store: Store, table: str, snap: StoreSnapshot) -> int:
    """In how many slices of the 64-bit id-hash space (``hash % k == p``) a check over every id
    of ``table`` runs, so that each holds the hashes of at most about :data:`COVER_ROWS` rows."""
    return slices_for(store.count(table, snapshot=snap), COVER_ROWS)


BATCH_BYTES = 8 << 20  # small parts are read together up to this many (compressed) bytes


def _hashes(store: Store, table: str, snap: StoreSnapshot, query) -> Iterator[pl.Series]:
    """``query(scan)`` (a column of 64-bit hashes) of the parts of ``table``, a few small parts
    or one big part at a time (:func:`~tracekit.store.tables.part_groups`): memory holds one batch's column, never the
    table's."""
    schema = polars_schema(table)
    for batch in part_groups(snap.table(table).parts, BATCH_BYTES, by="bytes"):
        sources = [store.fs.scan_source(store.verified_part(table, part, schema)) for part in batch]
        scan = pl.scan_parquet(sources, schema=schema, storage_options=store.fs.storage_options())
        yield query(scan).collect().to_series()


def row_hashes(store: Store, table: str, snap: StoreSnapshot, k: int | None = None) -> HashSlices:
    """The 64-bit hashes of the ids of every part row of ``table``, in ``k`` slices (by default
    :func:`hash_passes`), read once; close the result, or use it in ``with``."""
    rows = HashSlices(hash_passes(store, table, snap) if k is None else k)
    id_col = ID_COLUMNS[table]
    for chunk in _hashes(store, table, snap, lambda scan: scan.select(pl.col(id_col).hash(seed=0))):
        rows.add(chunk)
    return rows


def _named_hashes(store: Store, table: str, runs: list[str], snap: StoreSnapshot, k: int) -> HashSlices:
    """The 64-bit hashes of the ids that the ``views`` rows of ``runs`` name for ``table``, in
    ``k`` slices (the views are read part by part: a part holds one row of at most
    :data:`~tracekit.store.manifest.VIEW_ROW_IDS` ids)."""
    named = HashSlices(k)

    def query(scan: pl.LazyFrame) -> pl.LazyFrame:
        mine = (pl.col("table") == table) & pl.col("run_id").is_in(runs)
        return scan.filter(mine).select(pl.col("ids").explode().drop_nulls().hash(seed=0))

    for chunk in _hashes(store, "views", snap, query):
        named.add(chunk)
    return named


def _named_cover(store: Store, table: str, named: HashSlices, snap: StoreSnapshot) -> bool:
    """Does every row's id occur among ``named`` (id hashes in :func:`hash_passes` slices)?

    Compared as 64-bit hashes (a false "yes" needs a hash collision, odds about 1e-8), slice by
    slice, so memory stays flat in the table's size: each slice holds the hashes of at most
    about :data:`COVER_ROWS` rows of each side, and the table's ids are read once."""
    if named.rows < store.count(table, snapshot=snap):
        return False  # fewer names than rows: some row is not named
    with row_hashes(store, table, snap, named.k) as rows:
        return all(all_in(rows.slice(p), named.slice(p)) for p in range(rows.k))


def _covers(store: Store, table: str, hashes: pl.Series, snap: StoreSnapshot) -> bool:
    """:func:`_named_cover` of ids already in memory (their 64-bit ``hashes``)."""
    with HashSlices(hash_passes(store, table, snap)) as named:
        named.add(hashes)
        return _named_cover(store, table, named, snap)


def view_count(store: Store, table: str, *, snapshot: StoreSnapshot | None = None) -> int:
    """Rows of ``table`` in the current view (a table without views: every row)."""
    snap = _snap(store, snapshot)
    if table not in VIEW_TABLES or view_ids(store, table, snapshot=snap) is None:
        return store.count(table, snapshot=snap)
    return view(store, table, snapshot=snap).select(pl.len()).collect().item()


def view_counts(store: Store, *, snapshot: StoreSnapshot | None = None) -> dict[str, int]:
    """Rows per table in the current view (tables without views: every row)."""
    snap = _snap(store, snapshot)
    return {table: view_count(store, table, snapshot=snap) for table in store.counts(snapshot=snap)}


def view(
    store: Store,
    table: str,
    *,
    run: str | None = None,
    snapshot: StoreSnapshot | None = None,
    row_groups: bool = False,
) -> pl.LazyFrame:
    """The rows of ``table`` in the current view (or as right after ``run``), as a lazy frame.

    Exporters, reports and evaluation read tables through this; ``store.scan(table)`` is
    every row ever written, history included. A table without views (``runs``, ``evals``, ...)
    is its own view: every row. The runs, the views and the table are read from one snapshot
    (``snapshot``, or the newest). ``row_groups``: read the parts one row group at a time (see
    :meth:`Store.scan`; exports stream through this).
    """
    snap = _snap(store, snapshot)
    if table not in VIEW_TABLES:
        return store.scan(table, snapshot=snap, row_groups=row_groups)
    ids = view_ids(store, table, run=run, snapshot=snap)
    scan = store.scan(table, snapshot=snap, row_groups=row_groups)
    if ids is None:
        return scan
    return scan.join(ids.to_frame().lazy(), on=ID_COLUMNS[table], how="semi")


def outside_views(store: Store, table: str, *, snapshot: StoreSnapshot | None = None) -> int:
    """Rows of ``table`` that no finished command named in any view (a command killed half-way,
    rows written by library code alone): they are in no current or older view."""
    snap = _snap(store, snapshot)
    if (
        table not in VIEW_TABLES
        or snap.legacy
        or table in snap.whole
        or not store.count(table, snapshot=snap)
    ):
        return 0
    runs = _runs(store, snap)["run_id"].to_list()
    outside = 0
    with (
        row_hashes(store, table, snap) as rows,
        _named_hashes(store, table, runs, snap, rows.k) as named,
    ):
        for p in range(rows.k):  # (slice by slice: see _named_cover)
            outside += int(missing(rows.slice(p), named.slice(p)).sum())
    return outside
