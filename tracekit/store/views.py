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

Each of these commands records the ids it defines in the ``views`` table, with its
``runs`` row (see :mod:`tracekit.store.manifest`); the view of table T is the union of
the ids recorded by the latest command that replaced T's view and by every command that
extended it since. A table no command ever recorded a view for (a store written by the
library's stage functions alone) is viewed whole.

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
>>> view(st, "problems").collect().height  # no view recorded yet: every row
3
>>> with recording(st, "demo", {}) as rec:
...     rec.add_view("problems", problems["problem_id"].head(2))
>>> view(st, "problems").collect().height
2
"""

from __future__ import annotations

import polars as pl

from tracekit.errors import StoreError
from tracekit.schemas import ID_COLUMNS
from tracekit.schemas.tables import VIEW_TABLES
from tracekit.store.tables import Store


def _runs(store: Store) -> pl.DataFrame:
    """Finished runs, oldest first."""
    runs = store.scan("runs").select("run_id", "command", "config_hash", "finished_at").collect()
    return runs.sort("finished_at", "run_id")


def find_run(store: Store, run: str) -> str:
    """The run id that ``run`` names: a run id, or a configuration hash (its latest run)."""
    runs = _runs(store)
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


def view_runs(store: Store, table: str, *, run: str | None = None) -> list[str] | None:
    """The runs whose recorded ids make up the view of ``table`` (oldest first), or None when
    no command recorded a view of it (the whole table is the view).

    ``run``: the view as it was right after that run (a run id or a configuration hash).
    """
    if table not in VIEW_TABLES:
        msg = f"table {table!r} has no view; views exist for {VIEW_TABLES}."
        raise StoreError(msg)
    runs = _runs(store)
    if run is not None:
        last = find_run(store, run)
        runs = runs.head(runs["run_id"].to_list().index(last) + 1)
    if not store.parts("views") or runs.height == 0:
        return None
    defined = (
        store.scan("views")
        .filter(pl.col("table") == table)
        .select("run_id", "extends")
        .unique()
        .collect()
        .join(runs.with_row_index("order"), on="run_id")
        .sort("order", descending=True)
    )
    chain: list[str] = []
    for run_id, extends in defined.select("run_id", "extends").iter_rows():
        chain.append(run_id)
        if not extends:
            break
    return chain[::-1] or None


def view_ids(store: Store, table: str, *, run: str | None = None) -> pl.Series | None:
    """The ids of the rows in the view of ``table``, or None when the view is every row of the
    table (no command recorded one, or its ids cover the table).

    With ``run``, a table no command had recorded a view of by then is an error: which of its
    rows existed at that time is not recorded."""
    chain = view_runs(store, table, run=run)
    if chain is None and run is not None and store.count(table):
        msg = (
            f"store {store.root}: no command had recorded a view of table {table!r} by run {run!r}, "
            "so its rows at that time are unknown.\n"
            f"Hint: read the current view (no run), or `store.scan({table!r})` for every row ever written."
        )
        raise StoreError(msg)
    if chain is None:
        return None
    named = (
        store.scan("views")
        .filter((pl.col("table") == table) & pl.col("run_id").is_in(chain))
        .select(pl.col("ids").explode())
        .drop_nulls()
    )
    # first whether the view covers the table, on 64-bit hashes (8 bytes an id): the ids
    # themselves are only needed, and read, when it does not
    hashes = named.select(pl.col("ids").hash(seed=0)).unique().collect().to_series()
    if hashes.len() >= store.count(table) and _covers(store, table, hashes):
        return None
    return named.unique().collect().to_series().rename(ID_COLUMNS[table])


def narrowing(store: Store, table: str, ids: pl.Series | None) -> pl.Series | None:
    """``ids`` as a filter on ``table``, or None when they name every row the table holds (so a
    reader may skip filtering). Counting is not enough: ids of rows a later ``--replace``
    removed would make a partial view look whole."""
    if ids is None:
        return None
    ids = ids.rename(ID_COLUMNS[table])
    if ids.len() < store.count(table):
        return ids
    return None if _covers(store, table, ids.hash(seed=0)) else ids


def _covers(store: Store, table: str, hashes: pl.Series) -> bool:
    """Does every row's id occur among the ids whose 64-bit ``hashes`` are given? Compared as
    hashes (about 3x faster than a set of strings for a million ids, and 8 bytes an id; a false
    "yes" needs a hash collision, odds about 1e-8). The table's ids are hashed as they are read,
    not kept."""
    table_hashes = store.scan(table).select(pl.col(ID_COLUMNS[table]).hash(seed=0)).collect().to_series()
    return bool(table_hashes.is_in(hashes.implode()).all())


def view_count(store: Store, table: str) -> int:
    """Rows of ``table`` in the current view (a table without views: every row)."""
    if table not in VIEW_TABLES or view_ids(store, table) is None:
        return store.count(table)
    return view(store, table).select(pl.len()).collect().item()


def view_counts(store: Store) -> dict[str, int]:
    """Rows per table in the current view (tables without views: every row)."""
    return {table: view_count(store, table) for table in store.counts()}


def view(store: Store, table: str, *, run: str | None = None) -> pl.LazyFrame:
    """The rows of ``table`` in the current view (or as right after ``run``), as a lazy frame.

    Exporters, reports and evaluation read tables through this; ``store.scan(table)`` is
    every row ever written, history included. A table without views (``runs``, ``evals``, ...)
    is its own view: every row.
    """
    if table not in VIEW_TABLES:
        return store.scan(table)
    ids = view_ids(store, table, run=run)
    scan = store.scan(table)
    if ids is None:
        return scan
    return scan.join(ids.to_frame().lazy(), on=ID_COLUMNS[table], how="semi")
