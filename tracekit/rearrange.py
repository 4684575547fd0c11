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

Formats are small named functions that pick sample positions (see
:mod:`tracekit.formats`). Every random choice comes from a generator seeded by
``(seed, problem_id, format, repeat)``, so a problem's traces never depend on which
other problems, formats or chunks were processed alongside it.

Rendering is vectorised: Python only draws the plan of each trace as a list of
integer references into one table of text pieces (wrapped samples, wrapped
reflections, phrases, answers); polars gathers and joins the pieces.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from itertools import accumulate

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.errors import ConfigError, unknown_name
from tracekit.formats import FORMATS, Pool, Skip, format_rng
from tracekit.ids import hash_strings, stable_hash
from tracekit.phrases import PhraseBank


@dataclass(frozen=True)
class RearrangeConfig:
    """Settings of the rearrangement stage.

    Parameters
    ----------
    formats
        Trace formats to build (see :data:`FORMATS`).
    n_max
        Largest number of samples in a trace (the paper's main setting is 5).
    repeats
        How many times each format is drawn per problem.
    seed
        Seed of every random choice.
    draw_n
        For ``*C``, ``*C*IC`` and ``*CC``: draw N uniformly in ``[2, n_max]`` instead of
        using ``n_max``.
    unique_variants
        In the ``*C`` family (``0C``, ``*C``, ``*C_full``, ``random``, ``no_reflection``)
        take every sample of a trace from a different prompt variant; problems with too
        few variants are skipped and counted.
    min_samples
        Surviving samples a problem needs to be usable (default: ``n_max``).
    include_truncated
        Let responses cut by the token limit into traces.
    phrases
        Phrase bank file (default: the bank shipped with tracekit).
    """

    formats: tuple[str, ...] = ("*C_full",)
    n_max: int = 5
    repeats: int = 1
    seed: int = 0
    draw_n: bool = False
    unique_variants: bool = False
    min_samples: int | None = None
    include_truncated: bool = False
    phrases: str | None = None

    def __post_init__(self) -> None:
        formats = tuple(self.formats)
        if not formats:
            raise ConfigError("rearrange: at least one format is needed.")
        for name in formats:
            if name not in FORMATS:
                raise unknown_name("trace format", name, list(FORMATS))
        object.__setattr__(self, "formats", formats)
        if self.n_max < 1:
            raise ConfigError(f"rearrange: n_max must be >= 1, got {self.n_max}.")
        if self.repeats < 1:
            raise ConfigError(f"rearrange: repeats must be >= 1, got {self.repeats}.")
        if self.min_samples is not None and self.min_samples < 1:
            raise ConfigError(f"rearrange: min_samples must be >= 1, got {self.min_samples}.")

    @property
    def effective_min_samples(self) -> int:
        return self.n_max if self.min_samples is None else self.min_samples

    def digest(self, bank: PhraseBank) -> str:
        """Hash of everything that shapes a trace except the list of formats."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("formats", "phrases")}
        return stable_hash(fields, bank.digest)


# ------------------------------------------------------------------------ rendering
_TRACE_SCHEMA = {"problem_id": pl.Utf8, "format": pl.Utf8, "n_samples": pl.Int64, "repeat": pl.Int64}


def _list_of(values: pl.Series, lengths: list[int] | np.ndarray) -> pl.Series:
    """Cut ``values`` into consecutive lists of the given lengths (a list column)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    arrow = values.to_arrow()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if pa.types.is_string(arrow.type) or pa.types.is_string_view(arrow.type):
        arrow = arrow.cast(pa.large_string())
    return pl.Series(pa.LargeListArray.from_arrays(pa.array(offsets), arrow))


def rearrange_pool(
    pool: pl.DataFrame,
    questions: dict[str, str],
    reflections: pl.DataFrame,
    cfg: RearrangeConfig,
    bank: PhraseBank,
    *,
    drops: Counter | None = None,
) -> pl.DataFrame:
    """Build the traces of every problem in ``pool`` (output of :func:`tracekit.filter.filter_pool`).

    ``pool`` needs ``problem_id, sample_id, prompt_variant, is_correct,
    extracted_answer, response, kept_reflection_ids`` and must be sorted by problem;
    ``reflections`` needs ``reflection_id, text`` for every kept reflection. Returns a
    frame in the ``traces`` table schema.
    """
    drops = Counter() if drops is None else drops
    digest = cfg.digest(bank)
    n_pool = pool.height

    # -- the table of text pieces D; a trace is a list of indices into it, joined by "\n"
    kept = pool.select(pl.col("kept_reflection_ids").explode().unique().sort().alias("reflection_id"))
    kept = kept.with_row_index("r").join(reflections.select("reflection_id", "text"), on="reflection_id", how="left")
    n_refl = kept.height
    phrase_ids = [pid for b in ("generic_glue", "correct_glue", "incorrect_glue", "backtrack", "confirm") for pid in bank.ids(b)]
    ending_ids = bank.ids("ending")
    refl0, phrase0 = n_pool, n_pool + n_refl
    think = phrase0 + len(phrase_ids)
    end0 = think + 1
    ans0 = end0 + len(ending_ids)
    pieces = pl.concat([
        pool.select(pl.concat_str([pl.lit("<sample>\n"), pl.col("response"), pl.lit("\n</sample>")]).alias("t")),
        kept.select(pl.concat_str([pl.lit("<reflect>\n"), pl.col("text").fill_null(""), pl.lit("\n</reflect>")]).alias("t")),
        pl.DataFrame({"t": [bank.text(p) for p in phrase_ids] + ["<think>"]
                      + [f"</think>\n\n{bank.text(e)}\n\n<answer>" for e in ending_ids]}),
        pool.select(pl.concat_str([pl.col("extracted_answer").fill_null(""), pl.lit("\n</answer>")]).alias("t")),
    ])["t"]
    piece_phrase = pl.Series([None] * (n_pool + n_refl) + phrase_ids + [None] + ending_ids + [None] * n_pool, dtype=pl.Utf8)
    slot = {pid: phrase0 + i for i, pid in enumerate(phrase_ids)}
    generic = [slot[p] for p in bank.ids("generic_glue")]
    glue_ok = [slot[p] for p in bank.ids("correct_glue")] + generic
    glue_bad = [slot[p] for p in bank.ids("incorrect_glue")] + generic
    backtracks = [slot[p] for p in bank.ids("backtrack")]
    confirms = [slot[p] for p in bank.ids("confirm")]
    n_end = len(ending_ids)

    row_refl = (
        pool.select(pl.col("kept_reflection_ids").alias("reflection_id")).with_row_index("row")
        .explode("reflection_id").join(kept.select("reflection_id", "r"), on="reflection_id", how="left")
        .group_by("row", maintain_order=True).agg(pl.col("r") + refl0)["r"].to_list()
    )
    correct = pool["is_correct"].to_list()
    variants = pool["prompt_variant"].to_list()
    problem_ids = pool["problem_id"].to_list()

    segs: list[int] = []
    seg_len: list[int] = []
    rows: list[int] = []
    finals: list[int] = []
    meta: dict[str, list] = {k: [] for k in _TRACE_SCHEMA}
    seg_append, rows_append = segs.append, rows.append

    start = 0
    bounds = list(accumulate(pool.group_by("problem_id", maintain_order=True).len()["len"].to_list()))
    for end in bounds:
        pid = problem_ids[start]
        p = Pool(correct=correct[start:end], variant=variants[start:end])
        for fmt in cfg.formats:
            for repeat in range(cfg.repeats):
                rng = format_rng(cfg.seed, pid, fmt, repeat)
                rand = rng.random
                try:
                    plans = list(FORMATS[fmt](rng, p, cfg))
                except Skip as why:
                    drops[f"traces/{fmt}:{why}"] += 1
                    continue
                for plan in plans:
                    before = len(segs)
                    seg_append(think)
                    last = len(plan.order) - 1
                    for k, pos in enumerate(plan.order):
                        row = start + pos
                        rows_append(row)
                        seg_append(row)
                        if plan.reflections:
                            options = row_refl[row]
                            seg_append(options[int(rand() * len(options))])
                        if k < last:
                            bank_slots = generic if plan.glue == "generic" else (glue_ok if correct[row] else glue_bad)
                            seg_append(bank_slots[int(rand() * len(bank_slots))])
                    if plan.tail == "backtrack":
                        seg_append(backtracks[int(rand() * len(backtracks))])
                        seg_append(start + plan.final)
                    elif plan.tail == "confirm":
                        seg_append(confirms[int(rand() * len(confirms))])
                    seg_append(end0 + int(rand() * n_end))
                    seg_append(ans0 + start + plan.final)
                    seg_len.append(len(segs) - before)
                    finals.append(start + plan.final)
                    meta["problem_id"].append(pid)
                    meta["format"].append(fmt)
                    meta["n_samples"].append(len(plan.order))
                    meta["repeat"].append(repeat)
                    drops[f"built/{fmt}"] += 1
        start = end

    n_traces = len(finals)
    if n_traces == 0:
        from tracekit.schemas import empty_frame

        return empty_frame("traces")
    seg_idx = pl.Series(segs, dtype=pl.Int64)
    trace_of_seg = np.repeat(np.arange(n_traces), seg_len)
    completion = _list_of(pieces.gather(seg_idx), seg_len).list.join("\n")
    is_refl = (seg_idx >= refl0) & (seg_idx < phrase0)
    refl_ids = kept["reflection_id"].gather(seg_idx.filter(is_refl) - refl0)
    refl_counts = np.bincount(trace_of_seg[is_refl.to_numpy()], minlength=n_traces)
    phrase_sel = piece_phrase.gather(seg_idx)
    is_phrase = phrase_sel.is_not_null()
    phrase_counts = np.bincount(trace_of_seg[is_phrase.to_numpy()], minlength=n_traces)
    final_idx = pl.Series(finals, dtype=pl.Int64)

    frame = pl.DataFrame(meta, schema=_TRACE_SCHEMA).with_columns(
        prompt=pl.Series([questions[p] for p in meta["problem_id"]], dtype=pl.Utf8),
        completion=completion,
        sample_ids=_list_of(pool["sample_id"].gather(pl.Series(rows, dtype=pl.Int64)), meta["n_samples"]),
        reflection_ids=_list_of(refl_ids, refl_counts),
        phrase_ids=_list_of(phrase_sel.filter(is_phrase), phrase_counts),
        final_answer=pool["extracted_answer"].gather(final_idx),
        final_correct=pool["is_correct"].gather(final_idx),
        config_hash=pl.lit(digest),
    )
    keys = frame.select(pl.concat_str(["problem_id", "format", "n_samples", "repeat", "config_hash"], separator="|")).to_series()
    frame = frame.with_columns(trace_id=pl.Series(["t-" + h for h in hash_strings(keys)], dtype=pl.Utf8))
    return frame.select(
        "trace_id", "problem_id", "format", "n_samples", "repeat", "prompt", "completion",
        pl.col("sample_ids").cast(pl.List(pl.Utf8)), pl.col("reflection_ids").cast(pl.List(pl.Utf8)),
        pl.col("phrase_ids").cast(pl.List(pl.Utf8)), "final_answer", "final_correct", "config_hash",
    )


# ------------------------------------------------------------------------ the stage
_SAMPLE_COLS = ["sample_id", "sample_key", "max_tokens", "problem_id", "prompt_variant", "sample_index", "is_correct", "extracted_answer", "finish_reason", "response"]
_REFL_COLS = ["reflection_id", "sample_id", "problem_id", "verdict", "verdict_reason", "text"]


def rearrange_store(store, cfg: RearrangeConfig, *, replace: bool = False, target_bytes: int | None = None) -> Counter:
    """Run filter + rearrangement over a whole store and append the traces.

    Streams bucket by bucket (see :mod:`tracekit.partition`); traces whose id the
    store already holds are skipped, so re-running the same configuration adds nothing.
    Returns the counters of the run report (drops by reason, traces built per format).
    """
    from tracekit.filter import filter_pool
    from tracekit.partition import TARGET_BYTES, iter_problem_buckets
    from tracekit.phrases import load_phrase_bank
    from tracekit.store import BackgroundWriter

    bank = load_phrase_bank(cfg.phrases)
    if replace:
        store.clear("traces")
    existing = store.ids("traces")
    stats: Counter = Counter()
    columns = {"problems": ["problem_id", "question"], "samples": _SAMPLE_COLS, "reflections": _REFL_COLS}
    with BackgroundWriter(store) as writer:  # bucket i is validated and written while bucket i+1 is planned
        for bucket in iter_problem_buckets(store, columns, target_bytes=target_bytes or TARGET_BYTES):
            stats["problems/total"] += bucket["problems"].height
            stats["samples/total"] += bucket["samples"].height
            stats["reflections/total"] += bucket["reflections"].height
            pool, _ = filter_pool(
                bucket["samples"],
                bucket["reflections"].drop("text", "problem_id"),
                min_samples=cfg.effective_min_samples,
                include_truncated=cfg.include_truncated,
                drops=stats,
            )
            questions = dict(zip(bucket["problems"]["problem_id"].to_list(), bucket["problems"]["question"].to_list()))
            missing = pool.filter(~pl.col("problem_id").is_in(list(questions)))
            if missing.height:
                from tracekit.errors import StoreError

                msg = (
                    f"samples reference {missing['problem_id'].n_unique()} problem id(s) absent from table 'problems', "
                    f"first: {missing['problem_id'][0]!r} (sample {missing['sample_id'][0]!r})."
                )
                raise StoreError(msg)
            traces = rearrange_pool(pool, questions, bucket["reflections"], cfg, bank, drops=stats)
            traces = traces.filter(~pl.col("trace_id").is_in(existing.implode()))
            traces = traces.sort(["problem_id", "format", "repeat", "n_samples", "trace_id"])
            if traces.height:
                writer.submit("traces", traces)
                stats["traces/written"] += traces.height
    return stats
