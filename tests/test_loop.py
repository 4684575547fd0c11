"""`make loop`'s script (configs/loop.py) end to end on a tiny local model: SFT, eval, GRPO.

The real `make loop` takes about 20 minutes on the embedded model, so CI runs the same script
with a tiny model standing in for the rebuilt base folder and one step of each trainer.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_loop_script_runs_sft_eval_and_grpo(tmp_path, tiny_model):
    from tracekit.export import export_trl_sft
    from tracekit.pipeline.config import RunConfig, TaskSpec
    from tracekit.pipeline.run import run_pipeline
    from tracekit.store import Store

    store = tmp_path / "demo"
    cfg = RunConfig(
        store=str(store), tasks=(TaskSpec("multiplication", n=6, options={"digits": 2, "digits_b": 1}),)
    )
    run_pipeline(cfg, dry_run=True, progress=False, echo=lambda *_: None)
    assert export_trl_sft(Store(store), f"{store}-sft").counts["train"] > 0
    out = tmp_path / "loop"
    shutil.copytree(tiny_model, out / "base")  # stands in for the rebuilt embedded model
    eval_config = tmp_path / "eval.yaml"
    eval_config.write_text(
        f"store: {store}\nk: 1\nvariant: question\n"
        f"models:\n  - {{label: base, backend: transformers, options: {{model: {out / 'base'}}}}}\n"
        f"  - {{label: sft, backend: transformers, options: {{model: {out / 'sft'}}}}}\n"
        "tasks: [{name: multiplication, n: 2, options: {digits: 2, digits_b: 1}}]\n"
        "params: {max_tokens: 8}\n"
    )
    args = [
        "--store",
        store,
        "--out",
        out,
        "--eval-config",
        eval_config,
        "--sft-steps",
        "1",
        "--grpo-steps",
        "1",
    ]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "configs" / "loop.py"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skill usage of each model" in proc.stdout and "GRPO step 1" in proc.stdout, proc.stdout[-3000:]
    assert (out / "sft" / "config.json").exists()
    evals = Store(store).read("evals")
    assert sorted(set(evals["label"].to_list())) == ["base", "sft"]
