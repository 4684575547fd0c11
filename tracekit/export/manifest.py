"""The manifest every export writes beside its data: where it came from and what it holds.

``tracekit-export.json`` names the source store, the store's ``runs`` rows the data came
from, the exporter's options, the files and their row counts. It holds no timestamp of its
own, so exporting the same store with the same options gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from tracekit.export.source import Written, read_table
from tracekit.store import Store, atomic_write_text
from tracekit.store.manifest import tracekit_version

MANIFEST = "tracekit-export.json"
DELIVERY_COMMANDS = ["export", "push"]  # runs rows that read a store without changing its data
RUN_FIELDS = (
    "run_id",
    "command",
    "config_hash",
    "tracekit_version",
    "model",
    "model_revision",
    "seed",
    "started_at",
    "finished_at",
)


def source_runs(store: Store) -> list[dict]:
    """The store's ``runs`` rows that made the current view of its data (see
    :mod:`tracekit.store.views`), oldest first; every run but exports and pushes where a table
    has no recorded view."""
    from tracekit.store.views import view_runs

    named: set[str] = set()
    whole = False
    for table in ("problems", "samples", "reflections", "traces"):
        ids = view_runs(store, table)
        whole |= ids is None
        named.update(ids or [])
    runs = read_table(store, "runs")
    if whole:
        runs = runs.filter(~pl.col("command").is_in(DELIVERY_COMMANDS) | pl.col("run_id").is_in(list(named)))
    else:
        runs = runs.filter(pl.col("run_id").is_in(list(named)))
    runs = runs.select(*RUN_FIELDS).collect()
    return runs.sort("started_at", maintain_order=True).to_dicts()


def manifest_dict(written: Written, store: Store) -> dict:
    """The manifest of ``written`` as a plain dict (file paths relative to the export folder)."""
    return {
        "tracekit_export": 1,
        "target": written.target,
        "tracekit_version": tracekit_version(),
        "source_store": store.url if store.fs.remote else str(Path(store.root).resolve()),
        "source_runs": source_runs(store),
        "options": written.options,
        "files": {name: _relative(path, written.out) for name, path in sorted(written.files.items())},
        "counts": dict(sorted(written.counts.items())),
    }


def write_manifest(written: Written, store: Store, *, folder: Path | None = None) -> Path:
    """Write ``MANIFEST`` into ``folder`` (default: the export folder) and return its path."""
    path = Path(folder or written.out) / MANIFEST
    text = json.dumps(manifest_dict(written, store), indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_text(path, text)
    return path


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)
