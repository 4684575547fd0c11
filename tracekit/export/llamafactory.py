"""LLaMA-Factory's layout (0.9.5): sharegpt ``messages`` files and their ``dataset_info.json`` entries.

``OUT/<name>/<split>.parquet`` hold ``messages = [user question, assistant trace]`` (every row
one well-formed user/assistant pair: LLaMA-Factory silently drops rows whose turns do not
alternate or are odd in number). ``OUT/dataset_info.json`` gets one entry per split (``<name>``
for train, ``<name>_<split>`` for the others) whose ``file_name`` names the file, not the folder,
and whose ``tags`` spell out the role names; entries already in the file are kept. The export
manifest goes to ``OUT/tracekit-export.json``, beside ``dataset_info.json`` and outside the
data folder, which holds parquet files only (LLaMA-Factory refuses a folder of mixed extensions).
"""

from __future__ import annotations

import json
from pathlib import Path

from tracekit.errors import InputFormatError
from tracekit.export.source import Written, orphans, problem_splits, write_splits
from tracekit.export.trl import traces_for_export
from tracekit.export.verl import messages_view
from tracekit.store import Store, atomic_write_text

DATASET_INFO = "dataset_info.json"
SHAREGPT_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}


def dataset_info_entry(file_name: str) -> dict:
    """The ``dataset_info.json`` entry of one exported file.

    Examples
    --------
    >>> dataset_info_entry("tracekit_sft/train.parquet")["columns"]
    {'messages': 'messages'}
    """
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": dict(SHAREGPT_TAGS),
    }


def entry_name(name: str, split: str) -> str:
    return name if split == "train" else f"{name}_{split}"


def export_llamafactory(
    store: Store, out: str | Path, *, formats: list[str] | None = None, name: str = "tracekit_sft"
) -> Written:
    """Write the sharegpt files and merge their entries into ``OUT/dataset_info.json``.

    ``name`` becomes the folder ``OUT/<name>``: one plain file-name component, never a path
    (see :func:`tracekit.places.check_name_component`)."""
    from tracekit.places import check_name_component

    check_name_component(name, "export --to llamafactory --name")
    out = Path(out)
    traces = traces_for_export(store, formats)
    splits = problem_splits(store)
    files, counts = write_splits(traces, splits, out / name, view=lambda rows, _: messages_view(rows))
    info_path = out / DATASET_INFO
    info = _read_info(info_path)
    for split, path in files.items():
        info[entry_name(name, split)] = dataset_info_entry(path.relative_to(out).as_posix())
    atomic_write_text(info_path, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    counts = {entry_name(name, s): n for s, n in counts.items()}
    counts["skipped_no_problem"] = orphans(traces, splits)
    all_files = {entry_name(name, s): p for s, p in files.items()} | {DATASET_INFO: info_path}
    return Written("llamafactory", out, all_files, counts, {"formats": formats, "name": name})


def _read_info(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text())
    except ValueError as exc:
        msg = (
            f"{path} is not valid JSON ({exc}).\nHint: fix or remove it; tracekit merges its entries into it."
        )
        raise InputFormatError(msg) from None
    if not isinstance(info, dict):
        msg = f"{path} must hold a JSON object of dataset entries.\nHint: fix or remove it."
        raise InputFormatError(msg)
    return info
