"""Rearrangement: kept samples and reflections -> SkillFactory silver traces.

* :mod:`~tracekit.rearrange.config`: the settings (:class:`RearrangeConfig`) and the format names;
* :mod:`~tracekit.rearrange.stage`: the stage (:func:`rearrange_store`, :func:`build_traces`);
* :mod:`~tracekit.rearrange.formats`: trace formats, planned for many problems at once;
* :mod:`~tracekit.rearrange.render`: laying planned traces out as text;
* :mod:`~tracekit.rearrange.draws`: counter-based random draws;
* :mod:`~tracekit.rearrange.ragged`: index helpers over runs of given lengths in one flat array;
* :mod:`~tracekit.rearrange.phrases`: phrase banks;
* :mod:`~tracekit.rearrange.recipes`: the paper's datasets as named settings;
* :mod:`~tracekit.rearrange.quirks`: the reference script's filter quirks (opt-in);
* :mod:`~tracekit.rearrange.repeats`: repeats without repeated traces, and their bound.

Importing this package loads only the settings; the stage (numpy, polars) loads on first use.
"""

from tracekit.rearrange.config import RearrangeConfig
from tracekit.rearrange.recipes import RECIPES

_STAGE = {"FORMATS": "tracekit.rearrange.formats", "rearrange_pool": "tracekit.rearrange.stage"}
_STAGE["rearrange_store"] = _STAGE["build_traces"] = "tracekit.rearrange.stage"


def __getattr__(name: str):
    if name in _STAGE:
        import importlib

        return getattr(importlib.import_module(_STAGE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FORMATS", "RECIPES", "RearrangeConfig", "build_traces", "rearrange_pool", "rearrange_store"]
