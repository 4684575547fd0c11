"""Sampling throughput through tracekit against the bare engine, on the same prompts, same run.

transformers (CPU here; the embedded SmolLM2-135M-Instruct by default): generated tokens/s
of ``TransformersSampler.generate`` against a plain ``model.generate`` loop with the same
batches, seeds and settings; the ratio is tracekit's overhead. With ``--vllm MODEL`` on a
GPU machine, the same comparison for vLLM (``VLLMSampler`` against ``LLM.generate``).

    python benchmarks/bench_sampling.py --prompts 32 --max-tokens 48
"""

from __future__ import annotations

import argparse
import time


def prompts(n: int):
    from tracekit.tasks import get_task

    problems = get_task("multiplication").generate(n, seed=0, digits=2, digits_b=1)
    return [({"role": "user", "content": q},) for q in problems["question"].to_list()]


def bench_transformers(n: int, max_tokens: int, batch_size: int) -> None:
    from tracekit.sampling.base import Request, SamplingParams
    from tracekit.sampling.hf import TransformersSampler

    sampler = TransformersSampler(batch_size=batch_size)
    params = SamplingParams(max_tokens=max_tokens, stop=())  # no stop strings: both sides do the same work
    reqs = [Request(m, n=1, seed=i, params=params) for i, m in enumerate(prompts(n))]
    sampler.generate(reqs[:batch_size])  # warm-up
    torch, tok, model = sampler._torch, sampler.tokenizer, sampler.model
    if sampler.threads:  # the sampler sets its threads per batch only: give the bare loop the same
        torch.set_num_threads(sampler.threads)
    texts = [sampler.render(r.messages) for r in reqs]

    def bare() -> int:
        tokens = 0
        for start in range(0, len(texts), batch_size):
            enc = tok(
                texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            )
            torch.manual_seed(start)
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=0.7,
                    top_p=0.8,
                    top_k=20,
                    repetition_penalty=1.1,
                    max_new_tokens=max_tokens,
                    pad_token_id=tok.pad_token_id,
                )
            gen = out[:, enc["input_ids"].shape[1] :]
            tokens += int((gen != tok.pad_token_id).sum())
        return tokens

    def ours() -> int:
        return sum(c.n_tokens for comps in sampler.generate(reqs) for c in comps)

    results = {}
    for name, fn in (("bare", bare), ("tracekit", ours), ("bare", bare), ("tracekit", ours)):
        start = time.perf_counter()
        tokens = fn()
        rate = tokens / (time.perf_counter() - start)
        results.setdefault(name, []).append(rate)
    b, t = max(results["bare"]), max(results["tracekit"])
    print(
        f"transformers, {n} prompts x {max_tokens} tokens, batch {batch_size}, CPU threads {torch.get_num_threads()}"
    )
    print(
        f"  bare model.generate: {b:,.1f} tok/s   tracekit: {t:,.1f} tok/s   overhead {100 * (1 - t / b):+.1f}%"
    )


def bench_vllm(model: str, n: int, max_tokens: int) -> None:
    import vllm

    from tracekit.sampling.base import Request, SamplingParams
    from tracekit.sampling.vllm import VLLMSampler, vllm_params

    sampler = VLLMSampler(model=model)
    params = SamplingParams(max_tokens=max_tokens, stop=())
    reqs = [Request(m, n=4, seed=i, params=params) for i, m in enumerate(prompts(n))]
    texts = [sampler.render(r.messages) for r in reqs]
    vparams = [vllm_params(vllm, params, r.n, r.seed) for r in reqs]
    sampler.llm.generate(texts[:8], sampling_params=vparams[:8], use_tqdm=False)
    start = time.perf_counter()
    outs = sampler.llm.generate(texts, sampling_params=vparams, use_tqdm=False)
    b = sum(len(o.token_ids) for out in outs for o in out.outputs) / (time.perf_counter() - start)
    start = time.perf_counter()
    t = sum(c.n_tokens for comps in sampler.generate(reqs) for c in comps) / (time.perf_counter() - start)
    print(f"vllm {model}, {n} prompts x 4 samples x {max_tokens} tokens")
    print(
        f"  bare LLM.generate: {b:,.0f} tok/s   tracekit: {t:,.0f} tok/s   overhead {100 * (1 - t / b):+.1f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--vllm", help="also benchmark vLLM with this model (GPU)")
    args = parser.parse_args()
    bench_transformers(args.prompts, args.max_tokens, args.batch_size)
    if args.vllm:
        bench_vllm(args.vllm, args.prompts, args.max_tokens)


if __name__ == "__main__":
    main()
