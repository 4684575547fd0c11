"""Rearrangement: kept samples and reflections -> SkillFactory silver traces.

* :mod:`~tracekit.rearrange.stage`: the stage (:class:`RearrangeConfig`, :func:`rearrange_store`);
* :mod:`~tracekit.rearrange.formats`: trace formats, planned for many problems at once;
* :mod:`~tracekit.rearrange.render`: laying planned traces out as text;
* :mod:`~tracekit.rearrange.draws`: counter-based random draws;
* :mod:`~tracekit.rearrange.phrases`: phrase banks;
* :mod:`~tracekit.rearrange.recipes`: the paper's datasets as named settings;
* :mod:`~tracekit.rearrange.quirks`: the reference script's filter quirks (opt-in).
"""

from tracekit.rearrange.formats import FORMATS
from tracekit.rearrange.recipes import RECIPES
from tracekit.rearrange.stage import RearrangeConfig, rearrange_pool, rearrange_store

__all__ = ["FORMATS", "RECIPES", "RearrangeConfig", "rearrange_pool", "rearrange_store"]
