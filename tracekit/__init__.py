"""tracekit: SkillFactory-style silver reasoning traces, done as real software.

Stages (data flows one way): tasks -> sample -> verify -> reflect -> filter ->
rearrange -> store -> export / trainers. See the README for the command line and
ARCHITECTURE.md for the layout. Importing tracekit changes no process-wide setting.
"""

import os as _os
from importlib import metadata as _metadata

# polars' allocator (jemalloc) returns freed pages to the OS after 0.5 s by default. Building
# traces allocates and frees gigabytes of text in quick succession, so every part re-faults
# fresh pages: keeping them for jemalloc's own default of 10 s makes rearrangement ~30% faster
# at the same peak memory (measured, see benchmarks/bench_rearrange.py).
_JEMALLOC = "dirty_decay_ms:10000,muzzy_decay_ms:10000"


def tune_allocator() -> None:
    """Keep freed memory for 10 s in polars' allocator (the ``tracekit`` command calls this).

    It only takes effect when called before polars is imported; a value the user set in
    ``_RJEM_MALLOC_CONF`` wins (it is appended last). Library users opt in by calling it first.
    """
    conf = _os.environ.get("_RJEM_MALLOC_CONF", "")
    if not conf.startswith(_JEMALLOC):
        _os.environ["_RJEM_MALLOC_CONF"] = f"{_JEMALLOC},{conf}" if conf else _JEMALLOC


try:
    __version__ = _metadata.version("tracekit")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"
