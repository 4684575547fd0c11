"""A table's parts read one row group at a time, for long streaming writes (exports).

polars' multi-file scan reads ahead over many files whenever its consumer is slower than it
(a sink compressing long texts, on a busy machine): over the 400 parts of a 10-million-sample
store it held up to 1 GB of fetched and decoded pages, against a few hundred MB over 20 parts,
so an export's memory grew with the store. :func:`row_group_scan` gives polars the same rows,
in the same order and in the same pieces (one row group each, as its own scan yields them),
through an IO source that polars pulls from as it needs rows: a few row groups are in memory
at a time, whatever the number of parts, and a sink writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pyarrow.parquet as pq


def row_group_scan(
    sources: list[str], schema: pl.Schema, *, storage_options: dict | None = None, opener=lambda s: s
) -> pl.LazyFrame:
    """A lazy frame of the rows of the parquet files ``sources`` (in order), read one row group
    at a time. ``opener(source)`` is what pyarrow opens to read a file's metadata (see
    :meth:`~tracekit.store.fs.StoreFS.open_source`).

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> path = tempfile.mkdtemp() + "/t.parquet"
    >>> pl.DataFrame({"x": range(5)}).write_parquet(path, row_group_size=2)
    >>> row_group_scan([path], pl.Schema({"x": pl.Int64})).filter(pl.col("x") > 1).collect()["x"].to_list()
    [2, 3, 4]
    """
    from polars.io.plugins import register_io_source

    def pieces(with_columns, predicate, n_rows, _batch_size) -> Iterator[pl.DataFrame]:
        left = n_rows
        for source in sources:
            scan = pl.scan_parquet(source, schema=schema, storage_options=storage_options)
            if with_columns:  # (none asked: every column, so a piece keeps its row count)
                scan = scan.select(with_columns)
            meta = pq.read_metadata(opener(source))
            first = 0
            for group in range(meta.num_row_groups):
                rows = meta.row_group(group).num_rows
                piece = scan.slice(first, rows).collect()
                first += rows
                if predicate is not None:
                    piece = piece.filter(predicate)
                if left is not None:
                    piece, left = piece.head(left), left - min(left, piece.height)
                yield piece
                if left == 0:
                    return

    return register_io_source(pieces, schema=schema)
