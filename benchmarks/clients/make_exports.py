"""Build a small store (the bundled raw example plus generated multiplication problems) and export it
for verl and LLaMA-Factory; print the row counts the client checks must find."""

import json
import sys
from pathlib import Path

import polars as pl

from tracekit.export import run_export
from tracekit.rearrange import RearrangeConfig, rearrange_store
from tracekit.reference import import_skillfactory
from tracekit.store import Store
from tracekit.store.manifest import recording
from tracekit.tasks import get_task

root = Path(sys.argv[1])
example = Path(__file__).resolve().parents[2] / "examples" / "skillfactory_raw_example.jsonl"
store = Store(root / "store", create=True)
import_skillfactory(
    example, store, task="countdown"
)  # numbers and target read from each question: rewardable
rearrange_store(store, RearrangeConfig(formats=("*C_full", "*C*IC", "*CC"), n_max=3))
task = get_task("multiplication")
with recording(store, "add-problems", {"multiplication": 12}) as rec:  # added to the store's current view
    for split in ("train", "test"):
        problems = task.generate(12, seed=0, split=split, digits=2, digits_b=1)
        store.write("problems", problems)
        rec.add_view("problems", problems["problem_id"], extends=True)
run_export(store, "verl", root / "verl")
run_export(store, "llamafactory", root / "lf")
counts = {
    "verl_rl_train": pl.read_parquet(root / "verl/rl/train.parquet").height,
    "verl_rl_test": pl.read_parquet(root / "verl/rl/test.parquet").height,
    "verl_sft_train": pl.read_parquet(root / "verl/sft/train.parquet").height,
    "lf_train": pl.read_parquet(root / "lf/tracekit_sft/train.parquet").height,
}
(root / "expected.json").write_text(json.dumps(counts))
print("tracekit exports:", json.dumps(counts))
