"""Where a store test keeps its stores, and the few file-level pokes store tests make, on both
backends: a local folder (``Path``) or a prefix on the session's S3 server (an ``s3://bucket/prefix``
string; see the ``place`` fixture in conftest.py).

A file of a store is named by the store's root and a ``/``-separated path inside it
(``"problems/part-....parquet"``, ``"_log/0000000001.json"``). On S3 a file is an object and a
folder is a key prefix: a folder exists while an object lies under it. The S3 side uses boto3
directly (never the store's own file system), so a poke cannot share a bug with the code under test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import polars as pl


class Place:
    """Where one test's stores live: ``root(name)`` is a fresh store location under it."""

    def __init__(self, kind: str, base: Path | str) -> None:
        self.kind = kind
        self.base = base

    @property
    def s3(self) -> bool:
        return self.kind == "s3"

    def root(self, name: str = "st") -> Path | str:
        return f"{self.base}/{name}" if self.s3 else Path(self.base) / name

    def __repr__(self) -> str:
        return f"Place({self.kind}: {self.base})"


def is_s3(root) -> bool:
    return isinstance(root, str) and root.startswith("s3://")


def _client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")


def _bucket_key(root: str, path: str = "") -> tuple[str, str]:
    parsed = urlparse(root)
    key = "/".join(p for p in (parsed.path.strip("/"), path.strip("/")) if p)
    return parsed.netloc, key


def _keys(root: str, folder: str = "") -> list[str]:
    """Every key under ``folder`` of ``root``, relative to ``root``."""
    bucket, prefix = _bucket_key(root, folder)
    base = _bucket_key(root)[1]
    out = []
    for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        out += [obj["Key"][len(base) + 1 :] for obj in page.get("Contents", [])]
    return out


def names(root, folder: str = "") -> list[str]:
    """The names directly in ``folder`` (files and folders), sorted; none when it does not exist."""
    if not is_s3(root):
        where = Path(root) / folder
        return sorted(os.listdir(where)) if where.is_dir() else []
    depth = len([p for p in folder.split("/") if p])
    return sorted({key.split("/")[depth] for key in _keys(root, folder)})


def exists(root, path: str) -> bool:
    """Whether the file ``path`` is there."""
    if not is_s3(root):
        return (Path(root) / path).is_file()
    from botocore.exceptions import ClientError

    bucket, key = _bucket_key(root, path)
    try:
        _client().head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def read_bytes(root, path: str) -> bytes:
    if not is_s3(root):
        return (Path(root) / path).read_bytes()
    bucket, key = _bucket_key(root, path)
    return _client().get_object(Bucket=bucket, Key=key)["Body"].read()


def write_bytes(root, path: str, data: bytes) -> None:
    """Create or replace the file ``path`` (its folder too)."""
    if not is_s3(root):
        (Path(root) / path).parent.mkdir(parents=True, exist_ok=True)
        (Path(root) / path).write_bytes(data)
        return
    bucket, key = _bucket_key(root, path)
    _client().put_object(Bucket=bucket, Key=key, Body=data)


def write_parquet(root, path: str, frame: pl.DataFrame, **kwargs) -> None:
    import io

    buffer = io.BytesIO()
    frame.write_parquet(buffer, **kwargs)
    write_bytes(root, path, buffer.getvalue())


def delete(root, path: str) -> None:
    """Remove the file ``path``."""
    if not is_s3(root):
        (Path(root) / path).unlink()
        return
    bucket, key = _bucket_key(root, path)
    _client().delete_object(Bucket=bucket, Key=key)


def delete_tree(root, folder: str) -> None:
    """Remove ``folder`` and everything in it."""
    if not is_s3(root):
        shutil.rmtree(Path(root) / folder)
        return
    for rel in _keys(root, folder):
        delete(root, rel)


def make_folder(root, folder: str) -> None:
    """A folder that is there (on S3: an object under it, since a prefix exists only with one)."""
    if not is_s3(root):
        (Path(root) / folder).mkdir(parents=True)
    else:
        write_bytes(root, f"{folder}/placeholder", b"")


def files(root, folder: str = "") -> list[str]:
    """Every file under ``folder``, relative to ``root``."""
    if not is_s3(root):
        base = Path(root)
        return sorted(str(p.relative_to(base)) for p in (base / folder).rglob("*") if p.is_file())
    return sorted(_keys(root, folder))


def copy_file(src_root, src: str, dst_root, dst: str) -> None:
    write_bytes(dst_root, dst, read_bytes(src_root, src))


def copy_tree(src_root, dst_root, folder: str = "") -> None:
    """Copy ``folder`` of ``src_root`` (the whole store by default) into ``dst_root``, replacing
    files of the same names there (``shutil.copytree(..., dirs_exist_ok=True)``)."""
    if not is_s3(src_root) and not is_s3(dst_root):
        shutil.copytree(Path(src_root) / folder, Path(dst_root) / folder, dirs_exist_ok=True)
        return
    for rel in files(src_root, folder):
        copy_file(src_root, rel, dst_root, rel)


def part_path(store, table: str, index: int) -> str:
    """The path (inside the store) of the ``index``-th committed part of ``table``."""
    return f"{table}/{store.snapshot(table).parts[index].name}"


def raw_rows(store, table: str) -> int:
    """Rows in the committed parts of ``table`` as they are (readers would hide repeated ids;
    this does not)."""
    parts = store.snapshot(table).parts
    if not parts:
        return 0
    sources = [store.fs.scan_source(f"{table}/{p.name}") for p in parts]
    frame = pl.scan_parquet(sources, storage_options=store.fs.storage_options())
    return frame.select(pl.len()).collect().item()


def name(path) -> str:
    """The last component of a path a store reports (a ``Path`` locally, a URL on S3)."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]
