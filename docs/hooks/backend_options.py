"""mkdocs hook: a page's `<!-- tracekit-backend-options -->` becomes the table of every sampling backend's options.

The options of a backend are its constructor's keyword parameters; `tracekit.sampling.registry.options_table`
reads them from the signatures (importing the backends' modules, never torch or vllm), so the page shows what the
installed version takes. `tests/test_docs.py` renders the run page through this hook.
"""

from __future__ import annotations

MARKER = "<!-- tracekit-backend-options -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from tracekit.sampling.registry import options_table

    return markdown.replace(MARKER, options_table())
