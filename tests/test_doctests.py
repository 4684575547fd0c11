"""Every Examples section of every module runs as a doctest (modules are discovered, not listed)."""

import doctest
import importlib
import pkgutil

import pytest

import tracekit


def _modules() -> list[str]:
    names = ["tracekit", "tracekit.schemas", "tracekit.trainers", "tracekit.cli"]
    for info in pkgutil.walk_packages(tracekit.__path__, "tracekit."):
        names.append(info.name)
    for pkg in ("tracekit.schemas", "tracekit.trainers", "tracekit.cli"):
        module = importlib.import_module(pkg)
        names.extend(i.name for i in pkgutil.walk_packages(module.__path__, pkg + "."))
    return sorted(set(n for n in names if not n.endswith("__main__")))


MODULES = _modules()


def test_discovery_finds_the_modules_with_examples():
    assert {"tracekit.rearrange.draws", "tracekit.extract", "tracekit.store.tables"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
