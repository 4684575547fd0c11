"""The run manifest: one ``runs`` row per command that changed a store, and the views it defines.

Every command that changes a store (``run``, ``import-skillfactory``, ``rearrange``,
``export``) records itself through :func:`recording`: the configuration and its hash,
tracekit's and its key dependencies' versions, the model and sampling parameters, the
seed, row counts, drop counts by reason and stage timings, so a dataset can be traced
back to how it was made. A command that defines rows (see :mod:`tracekit.store.views`)
also names them; its views are written just before its ``runs`` row, which is what
makes them count: a command that fails or is killed leaves no ``runs`` row and so
changes no view.

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
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import polars as pl

from tracekit.ids import stable_hash
from tracekit.schemas import polars_schema
from tracekit.store.tables import Store

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
    try:
        return metadata.version("tracekit")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


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
        self._views: dict[str, tuple[bool, list[pl.Series]]] = {}
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
        """
        mode, parts = self._views.setdefault(table, (extends, []))
        if mode != extends:
            msg = f"run recorder: the view of {table!r} cannot both extend and replace"
            raise ValueError(msg)
        parts.append(ids.cast(pl.Utf8).rename("id"))

    def add_written(self, table: str, n: int) -> None:
        """Count rows the command wrote to ``table`` (new rows only)."""
        self.written[table] += n

    def finish(self) -> str:
        """Write the views, then the ``runs`` row; return the run id."""
        self.timings["total"] = round(time.perf_counter() - self._t0, 3)
        view_counts = {table: sum(p.len() for p in parts) for table, (_, parts) in self._views.items()}
        if self._views:  # one commit; one views row (and part) per VIEW_ROW_IDS ids, built as it is written
            with self.store.transaction("views") as views:
                for table, (extends, parts) in self._views.items():
                    for number, ids in enumerate(_slices(parts, VIEW_ROW_IDS)):
                        row = pl.select(  # a list column built from the Series (no Python object per id)
                            view_id=pl.lit("v-" + stable_hash(self.run_id, table, number)),
                            run_id=pl.lit(self.run_id),
                            table=pl.lit(table),
                            extends=pl.lit(extends),
                            ids=ids.implode(),
                        )
                        views.write("views", row.cast(dict(polars_schema("views"))))
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
        self.store.write("runs", pl.DataFrame([row], schema=polars_schema("runs")))
        return self.run_id


def _slices(parts: list[pl.Series], size: int) -> Iterator[pl.Series]:
    """The ids of ``parts`` in order, cut into Series of ``size`` (the last may be shorter; no
    ids: one empty Series). Parts are consumed as they are cut, so the ids exist once, not twice.

    Examples
    --------
    >>> parts = [pl.Series("id", ["a", "b", "c"]), pl.Series("id", ["d"]), pl.Series("id", ["e", "f"])]
    >>> [s.to_list() for s in _slices(parts, 4)], parts
    ([['a', 'b', 'c', 'd'], ['e', 'f']], [])
    >>> [s.to_list() for s in _slices([], 4)]
    [[]]
    """
    buffer: list[pl.Series] = []
    held = emitted = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        while held + part.len() >= size:
            take = size - held
            buffer.append(part.slice(0, take))
            part = part.slice(take)
            yield pl.concat(buffer)
            buffer, held, emitted = [], 0, emitted + 1
        if part.len():
            buffer.append(part)
            held += part.len()
    if held or not emitted:
        yield pl.concat(buffer) if buffer else pl.Series("id", [], pl.Utf8)


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
    yield rec
    rec.finish()
