"""Split store tables into buckets of whole problems, so big stores stream with flat memory.

Rearrangement needs all samples and reflections of a problem at once, but not all
problems at once. Two ways to cut a big store into buckets:

* **by row groups** (no copy): the problem ids of every parquet row group are read
  (a small column); row groups that share a problem are joined into one component, and
  components are packed into buckets of about ``target_bytes``. Stores written problem
  by problem (imports, generation runs) split this way into many small components, and
  each bucket is read straight from the part files.
* **by hash** (fallback, when one component would exceed ``4 * target_bytes``, i.e. the
  problems are scattered over the files): one pass over the parts writes each row to a
  temporary Arrow file of bucket ``hash(problem_id) % n``.

Small stores are read whole. Every table is read at one committed state (a
:class:`~tracekit.store.log.Snapshot` taken at the start): parts other writers commit
meanwhile are not seen, and files no commit names are never read. In the rare table that
may repeat an id (see :attr:`~tracekit.store.log.Snapshot.all_checked`), repeats are
dropped bucket by bucket (a row's id fixes its problem, so repeats share a bucket).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tracekit.schemas import ID_COLUMNS, polars_schema
from tracekit.store.tables import Store

TARGET_BYTES = 48 * 1024 * 1024
BATCH_ROWS = 32_768


def iter_problem_buckets(
    store: Store, columns: dict[str, list[str]], *, target_bytes: int = TARGET_BYTES, snapshot=None
) -> Iterator[dict[str, pl.DataFrame]]:
    """Yield ``{table: frame}`` bucket by bucket; each problem's rows land in one bucket.

    ``columns`` maps each table to the columns to load (``problem_id`` among them);
    ``snapshot``: the store snapshot to read (the newest by default).
    """
    snapshot = snapshot or store.snapshot()
    snaps = {table: snapshot.table(table) for table in columns}
    parts = {t: [store.fs.scan_source(store.part_path(t, p.name)) for p in snaps[t].parts] for t in columns}
    scans = {t: store.scan(t, snapshot=snaps[t]) for t in columns}  # checks every part before the long pass
    groups = _row_groups(parts, store.fs.open_source)
    size = sum(g[3] for g in groups)
    if size <= target_bytes:
        yield {t: scans[t].select(cols).collect() for t, cols in columns.items()}
        return
    repeats = {t for t in columns if not snaps[t].all_checked}
    loaded = {
        t: cols if t not in repeats or ID_COLUMNS[t] in cols else [*cols, ID_COLUMNS[t]]
        for t, cols in columns.items()
    }
    buckets = _pack_components(parts, groups, target_bytes, store.fs.open_source)
    if buckets is None:
        pieces = _hash_buckets(store, parts, loaded, max(1, math.ceil(size / target_bytes)))
    else:
        pieces = _component_buckets(parts, groups, buckets, loaded, scans, store.fs.storage_options())
    for piece in pieces:
        for table in repeats:
            piece[table] = piece[table].unique(ID_COLUMNS[table], keep="first", maintain_order=True)
        yield {t: piece[t].select(cols) for t, cols in columns.items()}


def _component_buckets(parts, groups, buckets, columns, scans, options) -> Iterator[dict[str, pl.DataFrame]]:
    empty = {t: scans[t].select(cols).head(0).collect() for t, cols in columns.items()}
    first_row = _first_rows(parts, groups)
    for bucket in buckets:
        out = {}
        for table, cols in columns.items():
            frames = []
            for part_i, path in enumerate(parts[table]):
                wanted = sorted(rg for (t, p, rg) in bucket if t == table and p == part_i)
                for start, stop in _runs(wanted):  # polars reads consecutive row groups as one slice
                    offset = first_row[(table, part_i, start)]
                    length = first_row[(table, part_i, stop)] - offset
                    scan = pl.scan_parquet(path, storage_options=options)
                    frames.append(scan.select(cols).slice(offset, length).collect())
            out[table] = pl.concat(frames) if frames else empty[table]
        yield out


def _runs(sorted_ids: list[int]) -> list[tuple[int, int]]:
    """``[0, 1, 2, 5]`` -> ``[(0, 3), (5, 6)]``: runs of consecutive ids as half-open ranges."""
    runs: list[tuple[int, int]] = []
    for i in sorted_ids:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _first_rows(parts, groups) -> dict[tuple[str, int, int], int]:
    """Row offset of every row group in its file (and of the end, as row group ``n``)."""
    first: dict[tuple[str, int, int], int] = {}
    for table, p_i, rg, _, rows in groups:
        if (table, p_i, 0) not in first:
            first[(table, p_i, 0)] = 0
        first[(table, p_i, rg + 1)] = first[(table, p_i, rg)] + rows
    return first


def _row_groups(parts: dict[str, list[str]], opener) -> list[tuple[str, int, int, int, int]]:
    """(table, part index, row group, uncompressed bytes, rows) of every row group, in file order."""
    out = []
    for table, paths in parts.items():
        for p_i, path in enumerate(paths):
            meta = pq.read_metadata(opener(path))
            for rg in range(meta.num_row_groups):
                out.append((table, p_i, rg, meta.row_group(rg).total_byte_size, meta.row_group(rg).num_rows))
    return out


def _pack_components(parts, groups, target_bytes: int, opener):
    """Buckets of row groups closed under shared problems, or None if the data is too scattered."""
    parent = list(range(len(groups)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, int] = {}
    files: dict[Path, pq.ParquetFile] = {}
    for g, (table, p_i, rg, _, _) in enumerate(groups):
        path = parts[table][p_i]
        pf = files.get(path) or files.setdefault(path, pq.ParquetFile(opener(path)))
        for pid in pf.read_row_group(rg, columns=["problem_id"]).column(0).unique().to_pylist():
            other = owner.setdefault(pid, g)
            if other != g:
                a, b = find(g), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    components: dict[int, list[int]] = {}
    for g in range(len(groups)):
        components.setdefault(find(g), []).append(g)
    buckets, current, current_size = [], [], 0
    for root in sorted(components):
        members = components[root]
        size = sum(groups[g][3] for g in members)
        if size > 4 * target_bytes:
            return None
        if current and current_size + size > target_bytes:
            buckets.append(current)
            current, current_size = [], 0
        current.extend(groups[g][:3] for g in members)
        current_size += size
    if current:
        buckets.append(current)
    return buckets


def _hash_buckets(store: Store, parts, columns, n_buckets: int) -> Iterator[dict[str, pl.DataFrame]]:
    tmp = Path(tempfile.mkdtemp(prefix="tracekit-buckets-"))  # local scratch space, never the store
    try:
        for table, cols in columns.items():
            for p_i, path in enumerate(parts[table]):
                for b_i, batch in enumerate(
                    pq.ParquetFile(store.fs.open_source(path)).iter_batches(
                        batch_size=BATCH_ROWS, columns=cols
                    )
                ):
                    frame = pl.from_arrow(batch)
                    keyed = frame.with_columns(_bucket=(pl.col("problem_id").hash(seed=0) % n_buckets))
                    for (bucket,), piece in keyed.partition_by(
                        "_bucket", as_dict=True, include_key=False
                    ).items():
                        target = tmp / table / f"{bucket:05d}"
                        target.mkdir(parents=True, exist_ok=True)
                        piece.write_ipc(target / f"{p_i:06d}-{b_i:06d}.arrow", compression="uncompressed")
        for bucket in range(n_buckets):
            out = {}
            for table, cols in columns.items():
                files = sorted((tmp / table / f"{bucket:05d}").glob("*.arrow"))
                frames = [pl.read_ipc(f) for f in files]
                out[table] = (
                    pl.concat(frames) if frames else pl.DataFrame(schema=polars_schema(table)).select(cols)
                )
            yield out
            for table in columns:
                shutil.rmtree(tmp / table / f"{bucket:05d}", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
