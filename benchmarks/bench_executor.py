"""The executors on one run config: local, Ray with 1 scripted replica, Ray with 2; the wall time of each
and the ratios, in the same process.

A scripted sampler stands in for the model: ``--delay`` seconds per request is its model time
(a sleep, so replicas can overlap it the way engines on separate GPUs would); ``--delay 0``
measures the executor's own overhead. The Ray cluster is started once, before the timings.

    .venv/bin/python benchmarks/bench_executor.py --problems 32 --delay 0.01
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from tracekit.configfile import from_mapping
from tracekit.executor import ExecutorConfig, LocalExecutor, make_executor
from tracekit.pipeline import run_pipeline
from tracekit.pipeline.config import RunConfig
from tracekit.sampling.scripted import ScriptedSampler


class Paced(ScriptedSampler):
    """Scripted answers after ``delay`` seconds per request."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def generate(self, requests):
        time.sleep(self.delay * len(requests))
        return super().generate(requests)


def run_config(
    store: str, problems: int, *, k: int = 4, max_tokens: int = 32, call_size: int = 8, **sections
) -> RunConfig:
    """The benchmarks' run config (``sections`` adds or replaces top-level sections)."""
    rearrange = {"formats": ["0C"], "n_max": 1, **sections.pop("rearrange", {})}
    return from_mapping(
        RunConfig,
        {
            "store": store,
            "tasks": [{"name": "multiplication", "n": problems}],
            "chunk_problems": 4,
            "sampling": {
                "variants": ["plain", "plan"],
                "samples_per_variant": k,
                "params": {"max_tokens": max_tokens},
            },
            "reflection": {"per_sample": 2, "call_size": call_size, "params": {"max_tokens": max_tokens}},
            "rearrange": rearrange,
            **sections,
        },
        "bench",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=32)
    ap.add_argument("--delay", type=float, default=0.01, help="seconds of stand-in model time per request")
    args = ap.parse_args()
    import ray

    temp = tempfile.mkdtemp(prefix="tkbench", dir="/tmp")
    os.environ["HOME"] = temp  # Ray's auth token goes here, not in the user's ~/.ray
    t = time.perf_counter()
    ray.init(num_cpus=2, object_store_memory=150 * 2**20, include_dashboard=False, _temp_dir=temp + "/r")
    print(f"ray.init: {time.perf_counter() - t:.1f} s (not in the timings below)")
    cases = {
        "local": lambda: LocalExecutor(),
        "ray, 1 replica": lambda: make_executor(ExecutorConfig(backend="ray", replicas=1)),
        "ray, 2 replicas": lambda: make_executor(ExecutorConfig(backend="ray", replicas=2)),
    }
    seconds = {}
    try:
        for name, executor in cases.items():
            store = os.path.join(temp, name.replace(" ", "").replace(",", "-"))
            t = time.perf_counter()
            out = run_pipeline(
                run_config(store, args.problems),
                sampler=Paced(args.delay),
                executor=executor(),
                progress=False,
                echo=lambda *a: None,
            )
            seconds[name] = time.perf_counter() - t
            rows = out["samples"] + out["reflections"]
            print(
                f"{name:16s} {seconds[name]:6.2f} s  ({rows} rows: {out['samples']} samples, "
                f"{out['reflections']} reflections)"
            )
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    one, two, local = seconds["ray, 1 replica"], seconds["ray, 2 replicas"], seconds["local"]
    print(
        f"ray 2 replicas vs 1: {one / two:.2f}x faster; ray 2 replicas vs local: {local / two:.2f}x; "
        f"ray 1 replica vs local: {local / one:.2f}x"
    )


if __name__ == "__main__":
    main()
