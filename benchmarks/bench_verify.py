"""Countdown verifier throughput (answers/s, one core) and worst-case time on adversarial input.

Prints tracekit's figures next to reasoning-gym's countdown scorer (sympy-based) measured
in the same run on the same answers, when reasoning-gym is installed.

    python benchmarks/bench_verify.py --answers 20000
"""

from __future__ import annotations

import argparse
import json
import random
import time


def make_answers(n: int):
    from tracekit.tasks.countdown import Countdown

    task = Countdown()
    problems = task.generate(max(1, n // 4), seed=0, n_numbers=4)
    rng = random.Random(0)
    out = []
    for witness, meta in problems.select("answer", "meta").iter_rows():
        meta = json.loads(meta)
        nums = meta["numbers"]
        for text in (
            witness,
            witness.replace("+", "-", 1),
            " + ".join(map(str, rng.sample(nums, len(nums)))),
            f"({witness}) * 1",
        ):
            out.append((f"<think>Let me try.</think>\n<answer>{text}</answer>", meta))
    return out[:n]


ADVERSARIAL = {
    "huge power": "2" + "**9" * 300,
    "huge literal": "9" * 100_000,
    "10,000 nested parentheses": "(" * 10_000 + "1" + ")" * 10_000,
    "1 MB string": "1+" * 500_000 + "1",
    "unicode digits": "١٢ + ٣٤ * ٥",
    "long product": "*".join(["999999999999"] * 150),
    "division chain": "/".join(["7"] * 600),
    "unary minus storm": "-" * 100_000 + "1",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--answers", type=int, default=20_000)
    args = parser.parse_args()
    from tracekit.tasks.countdown import Countdown

    task = Countdown()
    answers = make_answers(args.answers)
    start = time.perf_counter()
    results = [task.score(text, meta).is_correct for text, meta in answers]
    ours = len(answers) / (time.perf_counter() - start)
    print(
        f"tracekit countdown verifier: {ours:,.0f} answers/s on one core ({len(answers)} answers, "
        f"{sum(results)} correct)"
    )
    try:
        from reasoning_gym.games.countdown import CountdownConfig, CountdownDataset

        from tracekit.extract import final_answer

        scorer = CountdownDataset(CountdownConfig(size=1, seed=0))
        sample = answers[: min(len(answers), 2000)]
        start = time.perf_counter()
        for text, meta in sample:
            scorer.score_answer(
                final_answer(text), {"metadata": {"numbers": meta["numbers"], "target": meta["target"]}}
            )
        theirs = len(sample) / (time.perf_counter() - start)
        print(
            f"reasoning-gym countdown scorer: {theirs:,.0f} answers/s ({len(sample)} answers) "
            f"-> tracekit is {ours / theirs:.0f}x faster"
        )
    except ImportError:
        print("reasoning-gym not installed: no baseline figure")
    meta = {"numbers": [1, 2, 3, 4], "target": 10}
    worst = 0.0
    for name, text in ADVERSARIAL.items():
        best = min(_time(task, f"<answer>{text}</answer>", meta) for _ in range(5))
        worst = max(worst, best)
        print(
            f"  adversarial {name:<28} {best * 1e3:8.3f} ms  -> {task.score(f'<answer>{text}</answer>', meta).reason}"
        )
    print(f"worst case: {worst * 1e3:.3f} ms per answer")


def _time(task, text, meta) -> float:
    start = time.perf_counter()
    task.score(text, meta)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
