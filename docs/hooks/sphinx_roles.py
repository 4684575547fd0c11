"""griffe extension: the docstrings' Sphinx roles (:func:`x`, :class:`~a.b.C`) shown as code in the site.

tracekit's docstrings are numpy style with Sphinx cross-reference roles, which Markdown would print as they are.
This rewrites them, when griffe loads each object, to a code span of the name (`~` keeps the last part, as
Sphinx does); the source files are not changed.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """``:func:`~tracekit.store.views.view``` -> ```view```; without ``~`` the whole name.

    >>> plain_roles("see :func:`~tracekit.store.views.view` and :mod:`tracekit.store`")
    'see `view` and `tracekit.store`'
    """

    def code(match: re.Match) -> str:
        short, name = match.groups()
        name = name.strip().removesuffix("()")
        return f"`{name.rsplit('.', 1)[-1] if short else name}`"

    return ROLE.sub(code, text)


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
