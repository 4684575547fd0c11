"""Writers that turn store tables into the files trainers and hubs read.

Each exporter is a function ``(store, out_dir, **options) -> Written`` registered in
:data:`EXPORTERS` under the name the command line uses (``--to NAME``). :func:`run_export`
is what a command calls: the export, its manifest beside the data and the store's ``runs`` row.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, unknown_name
from tracekit.export.hf import export_hf
from tracekit.export.llamafactory import export_llamafactory
from tracekit.export.manifest import MANIFEST, write_manifest
from tracekit.export.skillfactory import export_skillfactory
from tracekit.export.source import Written, read_table
from tracekit.export.trl import export_trl_grpo, export_trl_sft, sft_view
from tracekit.export.verl import export_verl
from tracekit.store import Store

EXPORTERS = {
    "trl-sft": export_trl_sft,
    "trl-grpo": export_trl_grpo,
    "hf": export_hf,
    "verl": export_verl,
    "llamafactory": export_llamafactory,
    "skillfactory": export_skillfactory,
}


def record_run(
    store: Store,
    command: str,
    config: dict[str, Any],
    counts: dict[str, int],
    *,
    seconds: float | None = None,
) -> None:
    """Append the command's ``runs`` row (the one place exports and pushes record themselves).

    The config names the runs whose rows were read (``views``) and the rows written (``exported``);
    the config hash covers the options only, so the same export has the same hash every time.
    ``seconds``: how long the command's work took (its ``timings``).
    """
    from tracekit.ids import stable_hash
    from tracekit.store.manifest import recording
    from tracekit.store.views import view_runs

    views = {t: view_runs(store, t) for t in ("problems", "samples", "traces")}
    full = {**config, "views": views, "exported": dict(counts)}
    with recording(store, command, full, config_hash=stable_hash(config)) as rec:
        if seconds is not None:
            rec.timings[command] = round(seconds, 3)


def run_export(store: Store, to: str, out: str | Path, **options: Any) -> Written:
    """Export ``store`` to target ``to`` in ``out``, write the manifest and record a ``runs`` row."""
    if to not in EXPORTERS:
        raise unknown_name("export target", to, list(EXPORTERS))
    exporter = EXPORTERS[to]
    takes = [p for p in inspect.signature(exporter).parameters if p not in ("store", "out")]
    wrong = sorted(k for k in options if k not in takes)
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        known = ", ".join("--" + t.replace("_", "-") for t in takes) or "no options"
        msg = f"export target {to!r} does not take {flags}.\nHint: it takes {known}."
        raise ConfigError(msg)
    from tracekit.errors import OutputError, warn
    from tracekit.places import check_output_dir
    from tracekit.store.files import refuse_folder

    check_output_dir(out, "export --out")
    refuse_folder(Path(out) / MANIFEST)  # written last: refused before the data files are written
    try:
        store.check_writable()
        recordable = True
    except OutputError as exc:  # a read-only store can still be exported; its runs table cannot grow
        recordable = False
        reason = str(exc).split("\n")[0]
    from tracekit.tasks import load_recorded_tasks

    load_recorded_tasks(store)  # tasks from outside the package that made its problems
    started = time.perf_counter()
    written = exporter(store, out, **options)
    manifest = write_manifest(written, store)
    seconds = time.perf_counter() - started
    config = {"to": to, "out": str(Path(out).resolve()), **written.options}
    if recordable:
        record_run(store, "export", config, written.counts, seconds=seconds)
    else:
        warn(f"the export is not recorded in the store's runs table: {reason}")
    return Written(
        written.target, written.out, {**written.files, MANIFEST: manifest}, written.counts, written.options
    )


__all__ = [
    "EXPORTERS",
    "MANIFEST",
    "Written",
    "export_hf",
    "export_llamafactory",
    "export_skillfactory",
    "export_trl_grpo",
    "export_trl_sft",
    "export_verl",
    "read_table",
    "record_run",
    "run_export",
    "sft_view",
]
