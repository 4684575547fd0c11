"""The rearrangement's settings (:class:`RearrangeConfig`) and the facts about every trace
format (:class:`Format`, one record each in :data:`TRACE_FORMATS`): light to import (no numpy,
polars or pandera), because every run config and the ``rearrange`` command's options are built
from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING

from tracekit.errors import ConfigError, unknown_name
from tracekit.ids import check_seed, stable_hash
from tracekit.rearrange.recipes import RECIPES

if TYPE_CHECKING:
    from tracekit.rearrange.phrases import PhraseBank

# what may follow a trace's last sample; each is also the phrase bank its phrase is drawn from
BACKTRACK = "backtrack"  # a backtrack phrase, then the correct sample again (its answer is final)
CONFIRM = "confirm"  # a confirmation phrase
TAILS = (BACKTRACK, CONFIRM)


@dataclass(frozen=True)
class Format:
    """What tracekit knows of one trace format; :data:`TRACE_FORMATS` holds them all.

    name: as configs and the traces' ``format`` column write it; planner: its function in
    :mod:`tracekit.rearrange.formats` (which samples each trace shows, in which order); any_size: a
    problem with one correct sample qualifies (the others need ``n_max`` surviving samples);
    two_samples: its traces always show two samples (a correct one and the one it is compared
    with), so it needs ``n_max >= 2``; tail: what follows the last sample (None, or one of
    :data:`TAILS`); reflections: its traces show reflections (without them the glue between samples
    is generic: there is no verdict for it to follow).
    """

    name: str
    planner: str
    any_size: bool = False
    two_samples: bool = False
    tail: str | None = None
    reflections: bool = True

    def __post_init__(self) -> None:
        if self.tail is not None and self.tail not in TAILS:  # pragma: no cover - a table typo
            raise ValueError(f"format {self.name!r}: tail {self.tail!r} is not one of {TAILS}")

    @property
    def glue(self) -> str:
        """``"by_correctness"`` (after a correct or a wrong sample, phrases that fit it) or ``"generic"``."""
        return "by_correctness" if self.reflections else "generic"


# the trace formats, in the order the docs list them
TRACE_FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("0C", "plan_0c"),
        Format("*C", "plan_star_c"),
        Format("*C_full", "plan_star_c_full"),
        Format("*C*IC", "plan_backtrack", two_samples=True, tail=BACKTRACK),
        Format("*CC", "plan_confirm", two_samples=True, tail=CONFIRM),
        Format("random", "plan_random"),
        Format("no_reflection", "plan_star_c_full", reflections=False),  # *C_full's traces, no reflections
        Format("alg1", "plan_algorithm1", any_size=True),
        Format("star", "plan_star", any_size=True, reflections=False),
    )
}
FORMAT_NAMES = tuple(TRACE_FORMATS)
LAYOUTS = ("tracekit", "reference")  # text layouts (see :mod:`tracekit.rearrange.render`)
MAX_REPEATS = 1_000  # the most ``repeats`` (see :mod:`tracekit.rearrange.repeats`)


@dataclass(frozen=True)
class RearrangeConfig:
    """Settings of the rearrangement stage (``rearrange:`` in a run config, the options of
    ``tracekit rearrange``: both take these names and this documentation).

    Parameters
    ----------
    formats
        Trace formats to build: 0C, *C, *C_full, *C*IC, *CC, random, no_reflection, alg1, star.
    n_max
        Largest number of samples in a trace (the paper's main setting is 5; alg1: L_max).
    repeats
        How many times each format is drawn per problem.
    seed
        Seed of every random choice (default: the run's ``seed`` in a run configuration,
        0 for ``rearrange`` on its own; set it to draw differently from the run).
    recipe
        A paper dataset's settings: skillfactory, no-sample-order, no-reflections,
        no-prompt-diversity, star. Fields left at their default take the recipe's value.
    layout
        Text layout: tracekit, or reference (the SkillFactory reference script's skeleton).
    draw_n
        For *C, *C*IC and *CC: draw N uniformly in [2, n_max] instead of using n_max.
    unique_variants
        In the *C family (0C, *C, *C_full, random, no_reflection) take every sample of a
        trace from a different prompt variant; problems with too few variants are skipped
        and counted.
    variants
        Use only samples from these prompt variants (the reference's
        --prompt_variants_to_use); default: every variant.
    min_samples
        Surviving samples a problem needs (default: n_max; alg1 and star: 1).
    include_truncated
        Let responses cut by the token limit into traces.
    phrases
        Phrase bank file (default: the bank shipped with tracekit).
    verdict_first_tag
        Reference quirk: read a verdict only from the text between the first <verdict>
        and the next </verdict>, which must be exactly correct or incorrect.
    drop_idea_fast
        Reference quirk: drop reflections whose text contains "idea" or "fast".
    group_by_question
        Reference quirk: problems with the same question text are one problem (reads the
        store in one piece).
    """

    formats: tuple[str, ...] = ("*C_full",)
    n_max: int = 5
    repeats: int = 1
    seed: int | None = None
    recipe: str | None = None
    layout: str = "tracekit"
    draw_n: bool = False
    unique_variants: bool = False
    variants: tuple[str, ...] | None = None
    min_samples: int | None = None
    include_truncated: bool = False
    phrases: str | None = None
    verdict_first_tag: bool = False
    drop_idea_fast: bool = False
    group_by_question: bool = False

    def __post_init__(self) -> None:
        if self.recipe is not None:
            self._apply_recipe()
        formats = tuple(self.formats)
        if not formats:
            raise ConfigError("rearrange: at least one format is needed.\nHint: e.g. formats: ['*C_full'].")
        for name in formats:
            if name not in FORMAT_NAMES:
                raise unknown_name("trace format", name, list(FORMAT_NAMES))
        object.__setattr__(self, "formats", formats)
        if self.variants is not None:
            object.__setattr__(self, "variants", tuple(self.variants))
            if not self.variants:
                msg = "rearrange: variants, when given, must name at least one prompt variant."
                raise ConfigError(msg + "\nHint: leave variants out to use every variant.")
        if self.layout not in LAYOUTS:
            raise unknown_name("layout", self.layout, list(LAYOUTS))
        if self.n_max < 1:
            raise ConfigError(
                f"rearrange: n_max must be >= 1, got {self.n_max}.\nHint: the paper uses n_max 5."
            )
        two = sorted(f for f in formats if TRACE_FORMATS[f].two_samples)
        if two and self.n_max < 2:
            msg = (
                f"rearrange: {', '.join(two)} always show two samples (a correct one and the one it is "
                f"compared with), but n_max is {self.n_max}.\nHint: use n_max >= 2, or leave out {', '.join(two)}."
            )
            raise ConfigError(msg)
        if not 1 <= self.repeats <= MAX_REPEATS:
            msg = (
                f"rearrange: repeats must be from 1 to {MAX_REPEATS}, got {self.repeats}.\nHint: repeats draws each "
                "format again per problem; a problem's distinct traces run out long before (repeated ones are dropped)."
            )
            raise ConfigError(msg)
        if self.seed is not None:
            check_seed(self.seed, "rearrange: seed")
        if self.min_samples is not None and self.min_samples < 1:
            msg = f"rearrange: min_samples must be >= 1, got {self.min_samples}."
            raise ConfigError(msg + "\nHint: leave it out to use n_max (alg1 and star: 1).")
        if self.phrases is not None:  # read now, so a run refuses a bad file before it samples
            from tracekit.rearrange.phrases import load_phrase_bank  # (yaml: only when a bank is named)

            load_phrase_bank(self.phrases)

    def _apply_recipe(self) -> None:
        if self.recipe not in RECIPES:
            raise unknown_name("recipe", self.recipe, list(RECIPES))
        defaults = {f.name: f.default for f in fields(self)}
        for name, value in RECIPES[self.recipe].fields.items():
            if getattr(self, name) == defaults[name]:
                object.__setattr__(self, name, value)

    def min_samples_for(self, fmt: str) -> int:
        """Surviving samples a problem needs for ``fmt``."""
        if self.min_samples is not None:
            return self.min_samples
        return 1 if TRACE_FORMATS[fmt].any_size else self.n_max

    @property
    def effective_min_samples(self) -> int:
        """What the filter asks of a problem: the least any of the formats needs."""
        return min(self.min_samples_for(f) for f in self.formats)

    def with_seed(self, seed: int) -> RearrangeConfig:
        """This configuration with ``seed`` where it names none (a run passes its own seed)."""
        return self if self.seed is not None else replace(self, seed=seed)

    def digest(self, bank: PhraseBank) -> str:
        """Hash of everything that shapes a trace except the list of formats (the recipe is
        already spelled out in the other fields): every setting, the phrase bank and the text
        layout (see :func:`tracekit.rearrange.render.template_digest`)."""
        from tracekit.rearrange.render import template_digest  # numpy and polars: only when hashing

        kept = {
            k: v for k, v in asdict(self.with_seed(0)).items() if k not in ("formats", "phrases", "recipe")
        }
        return stable_hash(kept, bank.digest, template_digest(bank, self.layout))
