"""Stores of format 1 (before the commit log): read them as they are, migrate them on the first write.

A format-1 table is every ``part-NNNNNN.parquet`` file of its folder, in name order. Such a
table is read as it is, with repeated ids dropped on read (nothing recorded that they are
unique). The first write to the store migrates it, atomically per table: under the store's
lock, every table's part files are adopted by a first commit (rows, size, checksum; whether
their ids repeat earlier ones), then the marker says format 2. A file that is a byte-for-byte
copy of an earlier part is not adopted (:meth:`Store.check` reports it). Foreign files and
dotfiles are left alone. Migration reads every part once (checksums and ids).
"""

from __future__ import annotations

import json
import re

import polars as pl
import pyarrow.parquet as pq

from tracekit.schemas import ID_COLUMNS, MODELS, polars_schema
from tracekit.store.files import _atomic_write_bytes
from tracekit.store.log import CommitLog, PartEntry, Snapshot, directory_lock

PART_RE = re.compile(r"^part-(\d{6})\.parquet$")


def legacy_snapshot(store, table: str) -> Snapshot:
    """A format-1 table as a snapshot: its ``part-NNNNNN.parquet`` files, not known to hold unique ids."""
    directory = store.table_dir(table)
    if not directory.is_dir():
        return Snapshot(0)
    parts = []
    for path in sorted(p for p in directory.iterdir() if PART_RE.match(p.name)):
        store._check_part(table, path, polars_schema(table))
        rows = pq.read_metadata(path).num_rows
        parts.append(PartEntry(path.name, rows, path.stat().st_size, "", checked=False))
    return Snapshot(0, tuple(parts))


def migrate(store) -> None:
    """Migrate ``store`` from format 1 to 2 (see the module docstring); a no-op when another
    process did it first."""
    from tracekit.store.tables import MARKER, STORE_FORMAT, read_marker

    with directory_lock(store.root):
        if read_marker(store.root / MARKER) == STORE_FORMAT:
            return
        for table in MODELS:
            log = CommitLog(store.table_dir(table))
            with log.lock():
                if log.exists() and log.snapshot().commit:
                    continue  # adopted by an earlier, interrupted migration
                entries = _adopt(store, table)
                if entries:
                    log.commit(Snapshot(0), op="adopt", add=entries, remove=[])
        _atomic_write_bytes(store.root / MARKER, json.dumps({"format": STORE_FORMAT}).encode())


def _adopt(store, table: str) -> list[PartEntry]:
    snap = legacy_snapshot(store, table)
    directory = store.table_dir(table)
    entries, digests = [], set()
    for part in snap.parts:
        path = directory / part.name
        entry = PartEntry.of_file(path, part.rows)
        if (entry.bytes, entry.xxh3) in digests:
            continue  # a copy of an earlier part
        digests.add((entry.bytes, entry.xxh3))
        entries.append(entry)
    if not entries:
        return []
    id_col = ID_COLUMNS[table]
    ids = pl.scan_parquet([str(directory / e.name) for e in entries]).select(id_col).collect().to_series()
    repeated = ~ids.is_first_distinct()
    out, offset = [], 0
    for e in entries:
        checked = not repeated.slice(offset, e.rows).any()
        out.append(PartEntry(e.name, e.rows, e.bytes, e.xxh3, checked=checked))
        offset += e.rows
    return out
