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
from pathlib import Path

from tracekit.errors import StoreError
from tracekit.schemas import MODELS, polars_schema
from tracekit.store.files import file_digest
from tracekit.store.legacy import PART_RE as LEGACY_PART_RE
from tracekit.store.log import LOG_DIR


@dataclass(frozen=True)
class StoreProblem:
    """One problem of a store: where, and what is wrong."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def check_store(store, *, checksums: bool = False) -> list[StoreProblem]:
    """Every problem of ``store`` (see the module docstring); an empty list when it is sound.

    ``checksums=True`` also re-reads every part and compares its xxh3 with the log's
    (slower: it reads the whole store).
    """
    from tracekit.store.tables import MARKER

    problems = []
    for path in sorted(store.root.iterdir()):
        if not path.name.startswith(".") and path.name != MARKER and path.name not in MODELS:
            problems.append(StoreProblem(path, "not part of a tracekit store (ignored)"))
    for table in MODELS:
        directory = store.table_dir(table)
        if directory.is_dir():
            problems.extend(_check_table(store, table, directory, checksums=checksums))
    return problems


def _check_table(store, table: str, directory: Path, *, checksums: bool) -> list[StoreProblem]:
    log = store._log(table)
    problems = [StoreProblem(path, what) for path, what in log.problems()]
    try:
        snap = store.snapshot(table)
    except StoreError as exc:
        return problems or [StoreProblem(log.dir, str(exc).splitlines()[0])]
    schema = polars_schema(table)
    by_size: dict[int, list] = {}
    for part in snap.parts:
        path = directory / part.name
        by_size.setdefault(part.bytes, []).append(part)
        if not path.exists():
            problems.append(
                StoreProblem(path, f"missing: the commit log says this part holds {part.rows} rows")
            )
            continue
        size = path.stat().st_size
        if size != part.bytes:
            problems.append(StoreProblem(path, f"changed: {size} bytes, the commit log says {part.bytes}"))
            continue
        try:
            store._check_part(table, path, schema)
        except StoreError as exc:
            problems.append(
                StoreProblem(path, "unreadable: " + str(exc).splitlines()[0].replace(str(path), "it"))
            )
            continue
        if checksums and part.xxh3 and file_digest(path) != part.xxh3:
            problems.append(StoreProblem(path, "changed: its checksum differs from the commit log's"))
    known = {p.name for p in snap.parts} | set(snap.retired)
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name == LOG_DIR or path.name in known:
            continue
        problems.append(StoreProblem(path, _unknown(path, by_size, directory)))
    return problems


def _unknown(path: Path, by_size: dict[int, list], directory: Path) -> str:
    if path.is_file():
        size = path.stat().st_size
        if size in by_size:
            digest = file_digest(path)
            for part in by_size[size]:
                if digest == (part.xxh3 or file_digest(directory / part.name)):
                    return f"a copy of part {part.name}, not in the commit log (not read)"
        if (
            path.name.startswith("part-")
            and path.name.endswith(".parquet")
            and not LEGACY_PART_RE.match(path.name)
        ):
            return "a part no commit names (an interrupted commit, or copied in): not read"
    return "not a part of the table (not read)"
