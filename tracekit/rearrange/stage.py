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

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict

import numpy as np
import polars as pl

from tracekit import counters
from tracekit.errors import ConfigError, StoreError, unknown_name
from tracekit.filter import REFLECTION_COLUMNS, SAMPLE_COLUMNS, filter_pool
from tracekit.rearrange import quirks
from tracekit.rearrange.config import RearrangeConfig
from tracekit.rearrange.draws import problem_key
from tracekit.rearrange.formats import FORMATS, Pools
from tracekit.rearrange.phrases import PhraseBank, load_phrase_bank
from tracekit.rearrange.ragged import starts, take_runs
from tracekit.rearrange.render import Layout, TraceBatch, lay_out
from tracekit.rearrange.repeats import REPEAT_GROUP, new_traces
from tracekit.schemas import ID_COLUMNS, empty_frame
from tracekit.store.buckets import TARGET_BYTES, iter_problem_buckets
from tracekit.store.manifest import recording
from tracekit.store.overlap import BackgroundWriter, prefetch
from tracekit.store.views import narrowing, view, view_ids

RENDER_ROWS = 16_384  # traces rendered and written at a time (a few tens of MB of text)


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
            drops[counters.format_drop(fmt, "too_few_samples")] += int((~big_enough).sum())
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
                drops[counters.format_drop(fmt, reason)] += count
            drops[counters.built(fmt)] += len(plans.n)
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
        slots=take_runs(slots, starts(n)[order], n[order]),
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
            msg = (
                f"samples reference {missing['problem_id'].n_unique()} problem id(s) absent from table 'problems', "
                f"first: {missing['problem_id'][0]!r} (sample {missing['sample_id'][0]!r})."
            )
            raise StoreError(msg)
        yield bucket, pool, kept, counts


def _selected(samples, reflections, problems, cfg: RearrangeConfig, counts: Counter):
    """The samples and reflections the settings let in: prompt variants, then the reference quirks."""
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
    present = view(store, "samples").select("prompt_variant").unique().collect()["prompt_variant"].to_list()
    for name in variants:
        if name not in present:
            known = sorted(v for v in present if v is not None)
            hint = "name variants the store holds (the reference's data calls the plain prompt 'original')."
            raise unknown_name("prompt variant", name, known, where="rearrange: ", hint=hint)


# what the stage reads: the filter's columns and those the planners and the text need
_SAMPLE_COLS = [*SAMPLE_COLUMNS, "prompt_variant", "sample_index", "extracted_answer", "response"]
_REFL_COLS = [*REFLECTION_COLUMNS, "problem_id", "text"]


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
    cfg = cfg.with_seed(0)
    bank = load_phrase_bank(cfg.phrases)
    if cfg.variants is not None:
        _check_variants(store, cfg.variants)
    if cfg.group_by_question:  # problems of one question may lie in different buckets: read one piece
        target_bytes = 2**62
    from tqdm import tqdm  # the bar: only when a rearrangement runs

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
        stats[counters.WRITTEN] = writer.written[
            "traces"
        ]  # rows the table took (another writer may have been first)
    return stats, in_view


def _refuse_empty(store, stats: Counter) -> None:
    """A rearrangement that builds no trace would make the current view of traces empty: refuse it."""
    drops = sorted(counters.drops(stats).items(), key=lambda kv: -kv[1])
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
        rec.add_written("traces", stats[counters.WRITTEN])
        rec.drops.update(stats)
    return stats
