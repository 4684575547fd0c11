"""The import graph flows one way, over a declared order of every module.

A module may import modules of its own layer or of earlier layers, never of a later one;
every module of tracekit must belong to a declared layer (a new module is added here, in
the place that says what it may use). The library folder (``tracekit/``) never imports the
trainer adapters or the command line.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Earliest first. A module belongs to the layer of the longest prefix that names it.
LAYERS = [
    ["tracekit", "tracekit.errors", "tracekit.yamlfile", "tracekit.counters"],
    ["tracekit.ids"],
    ["tracekit.extract"],
    ["tracekit.schemas"],
    ["tracekit.store", "tracekit.places"],
    ["tracekit.tasks"],
    ["tracekit.prompts"],
    ["tracekit.sampling"],
    ["tracekit.sample", "tracekit.verify", "tracekit.score", "tracekit.score_files"],
    ["tracekit.reflect"],
    ["tracekit.executor"],
    ["tracekit.filter"],
    ["tracekit.rearrange"],
    ["tracekit.reference"],
    ["tracekit.pipeline"],
    ["tracekit.export"],
    ["tracekit.evaluate"],
    ["tracekit.trainers"],
    ["tracekit.cli"],
]
# where each installed package's files live (see [tool.setuptools] package-dir)
FOLDERS = {
    "tracekit": "tracekit",
    "tracekit.schemas": "schemas",
    "tracekit.trainers": "trainers",
    "tracekit.cli": "cli",
}


def layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = i, len(name)
    return best


def modules() -> dict[str, Path]:
    out = {}
    for package, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "tracekit" and name.split(".")[1:2] and f"tracekit.{name.split('.')[1]}" in FOLDERS:
                continue
            out[name] = path
    return out


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "tracekit" or n.startswith("tracekit.")}


def test_every_module_has_a_layer():
    found = modules()
    assert len(found) > 40
    missing = sorted(m for m in found if layer_of(m) is None)
    assert not missing, f"declare these modules in LAYERS: {missing}"


def test_imports_never_run_to_a_later_layer():
    bad = []
    for module, path in modules().items():
        mine = layer_of(module)
        for imported in imports_of(path):
            theirs = layer_of(imported)
            if theirs is None or theirs > mine:
                bad.append(f"{module} (layer {mine}) imports {imported} (layer {theirs})")
    assert not bad, "\n".join(bad)


def test_layering_check_catches_a_back_edge(tmp_path):
    # the check itself can fail: a store module importing the pipeline is a later layer
    assert layer_of("tracekit.pipeline.run") > layer_of("tracekit.store.tables")
    assert layer_of("tracekit.cli") > layer_of("tracekit.trainers") > layer_of("tracekit.export")
    assert layer_of("somewhere.else") is None


def test_library_never_imports_trainers_or_cli():
    for path in (ROOT / "tracekit").rglob("*.py"):
        bad = {n for n in imports_of(path) if n.startswith(("tracekit.trainers", "tracekit.cli"))}
        assert not bad, f"{path} imports {bad}"


def test_no_eval_of_model_text():
    for folder in ("tracekit", "trainers", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in {"eval", "exec"}, f"{path}:{node.lineno} calls {node.func.id}"
                if isinstance(node, ast.Attribute):
                    assert node.attr != "parse_expr", f"{path}:{node.lineno} uses parse_expr"
