"""The import graph flows one way: tracekit/ never imports trainers/, modules import earlier layers."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_library_never_imports_trainers():
    for path in (ROOT / "tracekit").rglob("*.py"):
        bad = {n for n in imports_of(path) if n.startswith("tracekit.trainers") or n.startswith("trainers")}
        assert not bad, f"{path} imports {bad}"


def test_core_never_imports_later_stages():
    later = {"tracekit.cli", "tracekit.pipeline", "tracekit.export"}
    core = ["errors.py", "ids.py", "extract.py", "store.py", "phrases.py", "filter.py", "draws.py", "formats.py",
            "render.py", "overlap.py", "rearrange.py"]
    for name in core:
        bad = {n for n in imports_of(ROOT / "tracekit" / name) if any(n.startswith(m) for m in later)}
        assert not bad, f"{name} imports {bad}"


def test_no_eval_of_model_text():
    for path in list((ROOT / "tracekit").rglob("*.py")) + list((ROOT / "trainers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec"}, f"{path}:{node.lineno} calls {node.func.id}"
            if isinstance(node, ast.Attribute):
                assert node.attr != "parse_expr", f"{path}:{node.lineno} uses parse_expr"
