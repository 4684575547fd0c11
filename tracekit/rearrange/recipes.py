"""Named recipes: the rearrangement settings of the SkillFactory paper's datasets.

The paper's main setting and its ablations are datasets built from the *same* samples
and reflections; only the rearrangement differs. A recipe is a named set of
:class:`~tracekit.rearrange.config.RearrangeConfig` fields (``recipe: NAME`` in a run
config, ``tracekit rearrange --recipe NAME``); fields you set yourself win over the
recipe's.

Examples
--------
>>> RECIPES["no-reflections"].fields["formats"]
('no_reflection',)
>>> RECIPES["skillfactory"].paper_name
'SkillFactory'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """A paper dataset: its name in the paper, what it is, and the config fields it sets."""

    paper_name: str
    description: str
    fields: dict[str, Any]


RECIPES: dict[str, Recipe] = {
    "skillfactory": Recipe(
        "SkillFactory",
        "the main setting: *C_full with N_max 5 (for every N = 1..5, N samples ending on a correct one, "
        "each with a kept reflection)",
        {"formats": ("*C_full",), "n_max": 5},
    ),
    "no-sample-order": Recipe(
        "No Sample Order",
        "like SkillFactory but the last sample may be wrong (format random)",
        {"formats": ("random",), "n_max": 5},
    ),
    "no-reflections": Recipe(
        "No Reflections",
        "like SkillFactory without reflections, generic glue only (format no_reflection)",
        {"formats": ("no_reflection",), "n_max": 5},
    ),
    "no-prompt-diversity": Recipe(
        "No Prompt Diversity",
        "like SkillFactory with samples from one prompt variant only: tracekit's 'plain' "
        "(for data imported from the reference, pass --variants original)",
        {"formats": ("*C_full",), "n_max": 5, "variants": ("plain",)},
    ),
    "star": Recipe(
        "STaR",
        "the STaR baseline: every correct sample alone, no reflections (format star)",
        {"formats": ("star",)},
    ),
}
