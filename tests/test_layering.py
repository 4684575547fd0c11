"""The import graph flows one way, over a declared order of every module.

A module may import modules of its own layer or of earlier layers, never of a later one;
every module of tracekit must belong to a declared layer (a new module is added here, in
the place that says what it may use). The library folder (``tracekit/``) never imports the
trainer adapters or the command line. Evaluation stands below the run, and no module imports
another module's private (underscore) names.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Earliest first. A module belongs to the layer of the longest prefix that names it.
LAYERS = [
    ["tracekit", "tracekit.errors", "tracekit.yamlfile", "tracekit.configfile", "tracekit.counters"],
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
    ["tracekit.evaluate"],
    ["tracekit.pipeline"],
    ["tracekit.export"],
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


# private names one module may import from another, each with the reason it must
PRIVATE_IMPORTS = {
    ("tracekit.tasks.arith", "tracekit.tasks._arith"): "the optional C extension of arith's fast path: "
    "a private module only arith.py loads (and falls back from when it was not built)",
}


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


def private_imports(path: Path) -> set[str]:
    """The private tracekit names ``path`` imports: ``module.name`` for each ``_name`` or ``_module``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if any(p.startswith("_") for p in a.name.split(".")))
    return {n for n in found if n.startswith("tracekit.")}


def test_no_module_imports_a_private_name_of_another():
    bad = [
        f"{module} imports {name}"
        for module, path in modules().items()
        for name in sorted(private_imports(path))
        if (module, name) not in PRIVATE_IMPORTS
    ]
    assert not bad, "make these names public, or say in PRIVATE_IMPORTS why they must stay:\n" + "\n".join(
        bad
    )


def test_the_private_name_check_can_fail(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from tracekit.pipeline.config import _build\nimport tracekit.tasks._arith\n")
    assert private_imports(source) == {"tracekit.pipeline.config._build", "tracekit.tasks._arith"}
    source.write_text("from tracekit.pipeline.config import load_config\nfrom os import _exit\n")
    assert private_imports(source) == set()


# import circles between modules (imports inside functions count), each with the reason it stays
ALLOWED_CIRCLES = {
    frozenset({"tracekit.rearrange.config", "tracekit.rearrange.phrases", "tracekit.rearrange.render"}): (
        "RearrangeConfig checks a named phrase file when it is built and hashes the text templates in "
        "digest(); both load inside the method, so that reading any config loads no yaml, numpy or polars"
    ),
}


def module_edges(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports, at the top or inside a function
    (``from package import module`` names the module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.add(full if full in known or a.name.startswith("_") else node.module)
    return out & known


def import_circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = {stack.pop()}
            while v not in part:
                part.add(stack.pop())
            if len(part) > 1:
                found.append(frozenset(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_between_modules_even_inside_a_package():
    # the layers above let modules of one package import each other; this sees a circle among them too
    found = modules()
    graph = {m: module_edges(path, set(found)) - {m} for m, path in found.items()}
    bad = [sorted(c) for c in import_circles(graph) if c not in ALLOWED_CIRCLES]
    assert not bad, "break these import circles, or say in ALLOWED_CIRCLES why one must stay:\n" + "\n".join(
        map(str, bad)
    )


def test_the_circle_check_can_fail():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [frozenset({"a", "b", "c"})]
    assert import_circles({"a": {"b"}, "b": set()}) == []


def test_evaluation_imports_nothing_of_the_run():
    # evaluation takes problems, prompts and demonstrations from the stages below, never from `tracekit run`
    assert layer_of("tracekit.evaluate.stage") < layer_of("tracekit.pipeline.run")
    bad = [
        f"{module} imports {imported}"
        for module, path in modules().items()
        if module.startswith("tracekit.evaluate")
        for imported in imports_of(path)
        if imported.startswith("tracekit.pipeline")
    ]
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
