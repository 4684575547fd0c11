"""The docs site and the command line agree, and the README's links lead somewhere.

`make docs` (run by `.ci/run`) builds the site with `mkdocs build --strict`, which checks the nav, every link and
anchor between pages, and every docstring it renders. These checks are the ones it cannot make, and they need
neither mkdocs nor a build: every command has its page, showing that command's own `--help`, and the README's
relative links name files that exist.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
from pathlib import Path

import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HELP = re.compile(r"<!-- tracekit-help: ([a-z -]+?) -->")


def commands() -> set[str]:
    """Every leaf command of the ``tracekit`` app, as typed (``tasks list``, ``run``, ...)."""
    from tracekit.cli import app

    out: set[str] = set()

    def walk(cmd, prefix: list[str]) -> None:
        if hasattr(cmd, "commands"):  # a group (Typer vendors its own click)
            for name, sub in cmd.commands.items():
                walk(sub, [*prefix, name])
        else:
            out.add(" ".join(prefix))

    walk(typer.main.get_command(app), [])
    return out


def nav_pages(entries) -> list[str]:
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_every_command_has_a_page_showing_its_help():
    shown = {}
    for page in (DOCS / "commands").glob("*.md"):
        for command in HELP.findall(page.read_text()):
            shown[command] = page.name
    assert set(shown) == commands()
    for command, page in shown.items():  # the page of `tasks list` is tasks.md
        assert page == f"{command.split()[0]}.md", (command, page)


def test_every_command_page_is_in_the_nav():
    nav = nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = {f"commands/{p.name}" for p in (DOCS / "commands").glob("*.md")}
    assert pages <= set(nav), sorted(pages - set(nav))
    assert all((DOCS / page).is_file() for page in nav), [p for p in nav if not (DOCS / p).is_file()]


def test_readme_links_name_files_that_exist():
    text = (ROOT / "README.md").read_text()
    links = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if "://" not in t]
    assert links, "the README links to the docs pages"
    missing = [t for t in links if not (ROOT / t).exists()]
    assert not missing, missing


def test_docstring_markup_shown_as_markdown():
    """The site's griffe extension (docs/hooks/sphinx_roles.py; needs the docs extra) passes its examples."""
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("sphinx_roles", DOCS / "hooks" / "sphinx_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = doctest.testmod(module)
    assert result.attempted >= 2 and result.failed == 0


# ------------------------------------------------------------------ backend options: from the constructors
def _signature_options() -> dict[str, list[str]]:
    """Every backend's keyword parameters, read here straight from its class."""
    import inspect

    from tracekit.sampling.registry import BACKENDS, backend_class

    return {
        b: [n for n in inspect.signature(backend_class(b).__init__).parameters if n != "self"]
        for b in BACKENDS
    }


def test_model_config_docstring_lists_every_backend_option():
    from tracekit.sampling.config import ModelConfig
    from tracekit.sampling.registry import options_doc

    text = options_doc()
    listed = {
        b: re.findall(r"([a-z_]+) \(", rest) for b, rest in (p.split(": ", 1) for p in text.split("; "))
    }
    assert listed == _signature_options()
    doc = " ".join(ModelConfig.__doc__.split())
    assert text in doc, f"a backend's constructor changed: write this into ModelConfig's docstring:\n({text})"


def test_the_run_page_shows_every_backend_option_from_the_constructors():
    spec = importlib.util.spec_from_file_location("backend_options", DOCS / "hooks" / "backend_options.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    assert "docs/hooks/backend_options.py" in yaml.safe_load((ROOT / "mkdocs.yml").read_text())["hooks"]
    page = (DOCS / "commands" / "run.md").read_text()
    backends = page.split("\n## Backends\n", 1)[1].split("\n## ", 1)[0]
    assert hook.MARKER in backends
    shown = hook.on_page_markdown(page, None, None, None)
    assert hook.MARKER not in shown
    rows = re.findall(r"^\| `([a-z]+)` \| `([a-z_]+)` \|", shown, flags=re.M)
    assert rows == [(b, n) for b, names in _signature_options().items() for n in names]


def test_backend_options_are_read_without_torch_or_vllm():
    import subprocess
    import sys

    code = (
        "import sys; from tracekit.sampling.registry import options_table; options_table(); "
        "print(sorted({'torch', 'vllm', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
