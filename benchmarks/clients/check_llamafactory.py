"""Load tracekit's LLaMA-Factory export through LLaMA-Factory's own dataset loader with template qwen
(runs in a venv with llamafactory 0.9.5; DISABLE_VERSION_CHECK=1)."""

import json
import sys
from pathlib import Path

from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

root, tiny = Path(sys.argv[1]), sys.argv[2]
expected = json.loads((root / "expected.json").read_text())
args = {
    "model_name_or_path": tiny,
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "full",
    "dataset": "tracekit_sft",
    "dataset_dir": str(root / "lf"),
    "template": "qwen",
    "cutoff_len": 4096,
    "output_dir": str(root / "lf-out"),
    "overwrite_cache": True,
    "report_to": "none",
}
model_args, data_args, training_args, _, _ = get_train_args(args)
tokenizer_module = load_tokenizer(model_args)
template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
n = len(module["train_dataset"])
print(
    f"LLaMA-Factory get_dataset (template qwen) tracekit_sft: {n} rows (export wrote {expected['lf_train']})"
)
labels = module["train_dataset"][0]["labels"]
print(
    "  first row: input_ids",
    len(module["train_dataset"][0]["input_ids"]),
    "tokens,",
    sum(1 for x in labels if x != -100),
    "trained tokens",
)
ok = n == expected["lf_train"]
print("LLaMA-Factory check:", "OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
