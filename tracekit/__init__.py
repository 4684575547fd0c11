"""tracekit: SkillFactory-style silver reasoning traces, done as real software.

Stages (data flows one way): tasks -> sample -> verify -> reflect -> filter ->
rearrange -> store -> export / trainers. See the README for the command line.
"""

import os as _os
from importlib import metadata as _metadata

# polars' allocator (jemalloc) returns freed pages to the OS after 0.5 s by default. Building
# traces allocates and frees gigabytes of text in quick succession, so every part re-faults
# fresh pages: keeping them for jemalloc's own default of 10 s makes rearrangement ~30% faster
# at the same peak memory (measured, see benchmarks/bench_rearrange.py). It only takes effect
# when polars is imported after tracekit; a value the user set wins (it is appended last).
_JEMALLOC = "dirty_decay_ms:10000,muzzy_decay_ms:10000"
_conf = _os.environ.get("_RJEM_MALLOC_CONF", "")
if not _conf.startswith(_JEMALLOC):
    _os.environ["_RJEM_MALLOC_CONF"] = f"{_JEMALLOC},{_conf}" if _conf else _JEMALLOC

try:
    __version__ = _metadata.version("tracekit")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"
