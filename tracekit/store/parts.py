"""The store's marker and its part files: the low facts every other store module shares.

* the marker ``tracekit-store.json`` (``{"format": 3, "id": ...}``): :func:`read_marker`,
  :func:`new_marker`;
* part names (:func:`new_part_name`, :data:`LEGACY_PART_RE` for format-1 names);
* :func:`check_part`: a part file holds the table's columns and types (what every read checks
  before it trusts a file).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from typing import TYPE_CHECKING

from tracekit.errors import StoreError
from tracekit.store.fs import StoreFS

if TYPE_CHECKING:  # loaded by check_part: the marker's name is read without them (tracekit.places)
    import polars as pl

MARKER = "tracekit-store.json"
STORE_FORMAT = 3
READS_FORMATS = (1, 2, 3)
LEGACY_PART_RE = re.compile(r"^part-(\d{6})\.parquet$")
PART_RE = re.compile(r"^part-[0-9a-f]{20}\.parquet$")


def new_part_name() -> str:
    """``part-<8 hex of the time><12 random hex>.parquet``: unique, roughly in write order."""
    return f"part-{int(time.time()):08x}{secrets.token_hex(6)}.parquet"


def new_marker() -> dict:
    return {"format": STORE_FORMAT, "id": secrets.token_hex(16)}


def read_marker(fs: StoreFS) -> dict:
    """The store's marker as a dict with ``format`` (and ``id`` from format 3 on)."""
    where = f"{fs.url.rstrip('/')}/{MARKER}"
    if fs.is_dir(MARKER):
        msg = f"{where} is a folder, not the store's marker file.\nHint: restore the marker from a backup."
        raise StoreError(msg)
    try:
        marker = json.loads(fs.read_bytes(MARKER))
        version = marker["format"]
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(
            where
        ) from None  # no store here (the folder, or a folder above it, is missing)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{where} is corrupt ({exc}).\nHint: restore the marker from a backup."
        raise StoreError(msg) from None
    if version not in READS_FORMATS or isinstance(version, bool):
        msg = (
            f"{where}: store format {version!r} is not supported (this tracekit reads formats {READS_FORMATS}).\n"
            "Hint: upgrade tracekit."
        )
        raise StoreError(msg)
    if version >= 3 and not isinstance(marker.get("id"), str):
        msg = f"{where} is corrupt (no store id).\nHint: restore the marker from a backup."
        raise StoreError(msg)
    return marker


def check_part(
    fs: StoreFS, table: str, path: str, schema: pl.Schema, *, count_rows: bool = False
) -> int | None:
    """Check that the part file at ``path`` holds ``table``'s columns and types, from its footer;
    with ``count_rows``, return its rows (else None).

    A local part's footer is read by polars from the path (pyarrow is not loaded: ``tracekit
    info`` starts faster); other filesystems' through pyarrow on the file object."""
    import polars as pl

    where = f"{fs.url.rstrip('/')}/{path}"
    rows = None
    try:
        if not fs.remote:
            local = fs.scan_source(path)
            if not os.path.exists(local):
                raise FileNotFoundError(local)
            found = pl.Schema(pl.read_parquet_schema(local))
            if count_rows:
                rows = pl.scan_parquet(local).select(pl.len()).collect().item()
        else:
            found, rows = _remote_footer(fs, path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # polars and pyarrow raise several types for bad files
        msg = (
            f"cannot read {where} (table {table!r}): the file is corrupt or truncated ({exc}).\n"
            "Hint: restore it from a backup or delete it and re-run the command that wrote it."
        )
        raise StoreError(msg) from None
    if dict(found) != dict(schema):
        expected = {k: str(v) for k, v in schema.items()}
        got = {k: str(v) for k, v in found.items()}
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        msg = (
            f"{where} does not belong to table {table!r}: "
            f"missing columns {missing}, unexpected columns {extra}, wrong types "
            f"{[(k, got[k], expected[k]) for k in wrong]}.\n"
            "Hint: a file written by another tool or another table was put in this directory."
        )
        raise StoreError(msg)
    return rows


def _remote_footer(fs: StoreFS, path: str) -> tuple[pl.Schema, int]:
    """The polars schema and row count of a part on an object store, from its footer alone
    (pyarrow reads the footer through the file object in ranged requests)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open(path) as f:
        meta = pq.read_metadata(f)
        arrow_schema = meta.schema.to_arrow_schema()
    # (Table.from_batches: arrow's Schema.empty_table would import pandas)
    return pl.Schema(pl.from_arrow(pa.Table.from_batches([], schema=arrow_schema)).schema), meta.num_rows
