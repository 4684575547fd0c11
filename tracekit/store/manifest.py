"""The run manifest: one ``runs`` row per command that wrote to a store.

It records the configuration and its hash, tracekit's and its key dependencies'
versions, the model and sampling parameters, seeds, row counts, drop counts by
reason and stage timings, so a dataset can be traced back to how it was made.
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import polars as pl

from tracekit.ids import stable_hash
from tracekit.store.tables import Store

_PACKAGES = ("tracekit", "polars", "pyarrow", "pandera", "datasets", "transformers", "torch", "trl", "vllm")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def tracekit_version() -> str:
    try:
        return metadata.version("tracekit")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunRecorder:
    """Collect timings and counts for one command, then append its ``runs`` row."""

    def __init__(
        self,
        command: str,
        config: dict[str, Any],
        *,
        seed: int | None = None,
        model: str | None = None,
        model_revision: str | None = None,
        sampling: dict[str, Any] | None = None,
    ) -> None:
        self.command = command
        self.config = config
        self.seed = seed
        self.model = model
        self.model_revision = model_revision
        self.sampling = sampling or {}
        self.started = _now()
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.drops: Counter = Counter()
        self._t0 = time.perf_counter()

    def stage(self, name: str):
        recorder = self

        class _Timer:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                recorder.timings[name] = round(
                    recorder.timings.get(name, 0.0) + time.perf_counter() - self.t, 3
                )

        return _Timer()

    def finish(self, store: Store) -> str:
        self.timings["total"] = round(time.perf_counter() - self._t0, 3)
        config_json = json.dumps(self.config, sort_keys=True, default=str)
        config_hash = stable_hash(self.config)
        run_id = "run-" + stable_hash(self.command, config_hash, self.started, time.perf_counter_ns())
        row = {
            "run_id": run_id,
            "command": self.command,
            "config_json": config_json,
            "config_hash": config_hash,
            "tracekit_version": tracekit_version(),
            "model": self.model,
            "model_revision": self.model_revision,
            "sampling_json": json.dumps(self.sampling, sort_keys=True, default=str),
            "seed": self.seed,
            "row_counts_json": json.dumps(self.counts or store.counts(), sort_keys=True),
            "drops_json": json.dumps(dict(sorted(self.drops.items()))),
            "timings_json": json.dumps(self.timings, sort_keys=True),
            "versions_json": json.dumps(versions(), sort_keys=True),
            "started_at": self.started,
            "finished_at": _now(),
        }
        frame = pl.DataFrame(
            [row], schema_overrides={"model": pl.Utf8, "model_revision": pl.Utf8, "seed": pl.Int64}
        )
        store.write("runs", frame)
        return run_id
