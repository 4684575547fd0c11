"""The synthesis core as users run it: ``import-skillfactory`` -> ``rearrange`` -> ``export --to
trl-sft`` (and ``info``), each a ``tracekit`` process of its own, timed with its start-up and
measured for its own peak RSS.

Input: a synthetic raw table in the SkillFactory reference layout (QUESTIONS x 4 variants x 2
samples, 2 reflections each, responses ~1 KB, reflections ~0.5 KB); by default the padding is
random English words, which compresses like model text (``--text repeated``: one repeated
sentence, ~50x more compressible, the friendliest input). Job: ``*C_full`` with N_max 5.

    python benchmarks/bench_rearrange.py                         # 50k questions, local store
    python benchmarks/bench_rearrange.py --questions 25000 --scales 1,10,20   # flat memory?
    python benchmarks/bench_rearrange.py --store s3               # the store on a local moto server
    python benchmarks/bench_rearrange.py --reference sft_data_creation_v2.py  # against the reference

Printed beside the commands, in the same run: a **floor**, reading the input and writing its rows
and the exported rows once at the store's codec settings (what no implementation of these
commands can skip), and with ``--reference SCRIPT`` the SkillFactory reference script (not shipped
with tracekit) on the same input, Hub I/O replaced by local files, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def tracekit_bin() -> list[str]:
    exe = Path(sys.executable).with_name("tracekit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tracekit.cli"]


def measured(cmd: list[str], *, env: dict | None = None) -> tuple[float, float]:
    """Run ``cmd``; its wall seconds and its own peak RSS in MB (``wait4`` reports the child's)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


_MAKE_RAW = """
import sys, pyarrow.parquet as pq
from tracekit.reference import synthetic_raw
questions, path, text, chunk = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
writer = None
for i, first in enumerate(range(0, questions, chunk)):
    part = synthetic_raw(min(chunk, questions - first), response_chars=1000, reflection_chars=500,
                         seed=i, text=text, first_question=first).to_arrow()
    writer = writer or pq.ParquetWriter(path, part.schema, compression="zstd")
    writer.write_table(part)
writer.close()
"""


def make_raw(questions: int, path: Path, text: str) -> None:
    """Write the synthetic input in a separate process, so this one stays small, and in
    pieces of 25,000 questions (a 20x input would not fit in memory at once)."""
    subprocess.run([sys.executable, "-c", _MAKE_RAW, str(questions), str(path), text, "25000"], check=True)


# reading the input and writing the output bytes once, streaming (flat memory, like the commands)
_FLOOR = """
import sys, time, polars as pl
from tracekit.store.files import sink_parquet
raw, sft, out = sys.argv[1:4]
t0 = time.perf_counter()
sink_parquet(pl.scan_parquet(raw), out + "/floor-in.parquet")
sink_parquet(pl.scan_parquet(sft), out + "/floor-out.parquet")
print(time.perf_counter() - t0)
"""


def floor(raw: Path, sft: Path, work: Path) -> tuple[float, float]:
    """Read the input and write its rows and the exported rows once at the store's settings."""
    out = subprocess.run(
        [sys.executable, "-c", _FLOOR, str(raw), str(sft), str(work)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1]), 0.0


def run_scale(n: int, args, work: Path, store: str, env: dict) -> dict:
    raw = work / "raw.parquet"
    make_raw(n, raw, args.text)
    tk = tracekit_bin()
    sft = work / "sft"
    steps = {
        "import": [*tk, "import-skillfactory", str(raw), "--store", store],
        "rearrange": [
            *tk,
            "rearrange",
            "--store",
            store,
            "--formats",
            "*C_full",
            "--n-max",
            "5",
            "--seed",
            "0",
        ],
        "export": [*tk, "export", "--store", store, "--to", "trl-sft", "--out", str(sft)],
        "info": [*tk, "info", "--store", store],
    }
    res = {name: measured(cmd, env=env) for name, cmd in steps.items()}
    if args.floor:
        res["floor"] = floor(raw, sft / "train.parquet", work)
    import polars as pl

    res["traces"] = pl.scan_parquet(sft / "train.parquet").select(pl.len()).collect().item()
    res["input_mb"] = raw.stat().st_size / 1e6
    if args.reference:
        res["reference"] = run_reference(args.reference, raw, work)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=50_000)
    parser.add_argument(
        "--scales", default="1", help="comma-separated multiples of --questions (e.g. 1,10,20)"
    )
    parser.add_argument(
        "--store", choices=["local", "s3"], default="local", help="a folder, or a moto S3 server"
    )
    parser.add_argument(
        "--reference", help="the SkillFactory reference script, run on the same input (scale 1)"
    )
    parser.add_argument(
        "--text",
        choices=["words", "repeated"],
        default="words",
        help="padding of responses and reflections: random English words (compresses ~2-3x, like model "
        "text; the default) or one repeated sentence (compresses ~50x)",
    )
    args = parser.parse_args()
    env = dict(os.environ)
    server = None
    if args.store == "s3":
        sys.path.insert(0, str(HERE.parent / "tests"))
        from s3_server import S3Server  # the tests' moto server on 127.0.0.1

        server = S3Server()
        env.update(server.env)
    results = []
    args.floor = True
    try:
        for i, scale in enumerate(int(s) for s in args.scales.split(",")):
            n = args.questions * scale
            with tempfile.TemporaryDirectory(prefix="tk-bench-") as tmp:
                work = Path(tmp)
                store = str(work / "st") if server is None else f"s3://{server.bucket(f'tk-bench-{i}')}/st"
                if i:  # the reference and the floor run at the first scale only
                    args.reference, args.floor = None, False
                res = run_scale(n, args, work, store, env)
            results.append((n, res))
            report(n, res, args)
    finally:
        if server is not None:
            server.stop()
    if len(results) > 1:
        (n0, r0), (n1, r1) = results[0], results[-1]
        for step in ("import", "rearrange", "export", "info"):
            print(
                f"scaling x{n1 / n0:.0f} {step:>9}: time x{r1[step][0] / r0[step][0]:.2f}, "
                f"peak RSS x{r1[step][1] / r0[step][1]:.2f}"
            )


def report(n: int, res: dict, args) -> None:
    total = sum(res[s][0] for s in ("import", "rearrange", "export"))
    print(
        f"questions={n:,}  samples={n * 8:,}  reflections={n * 16:,}  traces={res['traces']:,}  "
        f"text={args.text}  store={args.store}  input {res['input_mb']:,.0f} MB  load {os.getloadavg()[0]:.1f}"
    )
    for step in ("import", "rearrange", "export", "info"):
        print(f"  {step:>9} {res[step][0]:8.2f} s   peak RSS {res[step][1]:7,.0f} MB")
    print(f"  three commands {total:.2f} s ({res['traces'] / total:,.0f} traces/s)")
    if "floor" in res:
        print(f"  floor (read input, write its rows and the exported rows once) {res['floor'][0]:.2f} s")
    if "reference" in res:
        ref_s, ref_peak = res["reference"]
        peak = max(res[s][1] for s in ("import", "rearrange", "export"))
        print(
            f"  reference script {ref_s:.2f} s, peak RSS {ref_peak:,.0f} MB   -> tracekit "
            f"{ref_s / total:.1f}x faster, {ref_peak / peak:.1f}x less memory"
        )


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
    return measured([sys.executable, "-c", _REFERENCE_SHIM, str(raw), script, str(work / "ref.parquet")])


if __name__ == "__main__":
    main()
