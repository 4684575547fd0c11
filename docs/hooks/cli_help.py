"""mkdocs hook: a command page's `<!-- tracekit-help: COMMAND -->` becomes that command's `--help`.

The options of every command are documented once, in the command itself (Typer options whose help comes from
the config dataclasses' docstrings); the site shows what the installed version prints. An unknown command
fails the build.
"""

from __future__ import annotations

import os
import re

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"<!-- tracekit-help: ([a-z -]+?) -->")


def _help(command: str) -> str:
    from typer.testing import CliRunner

    from tracekit.cli import app

    os.environ["COLUMNS"] = "100"  # Typer's help wraps at the terminal width
    result = CliRunner().invoke(
        app, [*command.split(), "--help"], prog_name="tracekit", env={"COLUMNS": "100"}
    )
    if result.exit_code != 0 or "Usage:" not in result.output:
        msg = f"`tracekit {command} --help` failed (exit {result.exit_code}): {result.output.strip()[:300]}"
        raise PluginError(msg)
    return result.output.rstrip()


def on_page_markdown(markdown: str, page, config, files) -> str:
    def replace(match: re.Match) -> str:
        return f"```text\n{_help(match.group(1).strip())}\n```"

    return MARKER.sub(replace, markdown)
