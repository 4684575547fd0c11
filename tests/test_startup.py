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
    store = tmp_path / "store"
    config = Path(__file__).resolve().parents[1] / "configs" / "demo-cpu.yaml"
    run = [sys.executable, "-m", "tracekit.cli", "run", str(config), "--dry-run", "--store", str(store)]
    subprocess.run(run, check=True, capture_output=True)
    assert loaded(["info", "--store", str(store)], HEAVY) == []
