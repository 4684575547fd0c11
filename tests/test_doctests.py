"""Run the Examples sections of the public modules as doctests."""

import doctest
import importlib

import pytest

MODULES = ["tracekit.errors", "tracekit.extract", "tracekit.ids", "tracekit.phrases", "tracekit.report", "tracekit.tasks", "tracekit.tasks.arith",
           "tracekit.schemas.tables", "tracekit.store", "tracekit.export.trl", "tracekit.trainers.rewards"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
