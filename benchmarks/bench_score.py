"""``tracekit score`` as users run it: a ``tracekit`` process of its own on a jsonl file of model
responses, timed with its start-up and measured for its own peak RSS (``wait4``).

Input: model-like jsonl, one ~1 KB response per line (random English words as reasoning inside
``<think>``, then a short conclusion and an ``<answer>`` region), 8 samples per problem. The
lines mix correct answers, wrong ones, unanswered ones (no tags, or an answer only inside the
thinking), empty and multi-candidate answers and ~2% malformed lines (not JSON, a missing field, a
field of the wrong type), for the ``countdown`` task and for ``gsm8k``.

    python benchmarks/bench_score.py                      # countdown and gsm8k at 50k lines, countdown at 1M
    python benchmarks/bench_score.py --lines 50000,200000 --tasks countdown   # flat memory?

Printed beside each command, in the same run: a **baseline**, the task's verifier alone in one
process (a loop of ``task.score(response, fields)`` over the same lines, already parsed, no I/O:
the per-line work as it was done before), and the ratio of the command's lines/s to it; and a
**floor**, reading the input and writing it out once (256 KB at a time, UTF-8 decoded and
encoded, flushed to disk) in one process: what any command that writes its input back pays.
``--ids`` gives every line its own ``id`` field, so no two lines share the spelling of their
other fields (every line is parsed and laid out on its own; the default has 8 lines a problem).
The machine's load average is printed before and after each command.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_WORDS = (
    "the of and to in is that it for as with was on be by this are or from at an but not have which "
    "we can all their more one will so if there about up out them then these some would into number "
    "numbers target try subtract multiply divide add result close check again wait maybe first second "
    "left right sum product difference quotient works does gives need make use each once other step"
).split()
BASELINE_LINES = 100_000  # the baseline loop runs on (at most) this many lines of the same file


def tracekit_bin() -> list[str]:
    exe = Path(sys.executable).with_name("tracekit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tracekit.cli"]


def measured(cmd: list[str]) -> tuple[float, float, int, str, float]:
    """Run ``cmd``; its wall seconds, its own peak RSS in MB, exit status, stdout (stderr too
    when it fails) and CPU seconds (user + system, its worker processes included)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            err.seek(0)
            stdout += err.read()[-3000:]
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, usage.ru_maxrss / 1024, code, stdout.decode(errors="replace"), cpu


def _problems(task: str, n: int, rng: random.Random) -> list[tuple[dict, list[str], list[str]]]:
    """``n`` problems: (fields, right answers, wrong answers)."""
    out = []
    if task == "countdown":
        from tracekit.tasks.countdown import Countdown

        frame = Countdown().generate(n, seed=0, n_numbers=4)
        for witness, meta in frame.select("answer", "meta").iter_rows():
            meta = json.loads(meta)
            nums = meta["numbers"]
            right = [witness, f"{witness} = {meta['target']}"]
            wrong = [
                witness.replace("+", "-", 1) if "+" in witness else witness + " + 1",
                " + ".join(map(str, rng.sample(nums, len(nums)))),
                f"{nums[0]} * {nums[1]}",
            ]
            out.append(({"numbers": nums, "target": meta["target"]}, right, wrong))
    else:  # gsm8k: the fields of an imported GSM8K problem
        for i in range(n):
            value = rng.randint(2, 5000)
            right = [str(value), f"{value:,}", f"${value}"]
            wrong = [str(value + rng.randint(1, 9)), str(value * 2), f"{value / 7:.2f}"]
            out.append(({"answer": str(value), "checker": "number", "id": i}, right, wrong))
    return out


def make_input(task: str, lines: int, path: Path | str, seed: int = 0, ids: bool = False) -> None:
    """Write ``lines`` model-like jsonl lines for ``task`` to ``path`` (the texts need no JSON
    escapes but the newline, so the lines are spelt directly, as json.dumps would); ``ids``:
    each line starts with its own ``"id"``."""
    rng = random.Random(seed)
    problems = _problems(task, max(1, lines // 8), rng)
    sentences = [" ".join(rng.choices(_WORDS, k=rng.randint(8, 20))).capitalize() + "." for _ in range(4000)]
    with open(path, "w", encoding="utf-8") as fh:
        buf = []
        for i in range(lines):
            fields, right, wrong = problems[i // 8]
            if i % 8 == 0:
                head = json.dumps(fields)[:-1] + ', "response": "<think>'
            think = " ".join(rng.choices(sentences, k=12))
            kind = rng.random()
            if kind < 0.40:
                tail = f"So the answer is found. <answer>{rng.choice(right)}</answer>"
            elif kind < 0.75:
                tail = f"I will go with this. <answer>{rng.choice(wrong)}</answer>"
            elif kind < 0.85:
                tail = "I could not find it."  # unanswered
            elif kind < 0.90:
                think = f"{think} <answer>{right[0]}</answer>"  # an answer only inside the thinking
                tail = "Done."
            elif kind < 0.94:
                tail = "<answer> </answer>"
            elif kind < 0.98:
                tail = f"<answer>{right[0]} or {wrong[0]}</answer>"
            else:
                buf.append(_malformed(rng, fields, task))
                continue
            line = f'{head}{think}</think>\\n{tail}"}}\n'
            buf.append(f'{{"id": {i}, {line[1:]}' if ids else line)
            if len(buf) >= 10_000:
                fh.write("".join(buf))
                buf.clear()
        fh.write("".join(buf))


def _malformed(rng: random.Random, fields: dict, task: str) -> str:
    """A line ``tracekit score`` reports: not JSON, a missing field, a field of the wrong type."""
    bad = rng.randrange(4)
    if bad == 0:
        return '{"response": "<answer>1</answer>", "oops\n'  # cut short
    record = dict(fields)
    if bad == 1:
        record.pop(next(iter(record)))
    elif bad == 2:
        key = next(iter(record))
        record[key] = json.dumps(record[key]) if task == "countdown" else [1]
    record["response"] = 7 if bad == 3 else "<answer>1</answer>"
    return json.dumps(record) + "\n"


_BASELINE = """
import json, sys, time
from tracekit.tasks import get_task
task, path, limit = get_task(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rows = []
with open(path, encoding="utf-8") as fh:
    for i, line in enumerate(fh):
        if i >= limit:
            break
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r.get("response"), str) and task.field_error(r) is None:
            rows.append((r["response"], r))
t0 = time.perf_counter()
for response, record in rows:
    task.score(response, record)
print(len(rows), time.perf_counter() - t0)
"""


_FLOOR = """
import os, sys, time
t0 = time.perf_counter()
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "w", encoding="utf-8") as dst:
    while piece := src.read(256 << 10):
        dst.write(piece.decode("utf-8"))
    dst.flush()
    os.fsync(dst.fileno())
print(time.perf_counter() - t0)
"""


def floor(path: Path, out: Path) -> float:
    """Seconds to read ``path`` and write its text to ``out`` once, flushed (one process)."""
    done = subprocess.run(
        [sys.executable, "-c", _FLOOR, str(path), str(out)], capture_output=True, text=True, check=True
    )
    out.unlink()
    return float(done.stdout)


def baseline(task: str, path: Path) -> float:
    """Lines/s of the task's verifier alone in one process, on the first lines of ``path``."""
    out = subprocess.run(
        [sys.executable, "-c", _BASELINE, task, str(path), str(BASELINE_LINES)],
        capture_output=True,
        text=True,
        check=True,
    )
    n, seconds = out.stdout.split()
    return int(n) / float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", default="50000", help="comma-separated line counts (default 50000)")
    parser.add_argument("--tasks", default="countdown,gsm8k")
    parser.add_argument(
        "--big", type=int, default=1_000_000, help="countdown also at this many lines (0: not)"
    )
    parser.add_argument("--ids", action="store_true", help="every line its own id (no shared spellings)")
    args = parser.parse_args()
    runs = [(t, int(n)) for t in args.tasks.split(",") for n in args.lines.split(",")]
    if args.big and "countdown" in args.tasks.split(","):
        runs.append(("countdown", args.big))
    start = measured([*tracekit_bin(), "score", "--help"])[0]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cpus} CPUs (the command scores in {cpus} worker processes where there are 2 or more)")
    print(f"load {os.getloadavg()[0]:.1f}; `tracekit score --help` (start-up) {start:.2f} s")
    for task, n in runs:
        with tempfile.TemporaryDirectory(prefix="tk-bench-score-") as tmp:
            src, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
            # in a process of its own: a child's peak RSS starts at this process's (fork, then exec)
            code = (
                "import sys; from bench_score import make_input as m; "
                "m(sys.argv[1], int(sys.argv[2]), sys.argv[3], ids=sys.argv[4] == '1')"
            )
            subprocess.run(
                [sys.executable, "-c", code, task, str(n), str(src), str(int(args.ids))],
                check=True,
                cwd=Path(__file__).parent,
            )
            load = os.getloadavg()[0]
            seconds, peak, code, stdout, cpu = measured(
                [*tracekit_bin(), "score", str(src), "--task", task, "--out", str(out)]
            )
            if code not in (0, 1):
                raise SystemExit(f"tracekit score failed ({code}): {stdout}")
            load_after = os.getloadavg()[0]
            base = baseline(task, src)
            least = floor(src, Path(tmp) / "floor.jsonl")
            rate = n / seconds
            print(
                f"{task:>9} {n:>9,} lines ({src.stat().st_size / 1e6:,.0f} MB{', ids' if args.ids else ''}): "
                f"{seconds:6.2f} s {rate:>9,.0f} lines/s  CPU {cpu:.2f} s ({cpu / n * 1e6:.1f} us a line)  "
                f"peak RSS {peak:6,.0f} MB  (load {load:.1f} -> "
                f"{load_after:.1f})\n{'':>10} verifier alone {base:>9,.0f} lines/s -> command/verifier "
                f"{rate / base:.2f};  floor (read + write once) {least:.2f} s -> command/floor "
                f"{seconds / least:.1f}x   [{stdout.strip().split(' -> ')[0]}]"
            )


if __name__ == "__main__":
    main()
