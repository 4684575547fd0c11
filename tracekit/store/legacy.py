"""Stores of older formats: read them as they are, migrate them on the first write.

* **Format 1** (before any commit log): a table is every ``part-NNNNNN.parquet`` file of its
  folder, in name order, with repeated ids dropped on read.
* **Format 2**: one commit log per table (``TABLE/_log/NNNNNNNNNN.json``), each record the
  parts it adds and removes.

Both are read into a :class:`~tracekit.store.log.StoreSnapshot` (``legacy=True``: a table no
command recorded a view of is then viewed whole, as those versions did). The first write
migrates the store to format 3 under the store folder's lock: every table's parts are adopted
by the first record of the store log (rows, size, checksum; whether their ids repeat earlier
ones, which is read from the parts, since a format-2 table folder copied over from another
store can hold repeats its log does not know of), tables that hold rows but no recorded view
get one (a ``migrate`` run naming every row, which is what they meant), and then the marker
says format 3. A byte-for-byte copy of an earlier part is not adopted. Foreign files and
dotfiles are left alone; the old ``_log`` folders stay as they are (nothing reads them again).
"""

from __future__ import annotations

import json
import re

import polars as pl

from tracekit.errors import StoreError
from tracekit.schemas import ID_COLUMNS, TABLES, polars_schema
from tracekit.store.fs import digest_of
from tracekit.store.log import LOG_DIR, PartEntry, Snapshot, StoreSnapshot, parse_record
from tracekit.store.parts import LEGACY_PART_RE, MARKER, check_part, new_marker, read_marker

_COMMIT_RE = re.compile(r"^(\d{10})\.json$")


def legacy_snapshot(store) -> StoreSnapshot:
    """A format-1 or format-2 store as a snapshot (see the module docstring)."""
    tables = {}
    for table in TABLES:
        tables[table] = _format1_table(store, table) if store.format == 1 else _format2_table(store, table)
    return StoreSnapshot(0, tables, legacy=True)


def _format1_table(store, table: str) -> Snapshot:
    parts = []
    for entry in store.fs.list(table):
        if LEGACY_PART_RE.match(entry.name):
            rows = check_part(store.fs, table, f"{table}/{entry.name}", polars_schema(table), count_rows=True)
            parts.append(PartEntry(entry.name, rows, entry.size, "", checked=False))
    return Snapshot(0, tuple(parts))


def _format2_table(store, table: str) -> Snapshot:
    folder = f"{table}/{LOG_DIR}"
    numbers = sorted(int(m.group(1)) for e in store.fs.list(folder) if (m := _COMMIT_RE.match(e.name)))
    parts: dict[str, PartEntry] = {}
    retired: dict[str, float] = {}
    for expected, number in enumerate(numbers, start=1):
        where = f"{store.url}/{folder}/{number:010d}.json"
        if number != expected:
            raise StoreError(
                f"the commit log {store.url}/{folder} lacks commit {expected}.\nHint: restore it."
            )
        try:
            raw = json.loads(store.fs.read_bytes(f"{folder}/{number:010d}.json"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {where} ({exc}).\nHint: restore it from a backup.") from None
        if not isinstance(raw, dict):
            raise StoreError(f"{where} is not a commit record.\nHint: restore it from a backup.")
        record = parse_record(
            json.dumps(
                {
                    "commit": raw.get("commit"),
                    "time": raw.get("time"),
                    "tables": {table: {"add": raw.get("add"), "remove": raw.get("remove")}},
                }
            ).encode(),
            where,
            number,
        )
        change = record["tables"][table]
        for name in change["remove"]:
            if parts.pop(name, None) is not None:
                retired[name] = float(record["time"])
        for part in change["add"]:  # unchecked until migrated: a copied-over folder may repeat ids
            parts[part.name] = PartEntry(part.name, part.rows, part.bytes, part.xxh3, checked=False)
    return Snapshot(0, tuple(parts.values()), retired)


def migrate(store) -> None:
    """Migrate ``store`` to format 3 (see the module docstring); a no-op when another process
    did it first."""
    from tracekit.store.log import CommitLog

    with store.fs.lock(""):
        marker = read_marker(store.fs)
        if marker["format"] >= 3:
            return
        snap = legacy_snapshot(store)
        changes = {}
        for table in TABLES:
            entries = _adopt(store, table, snap.table(table))
            if entries or snap.table(table).retired:
                changes[table] = {"add": entries, "remove": [], "retired": dict(snap.table(table).retired)}
        whole = views_to_record(store, snap)
        new = new_marker()
        log = CommitLog(store.fs, new["id"])
        if log.snapshot().commit == 0:  # an earlier, interrupted migration may have written it
            record = {
                "commit": 1,
                "store": new["id"],
                "prev": "",
                "op": "adopt",
                "time": _now(),
                "writer": "migration",
                "viewed_whole": whole,
                "tables": {
                    t: {"add": [p.to_json() for p in c["add"]], "remove": [], "retired": c["retired"]}
                    for t, c in changes.items()
                },
            }
            existing = [e for e in store.fs.list(LOG_DIR) if _COMMIT_RE.match(e.name)]
            if existing:  # a half-done migration with another id: its log is ours to redo
                for e in existing:
                    store.fs.delete(f"{LOG_DIR}/{e.name}")
            store.fs.put_if_absent(f"{LOG_DIR}/0000000001.json", json.dumps(record, sort_keys=True).encode())
        store.fs.put(MARKER, json.dumps(new).encode())


def views_to_record(store, snap: StoreSnapshot) -> list[str]:
    """Tables with rows but no recorded view in a legacy snapshot (viewed whole by old versions)."""
    from tracekit.schemas.tables import VIEW_TABLES

    have = set()
    if snap.table("views").parts and snap.table("runs").parts:
        have = set(store.scan("views", snapshot=snap).select("table").unique().collect()["table"].to_list())
    return [t for t in VIEW_TABLES if snap.table(t).parts and t not in have]


def _now() -> float:
    import time

    return time.time()


def _adopt(store, table: str, snap: Snapshot) -> list[PartEntry]:
    entries, digests = [], set()
    for part in snap.parts:
        path = f"{table}/{part.name}"
        size = store.fs.size(path)
        if size is None:
            continue  # a part the old log names is gone: `tracekit info` reported it
        digest = part.xxh3 or digest_of(store.fs, path)
        if (size, digest) in digests:
            continue  # a copy of an earlier part
        digests.add((size, digest))
        entries.append(PartEntry(part.name, part.rows, size, digest, part.checked))
    if not entries:
        return []
    id_col = ID_COLUMNS[table]
    sources = [store.fs.scan_source(f"{table}/{e.name}") for e in entries]
    ids = pl.scan_parquet(sources, storage_options=store.fs.storage_options()).select(id_col).collect()
    repeated = ~ids.to_series().is_first_distinct()
    out, offset = [], 0
    for e in entries:
        checked = not repeated.slice(offset, e.rows).any()  # read from the parts, not the old log
        out.append(PartEntry(e.name, e.rows, e.bytes, e.xxh3, checked=checked))
        offset += e.rows
    return out
