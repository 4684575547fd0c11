"""The store: the only owner of tables on disk.

* :mod:`~tracekit.store.tables`: :class:`Store`, a directory of validated parquet tables;
* :mod:`~tracekit.store.fs`: the file system under a store (:class:`~tracekit.store.fs.LocalFS`;
  object stores in :mod:`~tracekit.store.remote`);
* :mod:`~tracekit.store.parts`: the marker and part files (names, schema check);
* :mod:`~tracekit.store.log`: the store's commit log (which parts make up every table);
* :mod:`~tracekit.store.transaction`: writes that appear in one commit, safe with concurrent writers;
* :mod:`~tracekit.store.check`: the integrity check (missing, changed or unknown parts);
* :mod:`~tracekit.store.legacy`: format-1 and format-2 stores (read as they are, migrated on the first write);
* :mod:`~tracekit.store.files`: all-or-nothing files and tracekit's parquet settings;
* :mod:`~tracekit.store.buckets`: splitting big tables into buckets of whole problems;
* :mod:`~tracekit.store.overlap`: a background writer and a read-ahead iterator;
* :mod:`~tracekit.store.manifest`: the ``runs`` table (one row per command that wrote) and
  :func:`~tracekit.store.manifest.recording`, the one way a command records itself;
* :mod:`~tracekit.store.views`: the current view (which rows a store means now);
* :mod:`~tracekit.store.hashslices`: id hashes in slices of the hash space (checks over every id);
* :mod:`~tracekit.store.stream`: parts read one row group at a time (exports' flat memory);
* :mod:`~tracekit.store.info`: what ``tracekit info`` reports (contents, runs, warnings).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded on first use (below): `tracekit score` writes through files.py alone
    from tracekit.store.check import StoreProblem
    from tracekit.store.files import atomic_write, atomic_write_text, sink_parquet, write_parquet
    from tracekit.store.log import PartEntry, Snapshot, StoreSnapshot
    from tracekit.store.tables import Store
    from tracekit.store.transaction import Transaction

_HOME = {
    "StoreProblem": "check",
    "atomic_write": "files",
    "atomic_write_text": "files",
    "sink_parquet": "files",
    "write_parquet": "files",
    "PartEntry": "log",
    "Snapshot": "log",
    "StoreSnapshot": "log",
    "Store": "tables",
    "Transaction": "transaction",
}


def __getattr__(name: str):
    """The package's names, each imported from its module on first use (the store's modules
    load polars; a command that only writes a file atomically does not need them)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'tracekit.store' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"tracekit.store.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "PartEntry",
    "Snapshot",
    "Store",
    "StoreProblem",
    "StoreSnapshot",
    "Transaction",
    "atomic_write",
    "atomic_write_text",
    "sink_parquet",
    "write_parquet",
]
