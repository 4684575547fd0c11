"""The store: a directory of parquet tables, the only owner of tables on disk.

Layout::

    STORE/
      tracekit-store.json          marker with the store format version
      problems/part-000001.parquet
      samples/part-000001.parquet  part-000002.parquet ...
      reflections/ traces/ runs/

* **Validated**: every write is checked against the table's schema
  (:func:`tracekit.schemas.validate`); every read checks each part file's columns and
  types, and :meth:`Store.read` validates the rows too.
* **Atomic**: a part file is written to a hidden temporary name, flushed to disk and
  renamed into place, so an interrupted writer leaves the old state or the new one,
  never a torn part. Leftover temporaries are ignored by readers and removed by the
  next writer.
* **Append-only, deduplicated**: tables grow by part files; rows whose id the table
  already holds are skipped, so re-running the same work never duplicates rows.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tracekit.errors import StoreError
from tracekit.schemas import ID_COLUMNS, MODELS, polars_schema, validate
from tracekit.store.files import TMP_PREFIX, _atomic_write_bytes, atomic_write, write_parquet

STORE_FORMAT = 1
MARKER = "tracekit-store.json"
_PART_RE = re.compile(r"^part-(\d{6})\.parquet$")


class Store:
    """A tracekit store rooted at ``root``.

    Parameters
    ----------
    root
        The store directory.
    create
        Create the directory (and its marker) when it does not exist yet.

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> st = Store(tempfile.mkdtemp() + "/st", create=True)
    >>> st.count("samples")
    0
    """

    def __init__(self, root: str | os.PathLike, *, create: bool = False) -> None:
        self.root = Path(root)
        marker = self.root / MARKER
        if not marker.exists():
            if not create:
                msg = (
                    f"{self.root} is not a tracekit store (no {MARKER}).\n"
                    "Hint: create one with `tracekit import-skillfactory ... --store DIR` or `tracekit run`."
                )
                raise StoreError(msg)
            if self.root.exists() and any(p for p in self.root.iterdir() if not p.name.startswith(".")):
                msg = f"refusing to create a store in {self.root}: the directory is not empty and holds no {MARKER}."
                raise StoreError(msg)
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(marker, json.dumps({"format": STORE_FORMAT}).encode())
        else:
            try:
                meta = json.loads(marker.read_text())
                version = meta["format"]
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"{marker} is corrupt: {exc}") from None
            if version != STORE_FORMAT:
                msg = f"{marker}: store format {version} is not supported (this tracekit reads format {STORE_FORMAT})."
                raise StoreError(msg)

    # ------------------------------------------------------------------ paths
    def table_dir(self, table: str) -> Path:
        if table not in MODELS:
            from tracekit.errors import unknown_name

            raise unknown_name("table", table, list(MODELS))
        return self.root / table

    def parts(self, table: str) -> list[Path]:
        """The part files of ``table`` in write order. A stray file is an error."""
        directory = self.table_dir(table)
        if not directory.exists():
            return []
        parts = []
        for path in sorted(directory.iterdir()):
            if path.name.startswith(TMP_PREFIX):
                continue  # an interrupted write: never part of the table
            if not _PART_RE.match(path.name):
                msg = (
                    f"foreign file {path} in table {table!r}: only part-NNNNNN.parquet files belong there.\n"
                    "Hint: move it out of the store directory."
                )
                raise StoreError(msg)
            parts.append(path)
        return parts

    # ------------------------------------------------------------------ reads
    def scan(self, table: str) -> pl.LazyFrame:
        """A lazy frame over every part of ``table`` (file schemas checked, rows not re-validated)."""
        parts = self.parts(table)
        schema = polars_schema(table)
        if not parts:
            return pl.LazyFrame(schema=schema)
        for path in parts:
            self._check_part(table, path, schema)
        return pl.scan_parquet([str(p) for p in parts], schema=schema)

    def read(self, table: str, *, columns: Iterable[str] | None = None) -> pl.DataFrame:
        """Read ``table`` fully and validate its rows (``columns`` selects and skips row validation)."""
        frame = self.scan(table)
        if columns is not None:
            return frame.select(list(columns)).collect()
        df = frame.collect()
        return validate(table, df, source=str(self.table_dir(table)))

    def ids(self, table: str) -> pl.Series:
        """The id column of ``table``."""
        return self.scan(table).select(ID_COLUMNS[table]).collect().to_series()

    def count(self, table: str) -> int:
        parts = self.parts(table)
        total = 0
        for path in parts:
            total += self._check_part(table, path, polars_schema(table))
        return total

    def _check_part(self, table: str, path: Path, schema: pl.Schema) -> int:
        try:
            meta = pq.read_metadata(path)
            found = pl.read_parquet_schema(path)
        except Exception as exc:  # pyarrow raises several types for bad files
            msg = (
                f"cannot read {path} (table {table!r}): the file is corrupt or truncated ({exc}).\n"
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
                f"{path} does not belong to table {table!r}: "
                f"missing columns {missing}, unexpected columns {extra}, wrong types "
                f"{[(k, got[k], expected[k]) for k in wrong]}.\n"
                "Hint: a file written by another tool or another table was put in this directory."
            )
            raise StoreError(msg)
        return meta.num_rows

    # ----------------------------------------------------------------- writes
    def write(self, table: str, frame: pl.DataFrame, *, known_ids: pl.Series | None = None) -> int:
        """Validate ``frame`` and append the rows whose ids ``table`` lacks; return how many.

        The part file appears atomically or not at all. ``known_ids`` (the ids the
        table holds, tracked by a caller that writes many parts) saves re-reading them.
        """
        schema = polars_schema(table)
        missing = [c for c in schema if c not in frame.columns]
        if not missing:
            frame = frame.select(list(schema))
            cast = {c: t for c, t in schema.items() if frame.schema[c] != t and frame.schema[c] == pl.Null}
            if cast:  # all-null columns built from Python lists come in as Null
                frame = frame.with_columns([pl.col(c).cast(t) for c, t in cast.items()])
        frame = validate(table, frame)
        if frame.height == 0:
            return 0
        id_col = ID_COLUMNS[table]
        existing = known_ids if known_ids is not None else (self.ids(table) if self.parts(table) else None)
        if existing is not None and existing.len():
            frame = frame.filter(~pl.col(id_col).is_in(existing.implode()))
        if frame.height == 0:
            return 0
        self._write_part(table, frame)
        return frame.height

    def _write_part(self, table: str, frame: pl.DataFrame) -> Path:
        directory = self.table_dir(table)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob(TMP_PREFIX + "*"):
            stale.unlink(missing_ok=True)
        parts = self.parts(table)
        number = int(_PART_RE.match(parts[-1].name).group(1)) + 1 if parts else 1
        final = directory / f"part-{number:06d}.parquet"
        return atomic_write(final, lambda tmp: write_parquet(frame, tmp))

    def clear(self, table: str) -> int:
        """Remove every part of ``table``; return how many rows it held."""
        n = self.count(table)
        for path in self.parts(table):
            path.unlink()
        return n

    def counts(self) -> dict[str, int]:
        return {table: self.count(table) for table in MODELS}
