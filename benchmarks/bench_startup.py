"""How fast the command line answers: ``tracekit --help``, ``tracekit tasks list``,
``tracekit info`` on a small store and ``tracekit score`` on a one-line file, each a fresh
process as a user starts it.

Each command runs ``--repeat`` times (after one warm-up run that fills the OS file cache and
tracekit's word-list cache); the median and the fastest wall time are printed beside, in the
same run, a bare interpreter (``python -c pass``) and ``python -c "import polars"``, so the
figures can be read against what any Python command and any polars command pay on this
machine at this load. The store is a ``--dry-run`` of ``configs/demo-cpu.yaml`` (8 problems).

    python benchmarks/bench_startup.py             # 7 runs each
    python benchmarks/bench_startup.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tracekit_bin() -> list[str]:
    exe = Path(sys.executable).with_name("tracekit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tracekit.cli"]


def timed(cmd: list[str], repeat: int) -> list[float]:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    tk = tracekit_bin()
    with tempfile.TemporaryDirectory(prefix="tk-startup-") as tmp:
        store = str(Path(tmp) / "store")
        config = str(ROOT / "configs" / "demo-cpu.yaml")
        subprocess.run([*tk, "run", config, "--dry-run", "--store", store], check=True, capture_output=True)
        one = Path(tmp) / "one.jsonl"
        one.write_text(
            '{"numbers": [1, 2], "target": 3, "response": "<answer>1 + 2</answer>"}\n', encoding="utf-8"
        )
        score = [*tk, "score", str(one), "--task", "countdown", "--out", str(Path(tmp) / "scored.jsonl")]
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import polars'": [sys.executable, "-c", "import polars"],
            "tracekit --help": [*tk, "--help"],
            "tracekit tasks list": [*tk, "tasks", "list"],
            "tracekit info (8 problems)": [*tk, "info", "--store", store],
            "tracekit score (1 line)": score,
        }
        print(
            f"load {os.getloadavg()[0]:.1f}  cores {os.cpu_count()}  runs {args.repeat} each (after one warm-up)"
        )
        base = None
        for name, cmd in cases.items():
            times = timed(cmd, args.repeat)
            med = statistics.median(times)
            base = base or med
            print(
                f"  {name:<28} median {med:6.3f} s   fastest {min(times):6.3f} s   x{med / base:4.1f} bare python"
            )


if __name__ == "__main__":
    main()
