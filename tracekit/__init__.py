"""tracekit: SkillFactory-style silver reasoning traces, done as real software.

Stages (data flows one way): tasks -> sample -> verify -> reflect -> filter ->
rearrange -> store -> export / trainers. See the README for the command line.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("tracekit")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"
