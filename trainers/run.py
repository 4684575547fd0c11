"""``tracekit train sft|grpo CONFIG.yaml``: load the config, report on the data, run TRL's trainer.

Before SFT it reports how many traces exceed ``max_length`` with the model's tokenizer; before
GRPO, the share of problems whose base-model samples were all right or all wrong (no GRPO
signal), which ``drop_no_signal`` leaves out.
"""

from __future__ import annotations

from pathlib import Path

from tracekit.errors import require
from tracekit.places import check_output_dir
from tracekit.sampling.hf import load_pretrained
from tracekit.trainers.config import load_train_config


def run_training(kind: str, config: str | Path, *, drop_no_signal: bool = False, echo=print):
    """Run one training job described by ``config``; return the trainer."""
    cfg = load_train_config(config, kind)
    default = "tracekit-sft" if cfg.kind == "sft" else "tracekit-grpo"
    check_output_dir(
        str(cfg.trl.get("output_dir", default)), "train: output_dir"
    )  # before any model is loaded
    transformers = require("transformers", "train")
    tokenizer = load_pretrained(transformers.AutoTokenizer, cfg.tokenizer or cfg.model, "tokenizer")
    if cfg.kind == "sft":
        from tracekit.trainers.sft import DEFAULT_MAX_LENGTH, length_report, load_sft_dataset, train_sft

        max_length = cfg.trl.get("max_length", DEFAULT_MAX_LENGTH)
        report = length_report(load_sft_dataset(cfg.data), tokenizer, max_length)
        echo(
            f"{report['over']} of {report['rows']} traces exceed max_length {max_length} with this tokenizer "
            f"(longest {report['longest']} tokens)" + ("; TRL truncates them." if report["over"] else ".")
        )
        trainer = train_sft(
            cfg.data,
            cfg.model,
            cfg.trl.get("output_dir", "tracekit-sft"),
            tokenizer=tokenizer,
            **{k: v for k, v in cfg.trl.items() if k != "output_dir"},
        )
    else:
        from tracekit.errors import unknown_name
        from tracekit.trainers.grpo import (
            drop_no_signal as drop,
        )
        from tracekit.trainers.grpo import (
            load_grpo_dataset,
            signal_report,
            train_grpo,
        )
        from tracekit.trainers.rewards import REWARDS

        unknown = [r for r in cfg.rewards if r not in REWARDS]
        if unknown:
            raise unknown_name("reward", unknown[0], list(REWARDS))
        data = load_grpo_dataset(cfg.data)
        s = signal_report(data)
        none = s["all_right"] + s["all_wrong"]
        echo(
            f"{none} of {s['problems']} problems ({none / max(s['problems'], 1):.0%}) give GRPO no signal: "
            f"base-model samples all right {s['all_right']}, all wrong {s['all_wrong']} "
            f"(mixed {s['mixed']}, never sampled {s['no_samples']})."
        )
        if none and drop_no_signal:
            data = drop(data)
            echo(f"dropped them: training on {len(data)} problems.")
        elif none:
            echo("Pass --drop-no-signal to train without them.")
        trainer = train_grpo(
            data,
            cfg.model,
            cfg.trl.get("output_dir", "tracekit-grpo"),
            tokenizer=tokenizer,
            reward_funcs=[REWARDS[r] for r in cfg.rewards],
            **{k: v for k, v in cfg.trl.items() if k != "output_dir"},
        )
    echo(f"trained {trainer.state.global_step} steps -> {trainer.args.output_dir}")
    return trainer
