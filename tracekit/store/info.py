"""What a store holds, for ``tracekit info``: contents, configurations, runs and warnings.

:func:`store_info` gathers it as plain data (``tracekit info --json`` prints it as is) and
:func:`format_info` as text. Everything about rows is about the **current view** (see
:mod:`tracekit.store.views`) unless it says history: the tasks, splits and models present, the
traces per format and per rearrangement configuration, the store's size on disk, every run with
its configuration, its integrity problems (:meth:`Store.check`), and warnings: rows outside the
current view (history), ids that may repeat in a table, rows whose problem is missing.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from tracekit.errors import StoreError
from tracekit.schemas import TABLES
from tracekit.schemas.tables import VIEW_TABLES
from tracekit.store.hashslices import count_missing, repeats, slices_for
from tracekit.store.tables import Store
from tracekit.store.views import COVER_ROWS, outside_views, row_hashes, view, view_count


def _counts(frame: pl.LazyFrame, *keys: str) -> list[dict[str, Any]]:
    return frame.group_by(*keys).len("rows").sort(*keys).collect().to_dicts()


def _files(store: Store, folder: str = "") -> tuple[int, int]:
    """Files and bytes under ``folder`` (a file that vanishes while it is listed is left out)."""
    files = size = 0
    for entry in store.fs.list(folder):
        if entry.is_dir:
            sub = _files(store, f"{folder}/{entry.name}" if folder else entry.name)
            files, size = files + sub[0], size + sub[1]
        else:
            files, size = files + 1, size + entry.size
    return files, size


def store_info(store: Store) -> dict[str, Any]:
    """Everything ``tracekit info`` reports about ``store``, as plain data. A damaged store is
    reported too: what cannot be read becomes a warning (the integrity problems say why)."""
    n_files, size = _files(store)
    info: dict[str, Any] = {
        "store": str(store.root),
        "format": store.format,
        "size_bytes": size,
        "files": n_files,
        "rows": {},
        "problems": [],
        "samples": [],
        "traces_per_format": [],
        "traces_per_configuration": [],
        "runs": [],
        "integrity": [str(p) for p in store.check()],
        "warnings": [],
    }
    try:
        snap = store.snapshot()
    except StoreError as exc:
        info["warnings"].append(f"contents not read: {str(exc).splitlines()[0]}")
        return info
    try:
        info["runs"] = _runs(store, snap)
    except StoreError as exc:
        info["warnings"].append(f"runs not read: {str(exc).splitlines()[0]}")
    for table in _tables():
        try:
            n = store.count(table, snapshot=snap)
        except StoreError:
            n = None
        try:
            current = view_count(store, table, snapshot=snap) if n is not None else None
        except StoreError:  # a damaged table: the integrity problems say why
            current = None
        info["rows"][table] = {"all": n, "current_view": current, "parts": len(snap.table(table).parts)}
    try:
        problems, samples, traces = (view(store, t, snapshot=snap) for t in ("problems", "samples", "traces"))
        info["problems"] = _counts(problems, "task", "split")
        info["samples"] = _counts(samples, "model", "source")
        info["traces_per_format"] = _counts(traces, "format")
        info["traces_per_configuration"] = _counts(traces, "config_hash", "format")
        info["warnings"] += _warnings(store, snap, info, problems, samples, traces)
    except StoreError as exc:
        info["warnings"].append(f"contents not read: {str(exc).splitlines()[0]}")
    return info


def _tables() -> list[str]:
    return list(TABLES)


def _runs(store: Store, snap) -> list[dict[str, Any]]:
    if not store.count("runs", snapshot=snap):
        return []
    columns = ["run_id", "command", "finished_at", "config_hash", "config_json", "timings_json"]
    runs = store.scan("runs", snapshot=snap).select(columns).collect()
    out = []
    for row in runs.sort("finished_at").iter_rows(named=True):
        out.append(
            {
                "run_id": row["run_id"],
                "command": row["command"],
                "finished_at": row["finished_at"],
                "config_hash": row["config_hash"],
                "seconds": json.loads(row["timings_json"]).get("total", 0.0),
                "config": json.loads(row["config_json"]),
            }
        )
    return out


def _warnings(store, snap, info, problems, samples, traces) -> list[str]:
    out = []
    if not snap.sound:
        out.append(
            "the commit log holds records that do not continue this store's log; repeated ids are dropped on read"
        )
    for table, rows in info["rows"].items():
        if rows["all"] is None:
            continue
        if table in VIEW_TABLES and rows["current_view"] is not None and rows["all"] > rows["current_view"]:
            outside = outside_views(store, table, snapshot=snap)
            history = rows["all"] - rows["current_view"] - outside
            if history:
                out.append(
                    f"{table}: {history} row(s) are history, not in the current view "
                    "(earlier configurations; reports and exports leave them out)"
                )
            if outside:
                out.append(
                    f"{table}: {outside} row(s) are in no view: written by a command that did not finish "
                    "(it was killed or failed; running it again reuses them) or by library code outside "
                    "`recording`; reports and exports leave them out"
                )
        if rows["all"] and not snap.table(table).all_checked:
            out.append(
                f"{table}: some parts were written without an id check; repeated ids are dropped on read"
            )
        elif rows["all"]:
            repeated = _repeated_ids(store, table, snap)
            if repeated:
                out.append(f"{table}: {repeated} id(s) occur more than once; readers keep the first of each")
    for table, frame in (("samples", samples), ("traces", traces)):
        k = slices_for(
            max(store.count("problems", snapshot=snap), store.count(table, snapshot=snap)), COVER_ROWS
        )
        orphans = count_missing(frame, problems, "problem_id", k=k)  # in slices: flat memory
        if orphans:
            out.append(f"{table}: {orphans} row(s) in the current view name a problem outside it")
    if info["rows"]["samples"]["current_view"] and not info["rows"]["traces"]["current_view"]:
        out.append("traces: none in the current view (build them with `tracekit rearrange --store ST`)")
    return out


def _repeated_ids(store, table: str, snap) -> int:
    """Ids that occur more than once in the parts of ``table`` (compared as 64-bit hashes)."""
    repeated = 0
    with row_hashes(store, table, snap) as rows:  # slices of the hash space: flat memory
        for p in range(rows.k):
            repeated += repeats(rows.slice(p))
    return repeated


def _brief(value: Any) -> Any:
    """``value`` without its empty, false and null settings (the text shows what was set)."""
    if isinstance(value, dict):
        kept = {k: _brief(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, False, [], {}, "")}
    if isinstance(value, list):
        return [_brief(v) for v in value]
    return value


def format_info(info: dict[str, Any], *, runs: int = 10) -> str:
    """``info`` as text: one section per kind of content, the last ``runs`` runs, the warnings."""
    size = info["size_bytes"]
    unit = next(u for u, f in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)) if size >= f or f == 1)
    scale = {"GB": 1e9, "MB": 1e6, "KB": 1e3, "B": 1}[unit]
    lines = [
        f"store {info['store']}  (format {info['format']}, {size / scale:.1f} {unit} in {info['files']} files)"
    ]
    lines.append(f"\n{'table':<12}{'rows':>10}{'current view':>14}{'parts':>8}")
    for table, rows in info["rows"].items():
        current = "?" if rows["current_view"] is None else rows["current_view"]
        total = "?" if rows["all"] is None else rows["all"]
        lines.append(f"{table:<12}{total:>10}{current:>14}{rows['parts']:>8}")
    sections = [
        ("problems by task and split", info["problems"], ("task", "split")),
        ("samples by model and source", info["samples"], ("model", "source")),
        ("traces by format", info["traces_per_format"], ("format",)),
        (
            "traces by rearrangement configuration",
            info["traces_per_configuration"],
            ("config_hash", "format"),
        ),
    ]
    for title, rows, keys in sections:
        if rows:
            lines.append(f"\n{title}:")
            lines += [f"  {'  '.join(str(r[k]) for k in keys):<48}{r['rows']:>10}" for r in rows]
    if info["runs"]:
        shown = info["runs"][-runs:]
        lines.append(
            f"\nruns ({len(shown)} of {len(info['runs'])}, oldest first; --json shows every config in full):"
        )
        for run in shown:
            config = json.dumps(_brief(run["config"]), sort_keys=True, separators=(",", ":"), default=str)
            config = config if len(config) <= 160 else config[:157] + "..."
            lines.append(
                f"  {run['finished_at'][:19]}  {run['command']:<20}{run['seconds']:>8.1f}s  {run['run_id']}"
            )
            lines.append(f"      config {run['config_hash'][:12]}: {config}")
    problems = info["integrity"]
    lines.append(f"\nintegrity: {len(problems)} problem(s)" if problems else "\nintegrity: ok")
    lines += [f"  {p}" for p in problems]
    lines.append(f"\nwarnings: {len(info['warnings'])}" if info["warnings"] else "\nwarnings: none")
    lines += [f"  {w}" for w in info["warnings"]]
    return "\n".join(lines)
