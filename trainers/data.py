"""Reading an export back for training: a parquet file, a folder of split files, or a ``datasets`` folder."""

from __future__ import annotations

from pathlib import Path

from tracekit.errors import InputFormatError

SPLIT_FILES = ("train", "validation", "test")


def load_export(path: str | Path):
    """The export at ``path`` as a ``datasets.DatasetDict``.

    ``path`` is a parquet file (its split is ``train``), a folder of ``<split>.parquet``
    files (``tracekit export --to trl-sft/trl-grpo``), or a folder saved by ``datasets``
    (``tracekit export --to hf``: ``OUT/sft``).
    """
    import datasets

    path = Path(path)
    if path.is_file():
        return datasets.DatasetDict({"train": _parquet(path)})
    if (path / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(path))
    found = {s: path / f"{s}.parquet" for s in SPLIT_FILES if (path / f"{s}.parquet").exists()}
    if not found:
        msg = (
            f"no exported data at {path}: expected a parquet file, a folder of train/validation/test.parquet "
            "or a datasets folder.\nHint: export it first, e.g. `tracekit export --store ST --to trl-sft --out DIR`."
        )
        raise InputFormatError(msg)
    return datasets.DatasetDict({s: _parquet(p) for s, p in found.items()})


def _parquet(path: Path):
    import datasets

    return datasets.load_dataset("parquet", data_files=str(path), split="train")
