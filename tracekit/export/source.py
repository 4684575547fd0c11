"""What every exporter reads and how it writes one file per split.

* :func:`read_table` is the one place exporters read a store table; point it elsewhere
  (a filtered "current view" of the store) and every exporter follows.
* A row's split is its problem's own ``split`` (``train``, ``validation``, ``test``);
  :func:`write_splits` writes ``OUT/<prefix><split>.parquet`` for each split present.
* :class:`Written` is what an exporter returns: the folder, its files and row counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tracekit.errors import StoreError
from tracekit.schemas.tables import SPLITS
from tracekit.store import Store, atomic_write, sink_parquet
from tracekit.store.views import view


def read_table(store: Store, table: str) -> pl.LazyFrame:
    """The rows of ``table`` that exports see: the store's current view (see :mod:`tracekit.store.views`).

    Examples
    --------
    >>> import tempfile
    >>> read_table(Store(tempfile.mkdtemp() + "/st", create=True), "problems").collect().height
    0
    """
    return view(store, table, row_groups=True)  # (flat memory under a slow sink: see Store.scan)


@dataclass(frozen=True)
class Written:
    """An export on disk: ``out`` (the folder), ``files`` (name -> path) and ``counts`` (name -> rows).

    It is path-like (``os.fspath`` gives the folder), so it can be passed wherever a folder is expected.
    """

    target: str
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def __fspath__(self) -> str:
        return os.fspath(self.out)


class Splits:
    """Which split each problem of the store's current view is in, for routing rows by their
    ``problem_id``: kept as 64-bit hashes of the problem ids, split by split (8 bytes a problem,
    never the ids themselves), so exports stream big stores with flat memory.

    A row goes to the split whose problems' hashes hold its problem id's hash: the split of its
    own problem (a row whose problem is missing could be routed only through a 64-bit
    collision, the odds that a view check also rests on). Should two problems share a hash, the
    ids themselves are compared instead.
    """

    def __init__(self, problems: pl.LazyFrame) -> None:
        self.problems = problems.select("problem_id", "split")
        hashed = self.problems.select(pl.col("problem_id").hash(seed=0).alias("h"), "split").collect(
            engine="streaming"
        )
        self.hashes = {
            s: hashed.filter(pl.col("split") == s)["h"] for s in SPLITS if (hashed["split"] == s).any()
        }
        self.by_id = hashed["h"].n_unique() < hashed.height  # two problems share a hash
        self._routed: tuple[pl.LazyFrame, dict[str | None, int]] | None = None

    def of(self, split: str) -> pl.Expr:
        """True for the rows (with a ``problem_id``) whose problem is in ``split``."""
        if self.by_id:
            ids = self.problems.filter(pl.col("split") == split).select("problem_id").collect()
            return pl.col("problem_id").is_in(ids.to_series().implode())
        hashes = self.hashes.get(split, pl.Series("h", [], dtype=pl.UInt64))
        return pl.col("problem_id").hash(seed=0).is_in(hashes.implode())

    def routes(self, rows: pl.LazyFrame) -> dict[str | None, int]:
        """How many of ``rows`` each split present among the problems gets, and (key None) how
        many name a problem outside the problems' view. One streaming pass over ``problem_id``;
        the counts of the last ``rows`` asked about are kept (an export asks twice)."""
        if self._routed is not None and self._routed[0] is rows:
            return self._routed[1]
        counts = (
            rows.select(*(self.of(s).sum().alias(s) for s in self.hashes), pl.len().alias("_rows"))
            .collect(engine="streaming")
            .row(0, named=True)
        )
        routed = {s: int(counts[s]) for s in self.hashes}
        routed[None] = int(counts["_rows"]) - sum(routed.values())
        self._routed = (rows, routed)
        return routed

    def frame(self) -> pl.DataFrame:
        """``problem_id`` and ``split`` of every problem (in memory: for exports that collect)."""
        return self.problems.collect()


def problem_splits(store: Store) -> Splits:
    """The splits of the problems of the store's current view (see :class:`Splits`)."""
    return Splits(read_table(store, "problems"))


def present_splits(splits: Splits, rows: pl.LazyFrame) -> list[str]:
    """The splits (in ``train, validation, test`` order) that hold at least one of ``rows``."""
    routed = splits.routes(rows)
    return [s for s in SPLITS if routed.get(s)]


def require_rows(store: Store, table: str, rows: pl.LazyFrame, what: str, hint: str) -> None:
    """Raise when ``rows`` is empty: an export with no data is a mistake, not an empty file."""
    if rows.select(pl.len()).collect().item() == 0:
        msg = f"nothing to export from {store.root}: no {what} in table {table!r}.\nHint: {hint}"
        raise StoreError(msg)


def write_splits(
    rows: pl.LazyFrame,
    splits: Splits,
    out: Path,
    *,
    prefix: str = "",
    view: Callable[[pl.LazyFrame, str], pl.LazyFrame] | None = None,
) -> tuple[dict[str, Path], dict[str, int]]:
    """Write ``out/<prefix><split>.parquet`` for every split present among ``rows``.

    ``rows`` needs ``problem_id``; ``view(rows_of_split, split)`` turns them into the
    exported columns (default: as they are). Files are streamed and appear atomically, rows in
    the order of ``rows``. When every row goes to one split, they are written unfiltered.
    Returns ``(files, counts)`` keyed by split.
    """
    from tracekit.store.files import refuse_folder

    present = present_splits(splits, rows)
    for split in present:  # before any file is written
        refuse_folder(out / f"{prefix}{split}.parquet")
    out.mkdir(parents=True, exist_ok=True)
    whole = len(present) == 1 and not splits.routes(rows)[None]
    files: dict[str, Path] = {}
    counts: dict[str, int] = {}
    for split in present:
        part = rows if whole else rows.filter(splits.of(split))
        frame = view(part, split) if view else part
        path = atomic_write(out / f"{prefix}{split}.parquet", lambda tmp, f=frame: sink_parquet(f, tmp))
        files[split], counts[split] = path, pq.read_metadata(path).num_rows
    return files, counts


def select_formats(store: Store, traces: pl.LazyFrame, formats: list[str] | None) -> pl.LazyFrame:
    """``traces`` of ``formats`` only (all when None). A name that is no trace format is an error
    with a did-you-mean; formats the store's view lacks are a warning when others are present and
    an error when none is (an export never writes an empty file without saying so)."""
    if not formats:
        return traces
    from tracekit.errors import unknown_name, warn
    from tracekit.rearrange.formats import FORMATS

    for name in formats:
        if name not in FORMATS:
            hint = "format names are case-sensitive."
            raise unknown_name("trace format", name, list(FORMATS), where="export --formats: ", hint=hint)
    present = sorted(traces.select(pl.col("format").unique()).collect()["format"].to_list())
    lacking = [f for f in formats if f not in present]
    if lacking and len(lacking) == len(formats):
        msg = (
            f"nothing to export from {store.root}: no traces of format(s) {lacking} in table 'traces' "
            f"(it holds {present or 'none'}).\nHint: build them with `tracekit rearrange --store ST "
            f"--formats {','.join(lacking)}`, or export the formats it holds."
        )
        raise StoreError(msg)
    if lacking:
        warn(
            f"no traces of format(s) {lacking} in {store.root} (it holds {present}); exporting {formats} without them."
        )
    return traces.filter(pl.col("format").is_in(formats))


def unverifiable(problems: pl.LazyFrame) -> str | None:
    """Why a reward could not score some of ``problems`` (a task without a verifier, a problem
    whose fields its verifier cannot read), or None when every problem can be scored."""
    import json

    from tracekit.errors import UnknownNameError
    from tracekit.tasks import get_task

    tasks = problems.select(pl.col("task").unique(maintain_order=True)).collect()["task"].to_list()
    for task_name in tasks:
        try:
            task = get_task(task_name)
        except UnknownNameError:
            return f"task {task_name!r} has no verifier (it is a label of imported data)"
        rows = problems.filter(pl.col("task") == task_name).select("meta", "question").collect()
        for meta_text, question in rows.iter_rows():
            problem = task.field_error(json.loads(meta_text))
            if problem is not None:
                return f"a {task_name} problem cannot be verified: {problem} (question: {question[:80]!r})"
    return None


def problem_task_sources(problems: pl.LazyFrame) -> dict[str, str]:
    """How to load each task from outside the package that ``problems`` use (name -> source, see
    :func:`tracekit.tasks.task_sources`); built-in tasks and labels without a verifier are left out."""
    from tracekit.tasks import TASKS, task_source

    tasks = problems.select(pl.col("task").unique(maintain_order=True)).collect()["task"].to_list()
    return {t: task_source(t) for t in tasks if t not in TASKS and task_source(t) is not None}


UNVERIFIABLE_HINT = (
    "import Countdown data with `tracekit import-skillfactory --task countdown` (numbers and "
    "target are read from each question), or generate problems with `tracekit run`."
)


def orphans(rows: pl.LazyFrame, splits: Splits) -> int:
    """Rows whose problem is not in the ``problems`` table (they belong to no split and are not exported)."""
    return splits.routes(rows)[None]
