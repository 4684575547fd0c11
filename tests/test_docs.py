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
