"""Hugging Face ``datasets`` views of a store: one config per table, split by the problems' split.

Configs: ``problems``, ``samples`` (current rows: a regenerated sample supersedes its
truncated row), ``reflections``, ``sft`` (traces as TRL prompt-completion rows) and ``grpo``
(problems as GRPO prompts). ``tracekit export --to hf`` saves each as a ``DatasetDict``
folder (``datasets.load_from_disk(OUT/sft)``) and writes a dataset card ``OUT/README.md``
whose YAML lists the configs, so ``datasets.load_dataset(OUT, "sft")`` works too. The push
to the Hub (:mod:`tracekit.export.hub`) sends the same configs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.errors import InputFormatError, OutputError, unknown_name, warn
from tracekit.export.card import (
    HISTOGRAM,
    card_metadata,
    histogram_png,
    merge_card,
    read_card_file,
    render_card,
    split_card,
)
from tracekit.export.lengths import load_tokenizer
from tracekit.export.source import (
    UNVERIFIABLE_HINT,
    Written,
    problem_splits,
    read_table,
    select_formats,
    unverifiable,
)
from tracekit.export.stats import card_stats
from tracekit.export.trl import grpo_view, sft_view
from tracekit.schemas.tables import SPLITS
from tracekit.store import Store, atomic_write_text
from tracekit.store.files import temporary_path
from tracekit.store.fs import file_digest

CONFIGS = ("problems", "samples", "reflections", "sft", "grpo")


def config_rows(store: Store, config: str, *, formats: list[str] | None = None) -> pl.LazyFrame:
    """The rows of one config (each with ``problem_id``, which gives its split)."""
    if config == "problems":
        return read_table(store, "problems")
    if config == "samples":
        return read_table(store, "samples")
    if config == "reflections":
        return read_table(store, "reflections")
    if config == "sft":
        return sft_view(select_formats(store, read_table(store, "traces"), formats))
    if config == "grpo":
        return grpo_view(store)
    raise unknown_name("config", config, list(CONFIGS))


def config_frames(
    store: Store, configs: list[str] | None = None, *, formats: list[str] | None = None
) -> dict[str, dict[str, pl.DataFrame]]:
    """``{config: {split: frame}}`` for every non-empty config (all of ``CONFIGS`` by default)."""
    splits = problem_splits(store).frame()
    out: dict[str, dict[str, pl.DataFrame]] = {}
    for name in configs or ():
        if name not in CONFIGS:
            raise unknown_name("config", name, list(CONFIGS))
    if "grpo" in (configs or CONFIGS):
        reason = unverifiable(read_table(store, "problems"))
        if reason and configs:
            msg = f"config 'grpo' of {store.root}: {reason}, so its reward would fail.\nHint: {UNVERIFIABLE_HINT}"
            raise InputFormatError(msg)
        if reason:
            warn(f"config 'grpo' left out: {reason}. Hint: {UNVERIFIABLE_HINT}")
            configs = [c for c in CONFIGS if c != "grpo"]
    for config in configs or CONFIGS:
        rows = config_rows(store, config, formats=formats).collect()
        if config == "problems":  # the problems table has its own split column
            parts = {s: rows.filter(pl.col("split") == s) for s in SPLITS}
        else:
            by_split = rows.join(splits, on="problem_id", how="inner", maintain_order="left")
            parts = {s: by_split.filter(pl.col("split") == s).drop("split") for s in SPLITS}
        parts = {s: f for s, f in parts.items() if f.height}
        if parts:
            out[config] = parts
    return out


def dataset_dict(parts: dict[str, pl.DataFrame]):
    """A ``datasets.DatasetDict`` of one config's splits."""
    import datasets

    return datasets.DatasetDict({s: datasets.Dataset.from_polars(f) for s, f in parts.items()})


def build_card(
    store: Store,
    counts: dict[str, dict[str, int]],
    folder: Path,
    *,
    repo_id: str,
    max_length: int,
    tokenizer: Any = None,
    existing: str | None = None,
    configs_meta: list | None = None,
    where: str = "the existing dataset card",
) -> str:
    """The merged card text; the histogram PNG is written to ``folder`` when there are traces."""
    stats = card_stats(store, max_length=max_length, tokenizer=tokenizer)
    if stats["lengths"]["n"]:
        histogram_png(stats["lengths"], folder / HISTOGRAM)
    meta = card_metadata(counts)
    if configs_meta is not None:
        meta["configs"] = configs_meta
    return merge_card(existing, meta, render_card(stats, counts, repo_id=repo_id), where=where)


def export_hf(
    store: Store,
    out: str | Path,
    *,
    formats: list[str] | None = None,
    tables: list[str] | None = None,
    max_length: int = 8192,
    tokenizer: str | None = None,
) -> Written:
    """Save every config as a ``DatasetDict`` folder ``OUT/<config>`` and a card ``OUT/README.md``.

    ``tokenizer`` (a local folder or cached model id) counts trace lengths for the card's
    histogram; without one they are approximated (see :mod:`tracekit.export.lengths`).
    """
    out = Path(out)
    frames = config_frames(store, tables, formats=formats)
    check_replaceable(out, frames)
    readme = out / "README.md"
    existing = read_card_file(readme) if readme.exists() else None
    split_card(existing, str(readme))  # a card tracekit cannot merge into is refused before any write
    out.mkdir(parents=True, exist_ok=True)
    files, counts = {}, {}
    for config, parts in frames.items():
        files[config] = _save_atomically(dataset_dict(parts), out / config)
        for split, frame in parts.items():
            counts[f"{config}/{split}"] = frame.height
    per_config = {c: {s: f.height for s, f in p.items()} for c, p in frames.items()}
    configs_meta = [
        {
            "config_name": c,
            # datasets caches a local folder's configs by folder name and this YAML only: the content
            # digest keeps load_dataset(OUT, c) from returning another export's cached rows
            "description": f"tracekit export; content {content_digest(out / c)}",
            "data_files": [{"split": s, "path": f"{c}/{s}/data-*.arrow"} for s in parts],
        }
        for c, parts in frames.items()
    ]
    text = build_card(
        store,
        per_config,
        out,
        repo_id=str(out),
        max_length=max_length,
        tokenizer=load_tokenizer(tokenizer),
        existing=existing,
        configs_meta=configs_meta,
        where=str(readme),
    )
    atomic_write_text(readme, text)
    files["README.md"] = readme
    if (out / HISTOGRAM).exists():
        files[HISTOGRAM] = out / HISTOGRAM
    options = {"formats": formats, "tables": tables, "max_length": max_length, "tokenizer": tokenizer}
    return Written("hf", out, files, counts, options)


def content_digest(folder: Path) -> str:
    """A digest of a saved ``DatasetDict`` folder's data files (names and bytes)."""
    import xxhash

    h = xxhash.xxh3_128()
    for path in sorted(folder.rglob("*.arrow")):
        h.update(f"{path.relative_to(folder)}|{file_digest(path)}|".encode())
    return h.hexdigest()[:20]


_SPLIT_FILES = ("dataset_info.json", "state.json")


def _is_saved_dataset(folder: Path) -> bool:
    """True when ``folder`` holds what ``DatasetDict.save_to_disk`` writes and nothing else: the
    only kind of folder an export replaces (a folder the user or a store put there is kept)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    entries = list(folder.iterdir())
    if "dataset_dict.json" not in {e.name for e in entries}:
        return False
    for entry in entries:
        if entry.is_symlink():
            return False
        if entry.name == "dataset_dict.json" and entry.is_file():
            continue
        if not entry.is_dir():
            return False
        for f in entry.iterdir():
            arrow = f.name.startswith("data-") and f.name.endswith(".arrow")
            if f.is_symlink() or not f.is_file() or not (arrow or f.name in _SPLIT_FILES):
                return False
    return True


def check_replaceable(out: Path, configs) -> None:
    """Raise :class:`~tracekit.errors.OutputError` before any write when ``OUT/<config>`` exists and
    is not a saved ``datasets`` folder (an earlier export's), or the card or its histogram is not a file."""
    for config in configs:
        final = out / config
        if os.path.lexists(final) and not _is_saved_dataset(final):
            msg = (
                f"export --out: {final} exists and is not a datasets folder an earlier export wrote; "
                "tracekit replaces only those.\nHint: move it away, or name another --out."
            )
            raise OutputError(msg)
    for name in ("README.md", HISTOGRAM):  # the card and its histogram replace files only
        path = out / name
        if os.path.lexists(path) and not path.is_file():
            msg = f"export --out: {path} is not a file (the dataset card's {name} goes there).\nHint: move it away."
            raise OutputError(msg)


def _save_atomically(dsd, final: Path) -> Path:
    """``save_to_disk`` into a new hidden folder, then swap it into place (readers see old or new,
    whole). Only folders this call created, or an earlier export's saved ``datasets`` folder at
    ``final``, are ever removed."""
    tmp = temporary_path(final)
    tmp.mkdir()  # exclusive: the name is this writer's
    old = None
    try:
        dsd.save_to_disk(str(tmp))
        if os.path.lexists(final):
            if not _is_saved_dataset(final):  # appeared since check_replaceable
                check_replaceable(final.parent, [final.name])
            old = temporary_path(final)
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        if old is not None and not os.path.lexists(final):
            os.replace(old, final)  # put the earlier export back
            old = None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return final


__all__ = ["CONFIGS", "config_frames", "config_rows", "dataset_dict", "export_hf"]
