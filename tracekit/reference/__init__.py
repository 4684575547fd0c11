"""The SkillFactory reference raw layout: reading it (:mod:`.raw`), importing it into tracekit's
tables (:mod:`.importer`) and a synthetic generator of it (:mod:`.synthetic`)."""

from tracekit.reference.importer import IMPORT_LABEL, Occurrences, import_skillfactory, import_task
from tracekit.reference.raw import EXTRACTED, IS_CORRECT, RAW_COLUMNS, REFLECTIONS, RESPONSES, RawFile
from tracekit.reference.synthetic import synthetic_raw

__all__ = [
    "EXTRACTED",
    "IMPORT_LABEL",
    "IS_CORRECT",
    "RAW_COLUMNS",
    "REFLECTIONS",
    "RESPONSES",
    "Occurrences",
    "RawFile",
    "import_skillfactory",
    "import_task",
    "synthetic_raw",
]
