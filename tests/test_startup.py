"""The command line starts light: heavy libraries load only in the commands that use them.

Behaviour, not speed (``benchmarks/bench_startup.py`` measures the time): each check runs a
fresh interpreter and lists which heavy modules a command left in ``sys.modules``.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ["pandas", "pandera", "torch", "transformers", "datasets", "trl", "vllm", "ray", "matplotlib"]

_PROBE = """
import json, sys
argv, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if argv is None:
    import tracekit.cli
else:
    sys.argv = ["tracekit", *argv]
    from tracekit.cli import main
    try:
        main()
    except SystemExit:
        pass
print("\\n" + json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def loaded(argv, modules) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(modules)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_data_or_model_library():
    assert loaded(None, HEAVY + ["polars", "numpy", "pyarrow"]) == []


@pytest.mark.parametrize("argv", [["--help"], ["rearrange", "--help"], ["run", "--help"]])
def test_help_loads_no_data_library(argv):
    assert loaded(argv, HEAVY + ["polars", "numpy", "pyarrow"]) == []


def test_tasks_list_loads_no_data_library():
    assert loaded(["tasks", "list"], HEAVY + ["polars", "numpy", "pyarrow"]) == []


def test_info_loads_no_dataframe_validation_or_model_library(tmp_path):
    """`tracekit info` on a local store reads part footers with polars: no pyarrow or numpy."""
    store = tmp_path / "store"
    config = Path(__file__).resolve().parents[1] / "configs" / "demo-cpu.yaml"
    run = [sys.executable, "-m", "tracekit.cli", "run", str(config), "--dry-run", "--store", str(store)]
    subprocess.run(run, check=True, capture_output=True)
    assert loaded(["info", "--store", str(store)], [*HEAVY, "numpy", "pyarrow"]) == []


def test_score_loads_no_table_library(tmp_path):
    """`tracekit score` reads and writes jsonl: no polars, numpy or pyarrow (nor the store's tables)."""
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"numbers": [1, 2], "target": 3, "response": "<answer>1 + 2</answer>"}\n', encoding="utf-8"
    )
    argv = ["score", str(src), "--task", "countdown", "--out", str(tmp_path / "out.jsonl")]
    heavy = [*HEAVY, "polars", "numpy", "pyarrow", "tracekit.store.tables", "tracekit.schemas"]
    assert loaded(argv, heavy) == []
    assert (tmp_path / "out.jsonl").exists()


def test_a_builtin_task_loads_no_package_metadata():
    """Entry points (``importlib.metadata``) are read only to find a task that is not built in."""
    code = (
        "import sys; from tracekit.tasks import get_task; get_task('countdown'); "
        "print('importlib.metadata' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_writing_a_file_atomically_loads_no_store_tables():
    code = (
        "import sys; from tracekit.store.files import atomic_write; from tracekit.places import check_output_file; "
        "print(sorted(m for m in ('polars', 'pyarrow', 'numpy', 'tracekit.store.tables') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
