"""Check what a real vLLM engine wrote into a tracekit store (benchmarks/check_vllm.sh runs it).

    python check_store.py run STORE --model M --samples N --per-sample R --regex RE
    python check_store.py eval STORE --model M --rows N --trigger T

``run``: the current view holds N generated samples of model M, each with a verifier verdict;
one reflection per sample that did not hit ``max_tokens`` (times R), every one of them
matching RE as a whole (structured output) with a parsed verdict; at least one trace, each
linking samples and reflections of the view and ending correct; the run manifest records
whether the engine was batch invariant.

``eval``: N ``base`` rows and N ``forced`` rows of model M; every forced row that was
continued starts with its base response cut where the model stopped thinking, then the
trigger, and goes on from there (the engine continued the partial assistant turn: no second
copy of the prefix, no new turn), and at least one continuation is not empty.

Prints one line per check; exit status 1 when one fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

import polars as pl

from tracekit.evaluate.budget import cut_point
from tracekit.store import Store
from tracekit.store.views import view

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def check_run(store: Store, args) -> None:
    samples = view(store, "samples").collect()
    reflections = view(store, "reflections").collect()
    traces = view(store, "traces").collect()
    check(samples.height == args.samples, f"{samples.height} samples in the view (want {args.samples})")
    check(set(samples["source"]) == {"generate"}, "every sample was generated")
    check(set(samples["model"]) == {args.model}, f"every sample names the model {args.model}")
    check(bool(samples["response"].str.len_chars().min() > 0), "no sample response is empty")
    right = int(samples["is_correct"].sum())
    reasons = dict(samples.group_by("reason").len().iter_rows())
    check(right > 0, f"verifier verdicts: {right} of {samples.height} correct; reasons {reasons}")
    finished = samples.filter(pl.col("finish_reason") != "length")
    want = finished.height * args.per_sample
    check(
        reflections.height == want,
        f"{reflections.height} reflections (want {want}: {finished.height} samples not truncated x {args.per_sample})",
    )
    check(
        set(reflections["sample_id"]) == set(finished["sample_id"]),
        "every sample not truncated is reflected on, and no other",
    )
    pattern = re.compile(args.regex)
    bad = [t for t in reflections["text"].to_list() if not pattern.fullmatch(t)]
    check(not bad, f"every reflection matches the regex {args.regex!r} ({len(bad)} do not)")
    for text in bad[:3]:
        print(f"       {text[-120:]!r}")
    parsed = reflections.filter(pl.col("verdict_reason") == "ok").height
    check(parsed == reflections.height, f"{parsed} of {reflections.height} reflection verdicts parsed")
    agree = reflections.join(samples.select("sample_id", "is_correct"), on="sample_id").filter(
        pl.col("verdict") == pl.col("is_correct")
    )
    print(f"       {agree.height} reflections agree with the verifier (these can build traces)")
    check(traces.height > 0, f"{traces.height} traces in the view")
    linked = traces.explode("sample_ids")["sample_ids"].drop_nulls()
    check(bool(linked.is_in(samples["sample_id"].implode()).all()), "every trace's samples are in the view")
    linked_r = traces.explode("reflection_ids")["reflection_ids"].drop_nulls()
    check(
        bool(linked_r.is_in(agree["reflection_id"].implode()).all()),
        "every trace's reflections are in the view and agree with the verifier",
    )
    check(bool(traces["final_correct"].all()), "every trace ends with a correct answer")
    runs = store.read("runs").filter(pl.col("command") == "run").sort("finished_at")
    sampling = json.loads(runs["sampling_json"][-1])
    check(
        sampling.get("batch_invariant")
        is {"true": True, "false": False, "unknown": None}[args.batch_invariant],
        f"the run manifest records batch_invariant={sampling.get('batch_invariant')}",
    )


def check_eval(store: Store, args) -> None:
    evals = store.read("evals")
    base = evals.filter(pl.col("condition") == "base")
    forced = evals.filter(pl.col("condition") == "forced")
    check(base.height == args.rows, f"{base.height} base rows (want {args.rows})")
    check(forced.height == args.rows, f"{forced.height} forced rows (want {args.rows})")
    check(set(evals["model"]) == {args.model}, f"every row names the model {args.model}")
    pairs = forced.join(base, on="sample_key", suffix="_base")
    check(pairs.height == forced.height, "every forced row has its base row")
    continued = 0
    for row in pairs.filter(pl.col("n_forced") > 0).iter_rows(named=True):
        before = row["response_base"]
        prefix = before[: cut_point(before, ("</think>",))] + args.trigger
        text = row["response"]
        if not text.startswith(prefix):
            check(False, f"forced response starts with its base response cut + trigger: {text[:80]!r}")
            return
        rest = text[len(prefix) :]
        if prefix.strip() and rest.startswith(prefix.strip()[:40]):
            check(False, f"the continuation repeats the prefix (an echo): {rest[:80]!r}")
            return
        if "<|im_start|>" in rest:
            check(False, f"the continuation opens a new chat turn: {rest[:80]!r}")
            return
        continued += bool(rest.strip())
    n = pairs.filter(pl.col("n_forced") > 0).height
    check(n > 0, f"{n} forced rows continued their partial assistant turn")
    check(continued > 0, f"{continued} continuations are not empty")
    longer = pairs.filter(pl.col("n_forced") > 0, pl.col("n_tokens") > pl.col("n_tokens_base")).height
    check(longer == n, f"{longer} forced rows count more tokens than their base row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["run", "eval"])
    parser.add_argument("store")
    parser.add_argument("--model", required=True)
    parser.add_argument("--samples", type=int)
    parser.add_argument("--per-sample", type=int, default=1)
    parser.add_argument("--regex")
    parser.add_argument(
        "--batch-invariant",
        choices=["true", "false", "unknown"],
        default="false",
        help="what the run manifest must record (unknown: an HTTP endpoint)",
    )
    parser.add_argument("--rows", type=int)
    parser.add_argument("--trigger", default="\n<sample>\n")
    args = parser.parse_args()
    store = Store(args.store)
    print(f"== checking the {args.mode} store {args.store}")
    (check_run if args.mode == "run" else check_eval)(store, args)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
