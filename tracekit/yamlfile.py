"""Reading YAML strictly: the one loader every config, variants, phrases and trainer file goes through.

PyYAML's ``safe_load`` keeps the last of two equal keys, reads ``.inf`` and ``.nan`` as numbers
and expands aliases without limit (a few lines of nested aliases stand for billions of values,
which anything that walks the result then expands). :func:`read_yaml` refuses all three, with
the line, and bounds what it reads:

* a file larger than :data:`MAX_BYTES` (4 MiB) is refused before it is parsed;
* a document whose values, once every alias is expanded, number more than :data:`MAX_VALUES`
  (100,000), or whose aliases refer to themselves, is refused before it is built;
* a key written twice in one mapping is an error naming both lines (a ``<<`` merge may still
  override the keys it brings in: that is what it is for);
* a number that is not finite (``.inf``, ``-.inf``, ``.nan``) is an error: no setting means it.

Examples
--------
>>> load_yaml("a: 1\\nb: [x, y]\\n", "demo")
{'a': 1, 'b': ['x', 'y']}
>>> load_yaml("a: 1\\na: 2\\n", "demo")
Traceback (most recent call last):
...
tracekit.errors.ConfigError: demo: line 2, column 1: the key 'a' is given twice (first at line 1).
Hint: keep one of them: YAML would silently use the last.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from tracekit.errors import ConfigError

MAX_BYTES = 4 * 2**20
MAX_VALUES = 100_000
_MERGE = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    def __init__(self, mark, message: str) -> None:
        super().__init__(message)
        self.mark, self.message = mark, message


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses repeated keys and numbers that are not finite."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.get(key)
                except TypeError:  # an unhashable key: the base constructor says so
                    continue
                if seen is not None:
                    msg = f"the key {key!r} is given twice (first at line {seen.line + 1})."
                    raise _Refused(
                        key_node.start_mark,
                        msg + "\nHint: keep one of them: YAML would silently use the last.",
                    )
                first[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_finite_float(self, node):
        value = self.construct_yaml_float(node)
        if not math.isfinite(value):
            msg = f"{node.value!r} is not a finite number."
            raise _Refused(node.start_mark, msg + "\nHint: give a finite number (e.g. temperature: 0.7).")
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_finite_float)


def _expanded_values(root) -> int:
    """How many values the document rooted at ``root`` holds with every alias expanded (a node that
    aliases refer to counts once per reference); raises :class:`_Refused` on a node that contains itself."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            sizes[key] = min(1 + sum(sizes[id(c)] for c in children), MAX_VALUES + 1)
            continue
        if key in sizes:
            continue
        if key in active:
            msg = "an alias refers to the value that contains it, which has no end."
            raise _Refused(
                node.start_mark, msg + "\nHint: an alias (*name) may only repeat a value written before it."
            )
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str, where: str) -> Any:
    """Parse the YAML document ``text`` strictly (see the module docstring); errors name ``where``
    and the line. An empty document is ``None``."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_values(node) > MAX_VALUES:
            msg = (
                f"{where}: holds more than {MAX_VALUES:,} values once its aliases (*name) are expanded."
                "\nHint: a config is small; write the values out, or use fewer nested aliases."
            )
            raise ConfigError(msg)
        return loader.construct_document(node)
    except _Refused as exc:
        raise ConfigError(
            f"{where}: line {exc.mark.line + 1}, column {exc.mark.column + 1}: {exc.message}"
        ) from None
    except RecursionError:
        msg = f"{where}: nested too deeply to read."
        raise ConfigError(msg + "\nHint: a config nests a few levels of mappings and lists.") from None
    except yaml.YAMLError as exc:
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        msg = f"{where}: {at}not valid YAML: {problem or ' '.join(str(exc).split())}"
        raise ConfigError(msg + "\nHint: check the indentation and brackets at that line.") from None
    finally:
        loader.dispose()


def read_text(path: str | Path, what: str, hint: str = "check the path.") -> str:
    """The UTF-8 text of the small file ``path`` (``what`` names it in errors: ``"run config"``);
    a :class:`~tracekit.errors.ConfigError` when it is missing, a folder, larger than
    :data:`MAX_BYTES` or not UTF-8 text (with the line). ``hint`` follows a read failure."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise ConfigError(f"{what} {p} is a directory.\nHint: give the path of a file.") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or exc}.\nHint: {hint}") from None
    if len(raw) > MAX_BYTES:
        msg = f"{what} {p} is larger than {MAX_BYTES // 2**20} MiB."
        raise ConfigError(msg + "\nHint: a config file is small: check that this is the file you meant.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        msg = f"{what} {p}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})."
        raise ConfigError(msg + "\nHint: save the file as UTF-8.") from None


def read_yaml(path: str | Path, what: str, hint: str = "check the path.") -> Any:
    """The YAML document of file ``path`` (:func:`read_text`, then :func:`load_yaml`)."""
    return load_yaml(read_text(path, what, hint), f"{what} {path}")
