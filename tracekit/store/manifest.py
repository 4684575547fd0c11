"""The run manifest: one ``runs`` row per command that changed a store, and the views it defines.

Every command that changes a store (``run``, ``import-skillfactory``, ``rearrange``,
``export``) records itself through :func:`recording`: the configuration and its hash,
tracekit's and its key dependencies' versions, the model and sampling parameters, the
seed, row counts, drop counts by reason and stage timings, so a dataset can be traced
back to how it was made. A command that defines rows (see :mod:`tracekit.store.views`)
also names them. Its ``views`` rows, its ``runs`` row and whatever it staged with
:meth:`RunRecorder.transaction` (``rearrange --replace``'s new traces, an import's rows) are
published by **one commit** at the end: readers see the command's effect whole or not at
all, and a command that fails or is killed changes no view.

When that commit finds that a concurrent command removed rows this command's views name
(another ``rearrange --replace`` took the traces it counted on), it refuses: nothing is
recorded, and the error says to run the command again. So of two racing rearrangements, the
one that commits last defines the view, and its view never names a row the store lacks.

Examples
--------
>>> import tempfile, polars as pl
>>> from tracekit.store import Store
>>> st = Store(tempfile.mkdtemp() + "/st", create=True)
>>> with recording(st, "demo", {"x": 1}, seed=0) as rec:
...     with rec.stage("work"):
...         rec.add_view("problems", pl.Series(["p-1", "p-2"]))
>>> st.read("runs")["command"].to_list(), st.count("views")
(['demo'], 1)
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import polars as pl

from tracekit.errors import StoreError
from tracekit.ids import stable_hash
from tracekit.schemas import ID_COLUMNS, polars_schema
from tracekit.store.log import StoreSnapshot
from tracekit.store.tables import Store
from tracekit.store.transaction import Transaction, Transactions

_PACKAGES = ("tracekit", "polars", "pyarrow", "pandera", "datasets", "transformers", "torch", "trl", "vllm")
VIEW_ROW_IDS = 1_000_000  # ids per ``views`` row (a run's view of a big table spans several rows)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def tracekit_version() -> str:
    """The installed tracekit's version (``tracekit.__version__`` owns the rule)."""
    import tracekit

    return tracekit.__version__


def now() -> str:
    """UTC time with microseconds: ``runs`` rows are ordered by ``finished_at``."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class RunRecorder:
    """Timings, counts and views of one command; :meth:`finish` writes them (use :func:`recording`)."""

    def __init__(
        self,
        store: Store,
        command: str,
        config: dict[str, Any],
        *,
        seed: int | None = None,
        config_hash: str | None = None,
    ) -> None:
        self.store = store
        self.command = command
        self.config = config
        self.config_hash = config_hash or stable_hash(config)
        self.seed = seed
        self.model: str | None = None
        self.model_revision: str | None = None
        self.sampling: dict[str, Any] = {}
        self.started = now()
        self.run_id = "run-" + stable_hash(
            command, self.config_hash, self.started, time.time_ns(), os.getpid()
        )
        self.timings: dict[str, float] = {}
        self.drops: Counter = Counter()
        self.written: Counter = Counter()
        self._views: dict[str, _View] = {}
        store.ensure_current_format()
        self.base = store.snapshot().commit  # rows removed after this are checked at finish
        self.final = Transactions(store, ("views", "runs"))  # with staged rows: one commit at finish
        self._t0 = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (times of a stage entered several times add up)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t, 3)

    def set_model(self, model: str | None, revision: str | None, sampling: dict[str, Any]) -> None:
        """The model that wrote the command's rows and its decoding settings."""
        self.model, self.model_revision, self.sampling = model, revision, sampling

    def add_view(self, table: str, ids: pl.Series, *, extends: bool = False) -> None:
        """Name rows of ``table`` that this command defines (may be called once per chunk; name each
        row once: the ids are stored as given).

        ``extends``: the rows add to the current view of ``table`` (an import) instead of
        replacing it (a run, a rearrangement).

        Every :data:`VIEW_ROW_IDS` ids are staged as a ``views`` row as soon as they are named,
        so a command holds at most that many ids of a view, whatever its size; the rows appear
        together when :meth:`finish` commits them.
        """
        view = self._views.setdefault(table, _View(extends))
        if view.extends != extends:
            msg = f"run recorder: the view of {table!r} cannot both extend and replace"
            raise ValueError(msg)
        view.parts.append(ids.cast(pl.Utf8).rename("id"))
        view.held += ids.len()
        view.total += ids.len()
        while view.held >= VIEW_ROW_IDS:
            self._write_view_row(table, view, _cut(view.parts, VIEW_ROW_IDS))
            view.held -= VIEW_ROW_IDS

    def transaction(self, table: str, *, replace: bool = False, unique: bool = False) -> Transaction:
        """A transaction of ``table`` published by this command's last commit, with its ``runs``
        row and views (see the module docstring); nothing of it appears if the command fails.
        ``unique``: the command writes each id at most once (see :class:`Transaction`)."""
        return self.final.add(table, replace=replace, unique=unique)

    def _write_view_row(self, table: str, view: _View, ids: pl.Series) -> None:
        row = pl.select(  # a list column built from the Series (no Python object per id)
            view_id=pl.lit("v-" + stable_hash(self.run_id, table, view.rows)),
            run_id=pl.lit(self.run_id),
            table=pl.lit(table),
            extends=pl.lit(view.extends),
            ids=ids.implode(),
        )
        self.final.add("views").write("views", row.cast(dict(polars_schema("views"))))
        view.rows += 1

    def add_written(self, table: str, n: int) -> None:
        """Count rows the command wrote to ``table`` (new rows only)."""
        self.written[table] += n

    def abort(self) -> None:
        """Delete everything staged for the last commit (the command failed: it records nothing)."""
        self.final.abort()
        self._views = {}

    def finish(self) -> str:
        """Publish the views, the ``runs`` row and the staged rows in one commit; return the run id."""
        self.timings["total"] = round(time.perf_counter() - self._t0, 3)
        view_counts = {table: view.total for table, view in self._views.items()}
        for table, view in self._views.items():
            if view.held or not view.rows:  # the last ids (a view of no rows is one empty row)
                self._write_view_row(table, view, _cut(view.parts, view.held))
        viewed = sorted(self._views)
        self._views = {}
        counts = {
            "store": self.store.counts(),
            "view": view_counts,
            "new": dict(sorted(self.written.items())),
        }
        row = {
            "run_id": self.run_id,
            "command": self.command,
            "config_json": json.dumps(self.config, sort_keys=True, default=str),
            "config_hash": self.config_hash,
            "tracekit_version": tracekit_version(),
            "model": self.model,
            "model_revision": self.model_revision,
            "sampling_json": json.dumps(self.sampling, sort_keys=True, default=str),
            "seed": self.seed,
            "row_counts_json": json.dumps(counts, sort_keys=True),
            "drops_json": json.dumps(dict(sorted(self.drops.items()))),
            "timings_json": json.dumps(self.timings, sort_keys=True),
            "versions_json": json.dumps(versions(), sort_keys=True),
            "started_at": self.started,
            "finished_at": now(),
        }
        self.final.add("runs").write("runs", pl.DataFrame([row], schema=polars_schema("runs")))
        self.final.commit(check=lambda snap: self._check_named_rows(snap, viewed))
        return self.run_id

    def _check_named_rows(self, snap: StoreSnapshot, tables: list[str]) -> None:
        """Refuse the commit when a command that finished meanwhile removed rows this one's
        views name (see the module docstring)."""
        removals = [r for r in self.store.log.removals_since(self.base) if r[1] in tables]
        for table in sorted({r[1] for r in removals}):
            id_col = ID_COLUMNS[table]
            views = self.final.open["views"]
            named = pl.concat(
                [views.read_pending(p, ["table", "ids"]) for p in views.pending], how="vertical"
            ).filter(pl.col("table") == table)
            named = named.select(pl.col("ids").explode().alias(id_col)).drop_nulls().unique().to_series()
            have = [self.store.find_ids(table, snap.table(table).parts, named)]
            if table in self.final.open:
                have.append(self.final.open[table].staged_ids(named))
            lost = named.filter(~named.is_in(pl.concat(have).implode())).len()
            if lost:
                number, _, op, _ = removals[-1]
                msg = (
                    f"{self.command}: {lost} row(s) of table {table!r} that this command counted on were "
                    f"removed by a command that finished while it ran (commit {number}, {op}); nothing was "
                    "recorded and the current view is unchanged.\n"
                    "Hint: run the command again (it reuses every row it can)."
                )
                raise StoreError(msg)


@dataclass
class _View:
    """The ids a command names for the view of one table, until they fill a ``views`` row."""

    extends: bool
    parts: list[pl.Series] = field(default_factory=list)
    held: int = 0  # ids in ``parts``
    rows: int = 0  # views rows written
    total: int = 0  # ids named


def _cut(parts: list[pl.Series], size: int) -> pl.Series:
    """Remove the first ``size`` ids from ``parts`` and return them as one Series.

    Examples
    --------
    >>> parts = [pl.Series("id", ["a", "b", "c"]), pl.Series("id", ["d", "e"])]
    >>> _cut(parts, 4).to_list(), [p.to_list() for p in parts]
    (['a', 'b', 'c', 'd'], [['e']])
    >>> _cut(parts, 1).to_list(), parts, _cut(parts, 0).to_list()
    (['e'], [], [])
    """
    taken: list[pl.Series] = []
    need = size
    while parts and need:
        part = parts[0]
        if part.len() <= need:
            taken.append(parts.pop(0))
            need -= part.len()
        else:
            taken.append(part.slice(0, need))
            parts[0] = part.slice(need)
            need = 0
    return pl.concat(taken) if taken else pl.Series("id", [], pl.Utf8)


@contextmanager
def recording(
    store: Store,
    command: str,
    config: dict[str, Any],
    *,
    seed: int | None = None,
    config_hash: str | None = None,
) -> Iterator[RunRecorder]:
    """Record one store-changing command: its ``runs`` row (and views) is written when the block
    ends without an error; a failed or killed command records nothing. A store that cannot be
    written (read-only) fails here, before the command does any work."""
    store.check_writable()
    rec = RunRecorder(store, command, config, seed=seed, config_hash=config_hash)
    try:
        yield rec
    except BaseException:
        rec.abort()
        raise
    rec.finish()


def add_rows(store: Store, table: str, frame: pl.DataFrame, *, command: str = "add") -> int:
    """Write ``frame`` to ``table`` and add its rows to the current view, as one recorded command
    (one commit); return how many rows were new. The library's way to put rows a command did not
    make (a hand-built problem set, say) into what exports and reports read.

    Examples
    --------
    >>> import tempfile
    >>> from tracekit.tasks import get_task
    >>> from tracekit.store.views import view
    >>> st = Store(tempfile.mkdtemp() + "/st", create=True)
    >>> add_rows(st, "problems", get_task("multiplication").generate(3, seed=0))
    3
    >>> view(st, "problems").collect().height
    3
    """
    from tracekit.schemas.tables import VIEW_TABLES

    with recording(store, command, {"table": table, "rows": frame.height}) as rec:
        n = rec.transaction(table).write(table, frame)
        if table in VIEW_TABLES:
            rec.add_view(table, frame[ID_COLUMNS[table]], extends=True)
        rec.add_written(table, n)
    return n
