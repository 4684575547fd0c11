"""The store: the only owner of tables on disk.

* :mod:`~tracekit.store.tables`: :class:`Store`, a directory of validated parquet tables;
* :mod:`~tracekit.store.files`: all-or-nothing files and tracekit's parquet settings;
* :mod:`~tracekit.store.buckets`: splitting big tables into buckets of whole problems;
* :mod:`~tracekit.store.overlap`: a background writer and a read-ahead iterator;
* :mod:`~tracekit.store.manifest`: the ``runs`` table (one row per command that wrote) and
  :func:`~tracekit.store.manifest.recording`, the one way a command records itself;
* :mod:`~tracekit.store.views`: the current view (which rows a store means now).
"""

from tracekit.store.files import atomic_write, atomic_write_text, sink_parquet, write_parquet
from tracekit.store.tables import Store

__all__ = ["Store", "atomic_write", "atomic_write_text", "sink_parquet", "write_parquet"]
