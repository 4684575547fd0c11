"""Stores on object storage: ``s3://bucket/prefix`` (AWS S3 and S3-compatible servers).

:class:`S3FS` implements :class:`~tracekit.store.fs.StoreFS` with boto3 for the small
operations (its status codes are exact: a conditional create that loses answers 412) and
pyarrow's S3 file system for ranged reads; polars reads the parts itself through
:meth:`S3FS.storage_options`. What changes against a local folder:

* **Commits** are conditional creates of the next log record (``PUT`` with
  ``If-None-Match: *``): 412 means another writer won the number, so the writer re-reads the
  log, checks its rows again and tries the next one; 409 (a concurrent conditional write in
  flight) is retried. There is no lock: the conditional create alone makes commits safe.
* **Parts** are uploaded straight under their final names (multipart for big ones) while the
  command runs: a part no commit names is not in the store. A writer that dies leaves such
  orphans; :meth:`Store.collect_garbage` deletes the ones older than :data:`ORPHAN_AGE_S`
  (7 days: a writer may stage parts for a long time before its one commit).
* **Scratch space** (the rearrangement's buckets, a part before its upload) is local
  temporary space (``TMPDIR``), never the bucket.
* **Credentials** come from the usual places (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
  ``AWS_PROFILE``, the instance role); the endpoint from ``AWS_ENDPOINT_URL`` or the
  ``endpoint_url`` storage option. They are never printed or stored: the store's runs record
  its URL only.

Storage options (``Store(url, storage_options=...)``, or the ``TRACEKIT_STORAGE_OPTIONS``
environment variable holding a JSON object): ``endpoint_url``, ``region``, ``profile``.

A commit costs one ``PUT`` of the record plus one ``GET`` per record written since the writer
last read the log; a part is one ``PUT`` (or a multipart upload) and a ``HEAD`` when read.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import urlparse

from tracekit.errors import StoreError
from tracekit.store.fs import Entry, Staged, file_digest

ORPHAN_AGE_S = 7 * 24 * 3600.0
_OPTIONS = ("endpoint_url", "region", "profile")


def storage_options_from_env(options: dict | None) -> dict:
    """``options``, or the JSON object in ``TRACEKIT_STORAGE_OPTIONS``, checked."""
    if options is None:
        raw = os.environ.get("TRACEKIT_STORAGE_OPTIONS", "")
        try:
            options = json.loads(raw) if raw else {}
        except ValueError as exc:
            msg = f'TRACEKIT_STORAGE_OPTIONS is not a JSON object ({exc}).\nHint: e.g. \'{{"region": "eu-west-1"}}\'.'
            raise StoreError(msg) from None
    if not isinstance(options, dict):
        raise StoreError("storage options must be a mapping.\nHint: e.g. {'region': 'eu-west-1'}.")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        msg = f"unknown storage option(s) {unknown}.\nHint: known: {list(_OPTIONS)}."
        raise StoreError(msg)
    return dict(options)


def remote_fs(url: str, storage_options: dict | None = None):
    """The file system of a store at ``url`` (only ``s3://`` for now)."""
    scheme = urlparse(url).scheme
    if scheme in ("s3", "s3a"):
        return S3FS(url, storage_options_from_env(storage_options))
    msg = (
        f"store {url}: {scheme}:// is not a store location tracekit can commit to (it needs an atomic "
        "create-if-absent).\nHint: use a local folder or s3://bucket/prefix (any S3-compatible server)."
    )
    raise StoreError(msg)


class S3FS:
    """A store under ``s3://bucket/prefix`` (see the module docstring)."""

    remote = True

    def __init__(self, url: str, options: dict) -> None:
        parsed = urlparse(url)
        if not parsed.netloc:
            raise StoreError(f"store {url}: no bucket in the URL.\nHint: s3://bucket/prefix.")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            from tracekit.errors import MissingDependencyError

            msg = "a store on s3:// needs boto3.\nHint: pip install 'tracekit[s3]'."
            raise MissingDependencyError(msg) from None
        session = boto3.session.Session(
            profile_name=options.get("profile"), region_name=options.get("region")
        )
        self.endpoint = options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None
        self.region = session.region_name or "us-east-1"
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16)
        self.client = session.client("s3", endpoint_url=self.endpoint, region_name=self.region, config=config)
        self._session = session
        self._arrow = None

    # ------------------------------------------------------------------ helpers
    def key(self, path: str) -> str:
        return f"{self.prefix}/{path}".strip("/") if self.prefix else path

    def _error(self, exc, what: str, path: str) -> OSError:
        code = _code(exc)
        msg = (
            f"store {self.url}: {what} {path} failed ({code or exc.__class__.__name__}).\n"
            "Hint: check the bucket, the endpoint (AWS_ENDPOINT_URL) and your credentials' permissions."
        )
        return StoreError(msg)

    def _credentials(self):
        creds = self._session.get_credentials()
        return creds.get_frozen_credentials() if creds is not None else None

    # ------------------------------------------------------------------ reading
    def read_bytes(self, path: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(path))["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(path) from None
            raise self._error(exc, "reading", path) from None

    def size(self, path: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self.key(path))["ContentLength"])
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._error(exc, "looking up", path) from None

    def exists(self, path: str) -> bool:
        return self.size(path) is not None or self.is_dir(path)

    def is_dir(self, path: str) -> bool:
        prefix = self.key(path) + "/" if path or self.prefix else ""
        try:
            found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except Exception as exc:
            raise self._error(exc, "listing", path or "/") from None
        return bool(found.get("KeyCount"))

    def list(self, folder: str) -> list[Entry]:
        prefix = self.key(folder) + "/" if folder or self.prefix else ""
        out: dict[str, Entry] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(prefix) :].rstrip("/")
                    out[name] = Entry(name, True)
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :]
                    if name:
                        out[name] = Entry(name, False, int(obj["Size"]), obj["LastModified"].timestamp())
        except Exception as exc:
            if _code(exc) == "NoSuchBucket":
                msg = f"store {self.url}: the bucket {self.bucket!r} does not exist.\nHint: create it first."
                raise StoreError(msg) from None
            raise self._error(exc, "listing", folder or "/") from None
        return [out[n] for n in sorted(out)]

    def open(self, path: str):
        return self.open_source(self.scan_source(path))

    def scan_source(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.key(path)}"

    def open_source(self, source: str):
        """A random-access file (pyarrow's S3 file system) for ``source``."""
        from pyarrow import fs as pafs

        if self._arrow is None:
            creds = self._credentials()
            kwargs = {"region": self.region}
            if creds is not None:
                kwargs |= {"access_key": creds.access_key, "secret_key": creds.secret_key}
                if creds.token:
                    kwargs["session_token"] = creds.token
            if self.endpoint:
                parsed = urlparse(self.endpoint)
                kwargs |= {"endpoint_override": parsed.netloc, "scheme": parsed.scheme or "https"}
            self._arrow = pafs.S3FileSystem(**kwargs)
        try:
            return self._arrow.open_input_file(source.removeprefix("s3://"))
        except FileNotFoundError:
            raise
        except OSError as exc:
            if "NoSuchKey" in str(exc) or "does not exist" in str(exc):
                raise FileNotFoundError(source) from None
            raise self._error(exc, "opening", source) from None

    def storage_options(self) -> dict:
        """The options polars needs to read the parts (credentials included: never print them)."""
        creds = self._credentials()
        out = {"aws_region": self.region}
        if creds is not None:
            out |= {"aws_access_key_id": creds.access_key, "aws_secret_access_key": creds.secret_key}
            if creds.token:
                out["aws_session_token"] = creds.token
        if self.endpoint:
            out["aws_endpoint_url"] = self.endpoint
            if self.endpoint.startswith("http://"):
                out["aws_allow_http"] = "true"
        return out

    # ------------------------------------------------------------------ writing
    def put(self, path: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=data)
        except Exception as exc:
            raise self._error(exc, "writing", path) from None

    def put_if_absent(self, path: str, data: bytes) -> bool:
        for attempt in range(8):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=data, IfNoneMatch="*")
                return True
            except Exception as exc:
                code = _code(exc)
                if code in ("PreconditionFailed", "412"):
                    return False
                if code in ("ConditionalRequestConflict", "409", "OperationAborted"):
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise self._error(exc, "creating", path) from None
        msg = f"store {self.url}: creating {path} kept conflicting with other writers.\nHint: run the command again."
        raise StoreError(msg)

    def delete(self, path: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(path))
        except Exception as exc:
            if _code(exc) not in ("NoSuchKey", "404"):
                raise self._error(exc, "deleting", path) from None

    def stage(self, path: str, fill: Callable[[Path], None]) -> Staged:
        """Fill the part in local temporary space, then upload it under its final name."""
        with tempfile.TemporaryDirectory(prefix="tracekit-part-") as tmp:
            local = Path(tmp) / Path(path).name
            fill(local)
            size, digest = local.stat().st_size, file_digest(local)
            try:
                self.client.upload_file(str(local), self.bucket, self.key(path))
            except Exception as exc:
                self.delete(path)  # a half-done multipart upload leaves no object; a done one is removed
                raise self._error(exc, "uploading", path) from None
        return Staged(path, self.key(path), size, digest)

    def publish(self, staged: list[Staged]) -> None:
        for item in staged:
            item.published = True  # uploaded under its final name already

    def discard(self, staged: Staged) -> None:
        self.delete(staged.path)

    def lock(self, folder: str):
        return nullcontext()

    def collect_garbage(self, folders: list[str]) -> None:
        """Nothing to do here: a remote writer leaves no temporaries, only orphan parts, which
        :meth:`Store.collect_garbage` removes by age (it knows which parts the log names)."""


def _code(exc) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    code = str(error.get("Code", ""))
    if not code and isinstance(response, dict):
        code = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code
