"""griffe extension: the docstrings' reStructuredText bits shown as Markdown in the site.

tracekit's docstrings are numpy style with Sphinx cross-reference roles (:func:`x`, :class:`~a.b.C`) and the
odd literal block (a paragraph ending in ``::``), which Markdown would print as they are. When griffe loads each
object this rewrites a role to a code span of the name (`~` keeps the last part, as Sphinx does) and a closing
``::`` to ``:`` (the indented block after it is a code block in Markdown too); the source files are not changed.
"""

from __future__ import annotations

import re

import griffe

LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)
ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """``:func:`~tracekit.store.views.view``` -> ```view```; without ``~`` the whole name.

    >>> plain_roles("see :func:`~tracekit.store.views.view` and :mod:`tracekit.store`")
    'see `view` and `tracekit.store`'
    >>> plain_roles("verl loads it with::")
    'verl loads it with:'
    """

    def code(match: re.Match) -> str:
        short, name = match.groups()
        name = name.strip().removesuffix("()")
        return f"`{name.rsplit('.', 1)[-1] if short else name}`"

    return LITERAL_BLOCK.sub(":", ROLE.sub(code, text))


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
