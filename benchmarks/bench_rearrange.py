"""Rearrangement throughput and peak memory, from import to the exported TRL SFT parquet.

Input: a synthetic raw table in the SkillFactory reference layout (QUESTIONS x 4 variants
x 2 samples, 2 reflections each, responses ~1 KB, reflections ~0.5 KB). Job: `*C_full`
with N_max 5. The timed job runs in a child process so its peak RSS is measured alone.

    python benchmarks/bench_rearrange.py --questions 50000
    python benchmarks/bench_rearrange.py --questions 5000 --scales 1,10   # linearity check
    python benchmarks/bench_rearrange.py --text words                     # text that compresses like model output

With ``--reference SCRIPT`` the SkillFactory reference script (not shipped with
tracekit) is run on the same input in the same run, and the ratio is printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(raw: str, work: str) -> None:
    import tracekit

    tracekit.tune_allocator()  # as the `tracekit` command does, before polars loads
    from tracekit.export import export_trl_sft
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    t0 = time.perf_counter()
    store = Store(Path(work) / "st", create=True)
    counts = import_skillfactory(raw, store)
    t1 = time.perf_counter()
    stats = rearrange_store(store, RearrangeConfig(formats=("*C_full",), n_max=5, seed=0))
    t2 = time.perf_counter()
    out = export_trl_sft(store, Path(work) / "sft")
    t3 = time.perf_counter()
    print(
        json.dumps(
            {
                "peak_rss_mb": _vm_hwm_mb(),
                "import_s": t1 - t0,
                "rearrange_s": t2 - t1,
                "export_s": t3 - t2,
                "total_s": t3 - t0,
                "traces": stats["traces/written"],
                "samples": counts["samples"],
                "reflections": counts["reflections"],
                "sft_bytes": sum(p.stat().st_size for p in out.files.values()),
            }
        )
    )


def _vm_hwm_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: list[str]) -> tuple[dict, float]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result = json.loads(last[-1]) if last else {}
    return result, result.get("peak_rss_mb", float("nan"))


def make_raw(questions: int, path: Path, text: str) -> None:
    """Write the synthetic input in a separate process, so this one stays small."""
    code = (
        "import sys; from tracekit.reference import synthetic_raw; "
        "synthetic_raw(int(sys.argv[1]), response_chars=1000, reflection_chars=500, seed=0, text=sys.argv[3])"
        ".write_parquet(sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(questions), str(path), text], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=50_000)
    parser.add_argument("--scales", default="1", help="comma-separated multiples of --questions (e.g. 1,10)")
    parser.add_argument(
        "--reference", help="path to the SkillFactory reference script, run on the same input"
    )
    parser.add_argument(
        "--text",
        choices=["repeated", "words"],
        default="repeated",
        help="padding of responses and reflections: one repeated sentence (compresses ~50x) "
        "or random English words (compresses ~2-3x, like model text)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    results = []
    for scale in [int(s) for s in args.scales.split(",")]:
        with tempfile.TemporaryDirectory(prefix="tk-bench-") as work:
            raw = Path(work) / "raw.parquet"
            n = args.questions * scale
            make_raw(n, raw, args.text)
            res, peak = run_child(["--child", str(raw), work])
            results.append((n, res, peak))
            print(
                f"questions={n:>8}  samples={res['samples']:>8}  reflections={res['reflections']:>8}  "
                f"traces={res['traces']:>8}  text={args.text}"
            )
            print(
                f"  import {res['import_s']:.2f} s   rearrange {res['rearrange_s']:.2f} s   "
                f"export {res['export_s']:.2f} s   total {res['total_s']:.2f} s"
            )
            print(
                f"  throughput {res['traces'] / res['total_s']:,.0f} traces/s   peak RSS {peak:,.0f} MB   "
                f"SFT parquet {res['sft_bytes'] / 1e6:,.0f} MB"
            )
            if args.reference and scale == 1:
                ref_s, ref_peak = run_reference(args.reference, raw, Path(work))
                print(
                    f"  reference script: {ref_s:.2f} s, peak RSS {ref_peak:,.0f} MB   "
                    f"-> tracekit is {ref_s / res['total_s']:.1f}x faster, {ref_peak / peak:.1f}x less memory"
                )
    if len(results) > 1:
        (n0, r0, p0), (n1, r1, p1) = results[0], results[-1]
        print(f"scaling x{n1 / n0:.0f}: time x{r1['total_s'] / r0['total_s']:.2f}, peak RSS x{p1 / p0:.2f}")


_REFERENCE_SHIM = """
import sys, runpy, datasets
raw, script, out = sys.argv[1:4]
def load_dataset(*a, **k):
    return {"train": datasets.Dataset.from_parquet(raw)}
datasets.load_dataset = load_dataset
datasets.Dataset.push_to_hub = lambda self, name, *a, **k: self.to_parquet(out)
sys.argv = [script, "--formats", "*C_full", "--num_responses_ignore_correctness", "5",
            "--num_repeats_per_question", "1"]
runpy.run_path(script, run_name="__main__")
"""


def run_reference(script: str, raw: Path, work: Path) -> tuple[float, float]:
    """Run the reference script on ``raw`` (Hub I/O replaced by local files); seconds and peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _REFERENCE_SHIM, str(raw), script, str(work / "ref.parquet")],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # parent is small: fair


if __name__ == "__main__":
    main()
