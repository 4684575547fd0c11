"""The whole loop on one machine (``make loop``): SFT on silver traces, evaluation, a few GRPO steps.

From the ``make run`` store (runs/demo and its TRL SFT export runs/demo-sft):

1. rebuild the embedded SmolLM2-135M-Instruct (a GGUF file, which ``save_pretrained`` cannot
   write back) as a plain ``LlamaForCausalLM`` folder, ``runs/loop/base``;
2. SFT it on the silver traces with TRL (``tracekit.trainers.sft.train_sft``) for a few steps
   into ``runs/loop/sft``;
3. evaluate the base model and the SFT model on held-out easy problems (configs/eval/loop-cpu.yaml,
   through ``tracekit eval``'s library call) and print accuracy and skill usage side by side;
4. run a few GRPO steps from the SFT model (``tracekit.trainers.grpo.train_grpo``) with the
   verifier rewards, on the store's training problems.

Everything runs on CPU. Finished steps are reused on a re-run (checkpoints with the same
settings, eval rows). Prints the timing of every step.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def log(msg: str) -> None:
    print(f"[loop {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rebuild_base(out: Path) -> None:
    """The embedded GGUF model as a plain transformers folder (logits match within 1e-4, see ENV.md)."""
    from tracekit.sampling.hf import export_embedded

    export_embedded(out, dtype="float32")


def sft(base: Path, data: Path, out: Path, settings: dict) -> dict:
    from tracekit.trainers.sft import train_sft

    lineage_file = out / "tracekit-lineage.json"
    lineage = {"base": str(base), "data": str(data), **settings}
    done = json.loads(lineage_file.read_text()) if lineage_file.exists() else {}
    if {k: v for k, v in done.items() if k != "losses"} == lineage:
        log(f"SFT checkpoint {out} exists with the same settings: reused")
        return done
    trainer = train_sft(
        data,
        str(base),
        out.parent / "sft-work",
        max_steps=settings["steps"],
        per_device_train_batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        lr_scheduler_type="constant",
        max_length=1024,
        use_cpu=True,
        bf16=False,
        logging_steps=5,
        save_strategy="no",
        seed=0,
    )
    trainer.save_model(str(out))
    trainer.processing_class.save_pretrained(str(out))
    lineage["losses"] = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    lineage_file.write_text(json.dumps(lineage))
    return lineage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="runs/demo")
    parser.add_argument(
        "--out", default="runs/loop", help="checkpoints (configs/eval/loop-cpu.yaml names them)"
    )
    parser.add_argument("--eval-config", default="configs/eval/loop-cpu.yaml")
    parser.add_argument("--sft-steps", type=int, default=12)
    parser.add_argument("--grpo-steps", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    timings: dict[str, float] = {}
    out = Path(args.out)
    data = Path(args.store + "-sft") / "train.parquet"
    if not data.exists():
        raise SystemExit(f"{data} is missing: run `make run` first")

    t = time.perf_counter()
    if not (out / "base" / "config.json").exists():
        log("rebuilding the embedded model as a plain transformers folder")
        rebuild_base(out / "base")
    timings["base_model"] = time.perf_counter() - t

    t = time.perf_counter()
    import polars as pl

    n_traces = pl.read_parquet(data).height
    settings = {"steps": args.sft_steps, "batch_size": 4, "learning_rate": 1e-4, "traces": n_traces}
    log(f"SFT on {n_traces} silver traces: {args.sft_steps} steps, batch 4, lr 1e-4")
    lineage = sft(out / "base", data, out / "sft", settings)
    log(f"SFT losses (every 5 steps): {lineage.get('losses')}")
    timings["sft"] = time.perf_counter() - t

    t = time.perf_counter()
    from tracekit.evaluate import load_eval_config, run_eval
    from tracekit.evaluate.results import format_table
    from tracekit.evaluate.skills import skill_rows, skill_tables
    from tracekit.store import Store

    cfg = load_eval_config(args.eval_config, store=args.store)
    log(f"evaluating {', '.join(m.label for m in cfg.models)} on held-out problems")
    run_eval(cfg, progress=False, echo=print)
    header, rows = skill_rows(skill_tables(Store(args.store), source="evals"), "overall")
    print(format_table(["", *header], [["", *r] for r in rows], title="skill usage of each model (evals)"))
    timings["eval"] = time.perf_counter() - t

    t = time.perf_counter()
    from tracekit.export import export_trl_grpo
    from tracekit.trainers.grpo import train_grpo

    grpo_data = export_trl_grpo(Store(args.store), out / "grpo-data", split="train")
    log(f"GRPO from the SFT model: {args.grpo_steps} steps, 4 completions of at most 128 tokens per prompt")
    trainer = train_grpo(
        grpo_data,
        str(out / "sft"),
        out / "grpo",
        max_steps=args.grpo_steps,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=128,
        learning_rate=1e-6,
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    for h in trainer.state.log_history:
        if "reward" in h:
            rewards = {k: round(v, 3) for k, v in h.items() if "reward" in k and isinstance(v, float)}
            print(f"  GRPO step {h.get('step')}: loss {h.get('loss')}, {rewards}")
    timings["grpo"] = time.perf_counter() - t
    log("timings (s): " + json.dumps({k: round(v, 1) for k, v in timings.items()}))


if __name__ == "__main__":
    main()
