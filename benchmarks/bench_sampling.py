"""Sampling throughput through tracekit against the bare engine, on the same prompts, same run.

Input: the sample requests of ``configs/demo-cpu.yaml`` (64: 8 problems x 2 prompt variants x
4 samples, each prompt a system turn, two solved demonstrations and the question), in the
chunks ``tracekit run`` sends them. transformers (CPU here; the embedded SmolLM2-135M-Instruct):
wall time and generated tokens/s of a plain ``model.generate`` loop (left-padded batches in
request order, the backend's old way), of ``TransformersSampler.generate`` without the shared
prefix cache, and with it (the default). With ``--vllm MODEL`` (in an environment with vLLM:
``benchmarks/check_vllm.sh`` builds one for the CPU), the same config's sample stage through
tracekit's vLLM path against bare ``LLM.generate`` (``benchmarks/bench_vllm.py``, whose
target is an overhead under 10%).

    python benchmarks/bench_sampling.py            # all 64 requests
    python benchmarks/bench_sampling.py --prompts 16 --repeats 2
    ~/.cache/tracekit-vllm/venv/bin/python benchmarks/bench_sampling.py \
        --vllm ~/.cache/tracekit-vllm/smollm2-bf16 --enforce-eager
"""

from __future__ import annotations

import argparse
import time


def demo_chunks(config: str, limit: int | None = None):
    """The sample requests of a run config, chunk by chunk as ``tracekit run`` sends them
    (``configs/demo-cpu.yaml``: 8 problems x 2 variants x 4 samples = 64 requests, chunks of 4 problems)."""
    import polars as pl

    from tracekit.pipeline.config import load_config
    from tracekit.pipeline.run import make_problems, run_demos
    from tracekit.prompts import load_variants, pick_variants
    from tracekit.sample import SampleSetting, plan_samples

    cfg = load_config(config)
    problems = make_problems(cfg)
    demos, _ = run_demos(cfg, set(problems["problem_id"].to_list()))
    setting = SampleSetting(
        variants=tuple(pick_variants(list(cfg.sampling.variants), load_variants(cfg.sampling.variants_file))),
        k=cfg.sampling.samples_per_variant,
        params=cfg.sampling.params,
        seed=cfg.seed,
        model="bench",
        demos=demos,
    )
    empty = pl.DataFrame(
        schema={
            "sample_key": pl.Utf8,
            "sample_id": pl.Utf8,
            "max_tokens": pl.Int64,
            "finish_reason": pl.Utf8,
            "n_tokens": pl.Int64,
        }
    )
    chunks, total = [], 0
    for start in range(0, problems.height, cfg.chunk_problems):
        plan = plan_samples(problems.slice(start, cfg.chunk_problems), setting, empty)
        reqs = [w.request for w in plan.work]
        if limit is not None:
            reqs = reqs[: max(0, limit - total)]
        if reqs:
            chunks.append(reqs)
            total += len(reqs)
    return cfg, chunks


def bench_transformers(config: str, limit: int | None, repeats: int) -> None:
    import os

    from tracekit.sampling.hf import TransformersSampler

    cfg, chunks = demo_chunks(config, limit)
    batch_size = cfg.model.options.get("batch_size", 16)
    sampler = TransformersSampler(batch_size=batch_size)
    torch, tok, model = sampler._torch, sampler.tokenizer, sampler.model
    n_requests = sum(len(c) for c in chunks)

    def bare() -> int:
        """Plain model.generate, left-padded batches in request order (what the backend did before)."""
        torch.set_num_threads(sampler.threads)
        tokens = 0
        for reqs in chunks:
            texts = [sampler.prompt_text(r) for r in reqs]
            for start in range(0, len(texts), batch_size):
                enc = tok(
                    texts[start : start + batch_size],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                )
                p = reqs[start].params
                torch.manual_seed(start)
                with torch.no_grad():
                    out = model.generate(
                        **enc,
                        do_sample=True,
                        temperature=p.temperature,
                        top_p=p.top_p,
                        top_k=p.top_k,
                        repetition_penalty=p.repetition_penalty,
                        max_new_tokens=p.max_tokens,
                        pad_token_id=tok.pad_token_id,
                        stop_strings=list(p.stop) or None,
                        tokenizer=tok,
                    )
                gen = out[:, enc["input_ids"].shape[1] :]
                tokens += int((gen != tok.pad_token_id).sum())
        return tokens

    def ours(prefix_cache: bool):
        def run() -> int:
            sampler.prefix_cache = prefix_cache
            return sum(c.n_tokens for reqs in chunks for comps in sampler.generate(reqs) for c in comps)

        return run

    runs = {"bare model.generate": bare, "tracekit, no prefix cache": ours(False), "tracekit": ours(True)}
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in runs}
    sampler.generate(chunks[0][:2])  # warm-up
    for _ in range(repeats):
        for name, fn in runs.items():  # interleaved, so load bursts hit them alike
            start = time.perf_counter()
            tokens = fn()
            results[name].append((time.perf_counter() - start, tokens))
    print(
        f"transformers, {n_requests} sample requests of {config} ({len(chunks)} chunks, batch {batch_size}), "
        f"CPU threads {sampler.threads}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    base = min(t for t, _ in results["bare model.generate"])
    for name, values in results.items():
        best, tokens = min(values)
        print(
            f"  {name:<28} {best:7.1f} s  ({tokens:,} tokens, {tokens / best:6.1f} tok/s)  "
            f"{base / best:4.2f}x the bare loop's speed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/demo-cpu.yaml")
    parser.add_argument("--prompts", type=int, default=None, help="only the first N requests (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--vllm",
        metavar="MODEL",
        help="also tracekit's vLLM path vs bare LLM.generate on this model, same prompts (bench_vllm.py)",
    )
    parser.add_argument(
        "--enforce-eager", action="store_true", help="vLLM on CPU: no CUDA graphs / compilation"
    )
    args = parser.parse_args()
    bench_transformers(args.config, args.prompts, args.repeats)
    if args.vllm:
        import bench_vllm  # beside this file: one owner of the vLLM comparison

        bench_vllm.main(
            ["--model", args.vllm, "--config", args.config]
            + (["--enforce-eager"] if args.enforce_eager else [])
        )


if __name__ == "__main__":
    main()
