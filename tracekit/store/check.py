"""Integrity check of a store: every part the logs name is there and intact, nothing else is read.

:func:`check_store` lists, each with its path:

* a part named by the commit log that is missing, has another size, or (with
  ``checksums=True``) other bytes than when it was committed, or cannot be read;
* a file in a table folder that no commit names: a byte-for-byte copy of a part, a part
  file of an interrupted commit, or a foreign file (none of them is read);
* damage to a commit log (a deleted or unreadable record);
* anything else in the store folder that is not a table.

Dotfiles (``.DS_Store``, editor swap files, writers' temporaries, locks) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracekit.errors import StoreError
from tracekit.schemas import TABLES, polars_schema
from tracekit.store.fs import digest_of
from tracekit.store.log import LOG_DIR
from tracekit.store.parts import LEGACY_PART_RE, MARKER, check_part


@dataclass(frozen=True)
class StoreProblem:
    """One problem of a store: where, and what is wrong."""

    path: object  # a Path for local stores, a URL string for object stores
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _where(store, path: str):
    return store.where(path)


def check_store(store, *, checksums: bool = False) -> list[StoreProblem]:
    """Every problem of ``store`` (see the module docstring); an empty list when it is sound.

    ``checksums=True`` also re-reads every part and compares its xxh3 with the log's
    (slower: it reads the whole store).
    """
    problems = []
    for entry in store.fs.list(""):
        if not entry.name.startswith(".") and entry.name not in (MARKER, LOG_DIR, *TABLES):
            problems.append(StoreProblem(_where(store, entry.name), "not part of a tracekit store (ignored)"))
    if store.format >= 3:
        problems += [StoreProblem(_where(store, path), what) for path, what in store.log.problems()]
    try:
        snap = store.snapshot()
    except StoreError as exc:
        return problems or [StoreProblem(_where(store, LOG_DIR), str(exc).splitlines()[0])]
    for table in TABLES:
        if snap.table(table).parts or store.fs.is_dir(table):
            problems.extend(_check_table(store, table, snap.table(table), checksums=checksums))
    return problems


def _check_table(store, table: str, snap, *, checksums: bool) -> list[StoreProblem]:
    problems = []
    url = store.url.rstrip("/")
    schema = polars_schema(table)
    by_size: dict[int, list] = {}
    for part in snap.parts:
        path = f"{table}/{part.name}"
        by_size.setdefault(part.bytes, []).append(part)
        size = store.fs.size(path)
        if size is None:
            problems.append(
                StoreProblem(
                    _where(store, path), f"missing: the commit log says this part holds {part.rows} rows"
                )
            )
            continue
        if size != part.bytes:
            problems.append(
                StoreProblem(_where(store, path), f"changed: {size} bytes, the commit log says {part.bytes}")
            )
            continue
        try:
            check_part(store.fs, table, path, schema)
        except (StoreError, FileNotFoundError) as exc:
            text = str(exc).splitlines()[0].replace(f"{url}/{path}", "it")
            problems.append(StoreProblem(_where(store, path), "unreadable: " + text))
            continue
        if checksums and part.xxh3 and digest_of(store.fs, path) != part.xxh3:
            problems.append(
                StoreProblem(_where(store, path), "changed: its checksum differs from the commit log's")
            )
    known = {p.name for p in snap.parts} | set(snap.retired)
    for entry in store.fs.list(table):
        if entry.name.startswith(".") or entry.name == LOG_DIR or entry.name in known:
            continue  # (a table's own _log folder: format 2's, no longer read)
        problems.append(
            StoreProblem(_where(store, f"{table}/{entry.name}"), _unknown(store, table, entry, by_size))
        )
    return problems


def _unknown(store, table: str, entry, by_size: dict[int, list]) -> str:
    if not entry.is_dir:
        if entry.size in by_size:
            digest = digest_of(store.fs, f"{table}/{entry.name}")
            for part in by_size[entry.size]:
                if digest == (part.xxh3 or digest_of(store.fs, f"{table}/{part.name}")):
                    return f"a copy of part {part.name}, not in the commit log (not read)"
        if (
            entry.name.startswith("part-")
            and entry.name.endswith(".parquet")
            and not LEGACY_PART_RE.match(entry.name)
        ):
            return "a part no commit names (an interrupted commit, or copied in): not read"
    return "not a part of the table (not read)"
