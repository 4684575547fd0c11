"""Rearrangement: turn kept samples and reflections into SkillFactory silver traces.

A trace is the model's own attempts in a chosen order, each followed by one of its
kept self-verifications and a glue phrase, then an ending phrase and the final
answer::

    <think>
    <sample>
    ...attempt 1...
    </sample>
    <reflect>
    ...its verification...
    </reflect>
    <glue phrase>
    <sample>
    ...last attempt...
    </sample>
    <reflect>
    ...
    </reflect>
    </think>


    <ending phrase>

    <answer>
    final
    </answer>

(two blank lines after ``</think>``, as in the reference's template; see
:mod:`tracekit.rearrange.render` for both layouts). Formats are small named functions that
plan which samples every trace shows (see :mod:`tracekit.rearrange.formats`). Every
random choice is a counter-based draw keyed by ``(seed, problem_id, format, repeat)`` (see
:mod:`tracekit.rearrange.draws`), so a problem's traces never depend on which other
problems, formats or buckets were processed alongside it.

Everything is vectorised: numpy plans all traces of a batch of problems at once and
lays each trace out as a list of integer references into one table of text pieces
(the store's sample and reflection texts as they are, answers, tags and phrases);
polars gathers the pieces and joins them, so trace text is written exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import polars as pl

from tracekit.errors import ConfigError, unknown_name
from tracekit.ids import stable_hash
from tracekit.rearrange.draws import problem_key
from tracekit.rearrange.formats import ANY_SIZE, FORMATS, TWO_SAMPLES, Pools
from tracekit.rearrange.phrases import PhraseBank
from tracekit.rearrange.render import (
    LAYOUTS,
    Layout,
    TraceBatch,
    lay_out,
    offsets,
    ragged_arange,
    template_digest,
)
from tracekit.rearrange.repeats import MAX_REPEATS, REPEAT_GROUP, new_traces
from tracekit.schemas import ID_COLUMNS, empty_frame

RENDER_ROWS = 16_384  # traces rendered and written at a time (a few tens of MB of text)


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
            if name not in FORMATS:
                raise unknown_name("trace format", name, list(FORMATS))
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
        two = sorted(TWO_SAMPLES & set(formats))
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
            from tracekit.ids import check_seed

            check_seed(self.seed, "rearrange: seed")
        if self.min_samples is not None and self.min_samples < 1:
            msg = f"rearrange: min_samples must be >= 1, got {self.min_samples}."
            raise ConfigError(msg + "\nHint: leave it out to use n_max (alg1 and star: 1).")
        if self.phrases is not None:  # read now, so a run refuses a bad file before it samples
            from tracekit.rearrange.phrases import load_phrase_bank

            load_phrase_bank(self.phrases)

    def _apply_recipe(self) -> None:
        from tracekit.rearrange.recipes import RECIPES

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
        return 1 if fmt in ANY_SIZE else self.n_max

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
        kept = {
            k: v for k, v in asdict(self.with_seed(0)).items() if k not in ("formats", "phrases", "recipe")
        }
        return stable_hash(kept, bank.digest, template_digest(bank, self.layout))


# ------------------------------------------------------------------------ planning
def plan_batch(
    pool: pl.DataFrame,
    cfg: RearrangeConfig,
    drops: Counter,
    *,
    repeats: range | None = None,
    done: set[tuple[str, str]] | frozenset = frozenset(),
) -> TraceBatch | None:
    """Plan every format and repeat (those of ``repeats``; default all) for the problems of
    ``pool`` (sorted by problem, then prompt variant) and order the traces by (problem, format,
    repeat, ordinal). Problems with fewer samples than a format needs
    (:meth:`RearrangeConfig.min_samples_for`) are left out of it, and so are the
    ``(problem_id, format)`` pairs of ``done``; skipped problems and built traces are counted in
    ``drops``; ``None`` when nothing was planned."""
    repeats = range(cfg.repeats) if repeats is None else repeats
    sizes = pool.group_by("problem_id", maintain_order=True).len()
    problem_ids = sizes["problem_id"]
    pools = Pools.from_rows(
        sizes["len"].to_numpy(), pool["is_correct"].to_numpy(), pool["prompt_variant"].to_numpy()
    )
    fmt_rank = {name: i for i, name in enumerate(sorted(cfg.formats))}
    seed = cfg.with_seed(0).seed
    ids = problem_ids.to_list()
    parts = []
    for fmt in cfg.formats:
        big_enough = pools.size >= cfg.min_samples_for(fmt)
        if not big_enough.all() and repeats.start == 0:
            drops[f"traces/{fmt}:too_few_samples"] += int((~big_enough).sum())
        if done:
            big_enough &= np.array([(pid, fmt) not in done for pid in ids], dtype=bool)
        if not big_enough.any():
            continue
        fmt_pools, problem_of, row_of = pools.select(big_enough)
        fmt_ids = ids if len(problem_of) == len(ids) else [ids[i] for i in problem_of]
        for repeat in repeats:
            keys = np.array([problem_key(seed, pid, fmt, repeat) for pid in fmt_ids], dtype=np.uint64)
            plans, skipped = FORMATS[fmt](fmt_pools, keys, cfg)
            for reason, count in skipped.items():
                drops[f"traces/{fmt}:{reason}"] += count
            drops[f"built/{fmt}"] += len(plans.n)
            if len(plans.n):
                key = keys[plans.problem]
                plans.problem, plans.final, plans.slots = (
                    problem_of[plans.problem],
                    row_of[plans.final],
                    row_of[plans.slots],
                )
                parts.append((fmt_rank[fmt], repeat, plans, key))
    if not parts:
        return None
    per_trace = lambda value: np.concatenate([np.broadcast_to(value(*p), len(p[2].n)) for p in parts])  # noqa: E731
    problem, n = per_trace(lambda f, r, p, k: p.problem), per_trace(lambda f, r, p, k: p.n)
    fmt_code, repeat = per_trace(lambda f, r, p, k: f), per_trace(lambda f, r, p, k: r)
    ordinal = per_trace(lambda f, r, p, k: p.ordinal)
    order = np.lexsort((ordinal, repeat, fmt_code, problem))
    slot_start = offsets(n)[:-1][order]
    slots = np.concatenate([p[2].slots for p in parts])
    return TraceBatch(
        problem=problem[order],
        fmt_code=fmt_code[order],
        repeat=repeat[order],
        n=n[order],
        key=per_trace(lambda f, r, p, k: k)[order],
        ordinal=ordinal[order],
        final=per_trace(lambda f, r, p, k: p.final)[order],
        with_reflections=per_trace(lambda f, r, p, k: p.reflections)[order],
        generic_glue=per_trace(lambda f, r, p, k: p.glue == "generic")[order],
        tail=per_trace(lambda f, r, p, k: p.tail or "")[order],
        slots=slots[np.repeat(slot_start, n[order]) + ragged_arange(n[order])],
        problem_ids=problem_ids,
    )


def rearrange_pool(
    pool: pl.DataFrame,
    kept: pl.DataFrame,
    responses: pl.Series,
    reflection_texts: pl.Series,
    questions: pl.DataFrame,
    cfg: RearrangeConfig,
    bank: PhraseBank,
    *,
    drops: Counter | None = None,
) -> pl.DataFrame:
    """Build the traces of every problem in ``pool`` (see :func:`tracekit.filter.filter_pool`).

    ``pool`` needs ``problem_id, sample_id, prompt_variant, is_correct, extracted_answer,
    n_kept`` and ``text_row`` (the row of its response in ``responses``), sorted by
    problem then prompt variant; ``kept`` needs ``pool_row, reflection_id`` and
    ``text_row`` (the row of its text in ``reflection_texts``), sorted by ``pool_row``.
    ``questions`` maps ``problem_id`` to ``question``. Returns a frame in the ``traces``
    table schema, ordered by problem, format, repeat and ordinal (for ``*C_full``: N).
    """
    drops = Counter() if drops is None else drops
    layouts = _layouts(pool, kept, responses, reflection_texts, questions, cfg, bank, drops)
    frames = [layout.render() for layout in layouts]
    if not frames:
        return empty_frame("traces")
    if len(frames) == 1:
        return frames[0]
    # groups of repeats come one after the other: back to (problem, format, repeat, ordinal) order
    rank = pool.select(pl.col("problem_id").unique(maintain_order=True)).with_row_index("_rank")
    out = pl.concat(frames).join(rank, on="problem_id", how="left", maintain_order="left")
    return out.sort("_rank", "format", "repeat", maintain_order=True).drop("_rank")


def _layouts(pool, kept, responses, reflection_texts, questions, cfg, bank, drops) -> Iterator[Layout]:
    """The traces of ``pool`` laid out, one :class:`Layout` per group of repeats (see
    :mod:`tracekit.rearrange.repeats`): repeated traces dropped, saturated problems stopped."""
    if not pool.height:
        return
    done: set[tuple[str, str]] = set()  # (problem, format) pairs whose distinct traces ran out
    seen = np.empty(0, dtype=np.uint64)
    pairs = {(pid, fmt) for pid in pool["problem_id"].unique().to_list() for fmt in cfg.formats}
    for start in range(0, cfg.repeats, REPEAT_GROUP):
        repeats = range(start, min(cfg.repeats, start + REPEAT_GROUP))
        batch = plan_batch(pool, cfg, drops, repeats=repeats, done=done)
        if batch is None:
            return
        layout = lay_out(
            batch,
            pool,
            kept,
            responses,
            reflection_texts,
            questions,
            sorted(cfg.formats),
            bank,
            cfg.digest(bank),
            layout=cfg.layout,
        )
        if cfg.repeats > 1:
            keep, seen = new_traces(layout.frame, seen, drops)
            layout = layout if keep.all() else layout.select(keep)
            done |= pairs - set(layout.frame.select("problem_id", "format").unique().iter_rows())
        if layout.frame.height:
            yield layout
        if done >= pairs:
            return


# ------------------------------------------------------------------------ the stage
def _restrict(frame: pl.DataFrame, column: str, ids: pl.Series | None) -> pl.DataFrame:
    return frame if ids is None else frame.join(ids.rename(column).to_frame(), on=column, how="semi")


def _filtered(buckets, cfg: RearrangeConfig, rows: dict[str, pl.Series | None]):
    """Each bucket restricted to ``rows`` (ids per table; None: every row), with its filtered
    pool and kept reflections, and its counts."""
    from tracekit.filter import filter_pool

    for bucket in buckets:
        bucket = {t: _restrict(frame, ID_COLUMNS[t], rows.get(t)) for t, frame in bucket.items()}
        samples, reflections = bucket["samples"], bucket["reflections"]
        counts: Counter = Counter()
        samples, reflections = _selected(samples, reflections, bucket["problems"], cfg, counts)
        # the filter moves ids and flags only; texts stay where they were read and are gathered once
        pool, kept, _ = filter_pool(
            samples.drop("response").with_row_index("text_row"),
            reflections.drop("text", "problem_id").with_row_index("text_row"),
            min_samples=cfg.effective_min_samples,
            include_truncated=cfg.include_truncated,
            drops=counts,
        )
        missing = pool.join(bucket["problems"], on="problem_id", how="anti")
        if missing.height:
            from tracekit.errors import StoreError

            msg = (
                f"samples reference {missing['problem_id'].n_unique()} problem id(s) absent from table 'problems', "
                f"first: {missing['problem_id'][0]!r} (sample {missing['sample_id'][0]!r})."
            )
            raise StoreError(msg)
        yield bucket, pool, kept, counts


def _selected(samples, reflections, problems, cfg: RearrangeConfig, counts: Counter):
    """The samples and reflections the settings let in: prompt variants, then the reference quirks."""
    from tracekit.rearrange import quirks

    if cfg.variants is not None:
        chosen = samples["prompt_variant"].is_in(list(cfg.variants))
        counts["samples/variant_not_selected"] += int((~chosen).sum())
        samples = samples.filter(chosen)
        reflections = reflections.join(samples.select("sample_id"), on="sample_id", how="semi")
    if cfg.verdict_first_tag:
        reflections = reflections.with_columns(quirks.reference_verdicts(reflections["text"]))
    if cfg.drop_idea_fast:
        dropped = quirks.mentions_idea_or_fast(reflections["text"])
        counts["reflections/idea_or_fast"] += int(dropped.sum())
        reflections = reflections.filter(~dropped)
    if cfg.group_by_question:
        groups = quirks.question_groups(problems)
        samples = samples.join(groups, on="problem_id", how="left").with_columns(
            problem_id=pl.col("group_id")
        )
        samples = samples.drop("group_id")
        counts["problems/merged_by_question"] += problems.height - groups["group_id"].n_unique()
    return samples, reflections


def _check_variants(store, variants: tuple[str, ...]) -> None:
    """Every named prompt variant exists in the current samples (a typo would select nothing)."""
    from tracekit.store.views import view

    present = view(store, "samples").select("prompt_variant").unique().collect()["prompt_variant"].to_list()
    for name in variants:
        if name not in present:
            err = unknown_name("prompt variant", name, sorted(v for v in present if v is not None))
            hint = "Hint: name variants the store holds (the reference's data calls the plain prompt 'original')."
            raise type(err)(f"rearrange: {err}\n{hint}")


_SAMPLE_COLS = [
    "sample_id",
    "problem_id",
    "prompt_variant",
    "sample_index",
    "is_correct",
    "extracted_answer",
    "finish_reason",
    "response",
]
_REFL_COLS = ["reflection_id", "sample_id", "problem_id", "verdict", "verdict_reason", "text"]


def build_traces(
    store,
    cfg: RearrangeConfig,
    *,
    rows: dict[str, pl.Series | None],
    replace: bool = False,
    target_bytes: int | None = None,
    progress: bool = False,
    sink=None,
    snapshot=None,
    on_ids=None,
) -> tuple[Counter, int]:
    """The stage: filter + rearrangement over the given rows of a store; write the traces it lacks.

    ``rows`` names the ids of ``problems``, ``samples`` and ``reflections`` to use (a view;
    None for a table: every row). Streams bucket by bucket (see :mod:`tracekit.store.buckets`).
    A trace's id hashes its inputs (see :func:`tracekit.rearrange.render.lay_out`), so a trace
    the store already holds is not rendered again: only traces of problems whose inputs
    changed are written. Returns the counters of the run report (drops by reason, traces
    built per format, ``traces/written``) and the number of traces of these rows (written or
    already there). ``on_ids`` is called with the ids of those traces, chunk by chunk, as they
    are laid out (the view of ``traces`` they define: :meth:`RunRecorder.add_view`), so no
    list of every id is kept. With ``replace`` every trace is
    written into ``sink``, a transaction that replaces the table's parts when it commits (see
    :meth:`tracekit.store.Store.transaction`; :func:`rearrange_store` passes the one its
    ``runs`` row commits with): until then readers see the old traces, and an interrupted run
    leaves them as they were. ``snapshot``: the store snapshot to read (the newest by default).
    """
    from tracekit.rearrange.phrases import load_phrase_bank
    from tracekit.store.buckets import TARGET_BYTES, iter_problem_buckets
    from tracekit.store.overlap import BackgroundWriter, prefetch
    from tracekit.store.views import narrowing

    cfg = cfg.with_seed(0)
    bank = load_phrase_bank(cfg.phrases)
    if cfg.variants is not None:
        _check_variants(store, cfg.variants)
    if cfg.group_by_question:  # problems of one question may lie in different buckets: read one piece
        target_bytes = 2**62
    import sys

    from tqdm import tqdm

    n_problems = store.count("problems") if rows.get("problems") is None else rows["problems"].len()
    bar = tqdm(total=n_problems, desc="rearrange", unit="problem", disable=not progress, file=sys.stderr)
    snapshot = snapshot or store.snapshot()
    rows = {t: narrowing(store, t, ids, snapshot=snapshot) for t, ids in rows.items()}
    # replace: every trace goes into one transaction whose commit swaps the table (old ones stay
    # visible till then); otherwise traces the store already holds are not written again
    if replace:
        target = nullcontext(sink) if sink is not None else store.transaction("traces", replace=True)
    else:
        target = nullcontext(sink if sink is not None else store)
    held = [] if replace else snapshot.table("traces").parts  # traces the store holds already
    stats: Counter = Counter()
    in_view = 0
    columns = {"problems": ["problem_id", "question"], "samples": _SAMPLE_COLS, "reflections": _REFL_COLS}
    buckets = iter_problem_buckets(
        store, columns, target_bytes=target_bytes or TARGET_BYTES, snapshot=snapshot
    )
    # three threads: read + filter bucket i+2 | plan and lay out bucket i+1 | join the text of bucket i and write it
    with target as sink, bar:
        with BackgroundWriter(sink) as writer:
            for bucket, pool, kept, counts in prefetch(_filtered(buckets, cfg, rows)):
                bar.update(bucket["problems"].height)
                stats.update(counts)
                texts = (bucket["samples"]["response"], bucket["reflections"]["text"], bucket["problems"])
                for layout in _layouts(pool, kept, *texts, cfg, bank, stats):
                    ids = layout.frame["trace_id"]
                    in_view += ids.len()
                    if on_ids is not None:
                        on_ids(ids)
                    there = store.find_ids("traces", held, ids) if held else None
                    if there is not None and there.len():
                        layout = layout.select(~ids.is_in(there.implode()).to_numpy())
                    for piece in layout.pieces_of(RENDER_ROWS):  # rendered text stays small: flat memory
                        writer.submit("traces", piece.render)
        stats["traces/written"] = writer.written[
            "traces"
        ]  # rows the table took (another writer may have been first)
    return stats, in_view


def _refuse_empty(store, stats: Counter) -> None:
    """A rearrangement that builds no trace would make the current view of traces empty: refuse it."""
    drops = sorted(
        (
            (k, v)
            for k, v in stats.items()
            if v and not k.endswith(("/total", "/kept", "/survived", "/usable"))
        ),
        key=lambda kv: -kv[1],
    )
    top = ", ".join(f"{k} {v}" for k, v in drops[:4]) or "no samples in the current view"
    msg = (
        f"rearrange built no traces from {store.root} ({top}); the current traces are left as they were.\n"
        "Hint: lower --min-samples or --n-max, pick other --formats or --variants, or check the filter "
        "drops with `tracekit info`."
    )
    raise ConfigError(msg)


def rearrange_store(
    store,
    cfg: RearrangeConfig,
    *,
    replace: bool = False,
    target_bytes: int | None = None,
    progress: bool = False,
) -> Counter:
    """The ``rearrange`` command: rebuild the traces of the store's current view of samples and
    reflections (see :mod:`tracekit.store.views`) and record the run and the traces it defines.

    Re-running the same configuration writes nothing; after any change to a problem's kept
    samples or reflections, only that problem's changed traces are written, and the traces
    view is exactly what a rearrangement from scratch would give. ``progress`` shows a bar
    (problems, problems/s, ETA) on stderr. Returns the counters.
    """
    from tracekit.store.manifest import recording
    from tracekit.store.views import view_ids

    cfg = cfg.with_seed(0)
    with recording(store, "rearrange", asdict(cfg), seed=cfg.seed) as rec:
        snap = store.snapshot()  # one state of the store: the views and the rows they name
        rows = {t: view_ids(store, t, snapshot=snap) for t in ("problems", "samples", "reflections")}
        sink = rec.transaction("traces", replace=True) if replace else None
        with rec.stage("rearrange"):
            stats, in_view = build_traces(
                store,
                cfg,
                rows=rows,
                replace=replace,
                target_bytes=target_bytes,
                progress=progress,
                sink=sink,
                snapshot=snap,
                on_ids=lambda ids: rec.add_view("traces", ids),
            )
        if in_view == 0:
            _refuse_empty(store, stats)
        rec.add_written("traces", stats["traces/written"])
        rec.drops.update(stats)
    return stats
