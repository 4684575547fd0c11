"""Split store tables into buckets of whole problems, so big stores stream with flat memory.

Rearrangement needs all samples and reflections of a problem at once, but not all
problems at once. A store larger than ``target_bytes`` is split by a hash of
``problem_id`` into buckets written as temporary Arrow files (one pass over the parts,
batch by batch); each bucket is then loaded, processed and freed in turn. Small stores
skip the temporary files.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import polars as pl
import pyarrow.parquet as pq

from tracekit.store import Store

TARGET_BYTES = 96 * 1024 * 1024
BATCH_ROWS = 32_768


def _uncompressed_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        meta = pq.read_metadata(path)
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total


def iter_problem_buckets(
    store: Store, columns: dict[str, list[str]], *, target_bytes: int = TARGET_BYTES
) -> Iterator[dict[str, pl.DataFrame]]:
    """Yield ``{table: frame}`` bucket by bucket; each problem's rows land in one bucket.

    ``columns`` maps each table to the columns to load (``problem_id`` among them).
    """
    parts = {table: store.parts(table) for table in columns}
    for table in columns:
        store.scan(table)  # checks every part's schema before the long pass
    size = sum(_uncompressed_bytes(p) for p in parts.values())
    n_buckets = max(1, math.ceil(size / target_bytes))
    if n_buckets == 1:
        yield {t: store.scan(t).select(cols).collect() for t, cols in columns.items()}
        return
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-buckets-", dir=store.root))
    try:
        for table, cols in columns.items():
            for p_i, path in enumerate(parts[table]):
                for b_i, batch in enumerate(pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=cols)):
                    frame = pl.from_arrow(batch)
                    keyed = frame.with_columns(_bucket=(pl.col("problem_id").hash(seed=0) % n_buckets))
                    for (bucket,), piece in keyed.partition_by("_bucket", as_dict=True, include_key=False).items():
                        target = tmp / table / f"{bucket:05d}"
                        target.mkdir(parents=True, exist_ok=True)
                        piece.write_ipc(target / f"{p_i:06d}-{b_i:06d}.arrow", compression="uncompressed")
        for bucket in range(n_buckets):
            out = {}
            for table, cols in columns.items():
                files = sorted((tmp / table / f"{bucket:05d}").glob("*.arrow"))
                frames = [pl.read_ipc(f) for f in files]
                out[table] = pl.concat(frames) if frames else store.scan(table).select(cols).head(0).collect()
            yield out
            for table in columns:
                shutil.rmtree(tmp / table / f"{bucket:05d}", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
