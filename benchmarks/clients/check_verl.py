"""Load tracekit's verl export with verl's own RLHFDataset / MultiTurnSFTDataset and call compute_score
through verl's own reward-function loader (runs in a venv with verl 0.9.x)."""

import json
import sys
from pathlib import Path

import polars as pl
from omegaconf import OmegaConf
from transformers import AutoTokenizer
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.dataset.rl_dataset import RLHFDataset

root, tiny = Path(sys.argv[1]), sys.argv[2]
expected = json.loads((root / "expected.json").read_text())
tok = AutoTokenizer.from_pretrained(tiny)
ok = True
for split in ("train", "test"):
    cfg = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 1024,
            "filter_overlong_prompts": True,
            "cache_dir": str(root / "verl-cache"),
            "filter_overlong_prompts_workers": 1,
        }
    )
    ds = RLHFDataset(str(root / f"verl/rl/{split}.parquet"), tok, cfg)
    want = expected[f"verl_rl_{split}"]
    print(f"verl RLHFDataset rl/{split}.parquet: {len(ds)} rows (export wrote {want})")
    ok &= len(ds) == want
item = ds[0]
print("  first item keys:", sorted(k for k in item if not k.startswith("_"))[:8])

sft_cfg = OmegaConf.create({"messages_key": "messages", "max_length": 4096, "truncation": "right"})
sft = MultiTurnSFTDataset(str(root / "verl/sft/train.parquet"), tok, sft_cfg)
print(
    f"verl MultiTurnSFTDataset sft/train.parquet: {len(sft)} rows (export wrote {expected['verl_sft_train']})"
)
ok &= len(sft) == expected["verl_sft_train"]
sft[0]  # tokenizes one conversation through verl's own code

for path in ("pkg://tracekit.trainers.verl_reward", None):
    if path is None:
        import tracekit.trainers.verl_reward as mod

        path = mod.__file__
    cfg = OmegaConf.create({"reward": {"custom_reward_function": {"path": path, "name": "compute_score"}}})
    fn = get_custom_reward_fn(cfg)
    rows = pl.read_parquet(root / "verl/rl/train.parquet").filter(pl.col("data_source") == "multiplication")
    problems = pl.read_parquet(root / "verl/rl/train.parquet")
    scores_right, scores_wrong = [], []
    for row in rows.iter_rows(named=True):
        meta = json.loads(row["reward_model"]["ground_truth"])
        answer = meta["a"] * meta["b"]
        extra = {**row["extra_info"], "num_turns": 2, "rollout_reward_scores": {}}
        kw = {
            "data_source": row["data_source"],
            "ground_truth": row["reward_model"]["ground_truth"],
            "extra_info": extra,
        }
        scores_right.append(
            fn(solution_str=f"<think>{meta['a']} * {meta['b']}</think>\n<answer>{answer}</answer>", **kw)
        )
        scores_wrong.append(fn(solution_str=f"<answer>{answer + 1}</answer>", **kw))
    print(
        f"verl reward loader ({path.split('/')[-1]}): right answers {sum(scores_right)}/{len(rows)}, "
        f"wrong answers {sum(scores_wrong)}/{len(rows)}"
    )
    ok &= sum(scores_right) == len(rows) > 0 and sum(scores_wrong) == 0
print("verl check:", "OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
