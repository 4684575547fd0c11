"""tracekit's vLLM path against bare ``LLM.generate``: same engine, same prompts, same run.

The prompts are the sample stage's of a run config (default ``configs/demo-cpu.yaml``: 8
problems x 2 variants x 4 samples = 64 requests with two solved demonstrations each, its
sampling settings). ``tracekit`` times the sample stage's work step, :func:`tracekit.sample.draw_samples`
through :class:`~tracekit.sampling.vllm.VLLMSampler` (render the chat, build the requests, generate,
verify every response, build the ``samples`` frame); ``bare`` times ``LLM.generate`` on the same
rendered prompts with ``vllm.SamplingParams`` written out by hand (same seeds). One warm-up of each,
then ``--rounds`` alternating rounds; the medians and their ratio are printed, with the load
average before and after, and how many texts the two paths share (the same batch in the same order
gives the same texts on a batch-dependent engine).

    VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_OMP_THREADS_BIND=0-1 \\
        python benchmarks/bench_vllm.py --model ~/.cache/tracekit-vllm/smollm2-bf16 --enforce-eager

Run it in an environment with vLLM (benchmarks/check_vllm.sh builds one). On a GPU, leave out
``--enforce-eager``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def problems_of(cfg):
    """The config's problems and solved demonstrations, as ``tracekit run`` makes them."""
    from tracekit.pipeline.run import make_problems, run_demos

    frame = make_problems(cfg)
    demos, _ = run_demos(cfg, set(frame["problem_id"].to_list()))
    return frame, demos


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a model folder or Hub id vLLM loads")
    parser.add_argument(
        "--config", default="configs/demo-cpu.yaml", help="run config whose sample prompts are used"
    )
    parser.add_argument("--problems", type=int, help="problems per task (default: the config's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / compilation (CPU)")
    parser.add_argument("--max-model-len", type=int, default=2048)
    args = parser.parse_args(argv)

    import polars as pl
    import vllm

    from tracekit.pipeline.config import load_config
    from tracekit.prompts import load_variants, pick_variants
    from tracekit.sample import INDEX_COLUMNS, SampleSetting, draw_samples, plan_samples
    from tracekit.sampling.vllm import VLLMSampler
    from tracekit.schemas import polars_schema

    load_before = os.getloadavg()
    cfg = load_config(args.config)
    if args.problems:
        import dataclasses

        cfg = dataclasses.replace(
            cfg, tasks=tuple(dataclasses.replace(t, n=args.problems) for t in cfg.tasks)
        )
    problems, demos = problems_of(cfg)
    engine = {"max_model_len": args.max_model_len, "enforce_eager": args.enforce_eager}
    t0 = time.perf_counter()
    sampler = VLLMSampler(model=args.model, engine=engine)
    ready = time.perf_counter() - t0
    schema = polars_schema("samples")
    setting = SampleSetting(
        variants=tuple(pick_variants(list(cfg.sampling.variants), load_variants(cfg.sampling.variants_file))),
        k=cfg.sampling.samples_per_variant,
        params=cfg.sampling.params,
        seed=cfg.seed,
        model=sampler.model_id,
        revision=sampler.model_revision,
        demos=demos,
    )
    plan = plan_samples(problems, setting, pl.DataFrame(schema={c: schema[c] for c in INDEX_COLUMNS}))
    requests = [w.request for w in plan.work]
    p = cfg.sampling.params
    prompts = [sampler.render(r.messages) + r.prefix for r in requests]
    bare_params = [
        vllm.SamplingParams(
            n=r.n,
            temperature=p.temperature,
            top_p=p.top_p,
            top_k=p.top_k,
            repetition_penalty=p.repetition_penalty,
            max_tokens=p.max_tokens,
            stop=list(p.stop) or None,
            include_stop_str_in_output=True,
            seed=r.seed,
        )
        for r in requests
    ]

    def bare():
        outs = sampler.llm.generate(prompts, sampling_params=bare_params, use_tqdm=False)
        texts = [o.text for out in outs for o in out.outputs]
        return texts, sum(len(o.token_ids) for out in outs for o in out.outputs)

    def ours():
        frame = draw_samples(plan, sampler)
        return frame["response"].to_list(), int(frame["n_tokens"].sum())

    times: dict[str, list[float]] = {"bare": [], "tracekit": []}
    same = []
    for round_ in range(args.rounds + 1):  # round 0: warm-up of both (prefix cache, allocator)
        texts = {}
        for name, fn in (
            (("bare", bare), ("tracekit", ours)) if round_ % 2 else (("tracekit", ours), ("bare", bare))
        ):
            start = time.perf_counter()
            texts[name], tokens = fn()
            if round_:
                times[name].append(time.perf_counter() - start)
        same.append(sum(a == b for a, b in zip(texts["bare"], texts["tracekit"])))
    b, t = statistics.median(times["bare"]), statistics.median(times["tracekit"])
    n = len(requests)
    print(
        f"vllm {vllm.__version__} {args.model}: {n} requests of {args.config} "
        f"({problems.height} problems, max_tokens {p.max_tokens}), engine ready in {ready:.1f} s, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(f"  generated tokens per round: {tokens}; identical texts per round (bare vs tracekit): {same}")
    print(
        f"  bare LLM.generate:       median {b:.2f} s  (rounds {', '.join(f'{x:.2f}' for x in times['bare'])})"
    )
    print(
        f"  tracekit draw_samples:   median {t:.2f} s  (rounds {', '.join(f'{x:.2f}' for x in times['tracekit'])})"
    )
    print(f"  ratio tracekit / bare: {t / b:.3f} (overhead {100 * (t / b - 1):+.1f}%)")


if __name__ == "__main__":
    main()
