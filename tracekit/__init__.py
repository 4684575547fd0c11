"""tracekit: SkillFactory-style silver reasoning traces, done as real software.

Stages (data flows one way): tasks -> sample -> verify -> reflect -> filter ->
rearrange -> store -> export / trainers. See the README for the command line and
ARCHITECTURE.md for the layout. Importing tracekit changes no process-wide setting.
"""

import os as _os

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


def __getattr__(name: str) -> str:
    """``tracekit.__version__``: the installed distribution's version, read on first use
    (``importlib.metadata`` costs more to import than the command line's start-up)."""
    if name != "__version__":
        raise AttributeError(f"module 'tracekit' has no attribute {name!r}")
    from importlib import metadata

    global __version__
    try:
        __version__ = metadata.version("tracekit")
    except metadata.PackageNotFoundError:  # running from a source tree
        __version__ = "0+unknown"
    return __version__
