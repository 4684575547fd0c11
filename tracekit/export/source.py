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
    return view(store, table)


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


def problem_splits(store: Store) -> pl.DataFrame:
    """``problem_id`` and ``split`` of every problem."""
    return read_table(store, "problems").select("problem_id", "split").collect()


def present_splits(splits: pl.DataFrame, rows: pl.LazyFrame) -> list[str]:
    """The splits (in ``train, validation, test`` order) that hold at least one of ``rows``."""
    ids = rows.select("problem_id").unique().collect()
    found = set(splits.join(ids, on="problem_id", how="semi")["split"].unique().to_list())
    return [s for s in SPLITS if s in found]


def require_rows(store: Store, table: str, rows: pl.LazyFrame, what: str, hint: str) -> None:
    """Raise when ``rows`` is empty: an export with no data is a mistake, not an empty file."""
    if rows.select(pl.len()).collect().item() == 0:
        msg = f"nothing to export from {store.root}: no {what} in table {table!r}.\nHint: {hint}"
        raise StoreError(msg)


def write_splits(
    rows: pl.LazyFrame,
    splits: pl.DataFrame,
    out: Path,
    *,
    prefix: str = "",
    view: Callable[[pl.LazyFrame, str], pl.LazyFrame] | None = None,
) -> tuple[dict[str, Path], dict[str, int]]:
    """Write ``out/<prefix><split>.parquet`` for every split present among ``rows``.

    ``rows`` needs ``problem_id``; ``view(rows_of_split, split)`` turns them into the
    exported columns (default: as they are). Files are streamed and appear atomically.
    Returns ``(files, counts)`` keyed by split.
    """
    from tracekit.store.files import refuse_folder

    present = present_splits(splits, rows)
    for split in present:  # before any file is written
        refuse_folder(out / f"{prefix}{split}.parquet")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    counts: dict[str, int] = {}
    for split in present:
        ids = splits.filter(pl.col("split") == split).select("problem_id")
        part = rows.join(ids.lazy(), on="problem_id", how="semi", maintain_order="left")
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


def orphans(rows: pl.LazyFrame, splits: pl.DataFrame) -> int:
    """Rows whose problem is not in the ``problems`` table (they belong to no split and are not exported)."""
    return rows.join(splits.lazy(), on="problem_id", how="anti").select(pl.len()).collect().item()
