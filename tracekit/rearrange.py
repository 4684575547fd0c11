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

Formats are small named functions that plan which samples every trace shows (see
:mod:`tracekit.formats`). Every random choice is a counter-based draw keyed by
``(seed, problem_id, format, repeat)`` (see :mod:`tracekit.draws`), so a problem's
traces never depend on which other problems, formats or buckets were processed
alongside it.

Everything is vectorised: numpy plans all traces of a batch of problems at once and
lays each trace out as a list of integer references into one table of text pieces
(the store's sample and reflection texts as they are, answers, tags and phrases);
polars gathers the pieces and joins them, so trace text is written exactly once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.errors import ConfigError, unknown_name
from tracekit.draws import S_ENDING, S_GLUE, S_REFLECTION, S_TAIL, below, problem_key, uniform
from tracekit.formats import FORMATS, Pools
from tracekit.ids import hash_strings, stable_hash
from tracekit.phrases import BANKS, PhraseBank
from tracekit.schemas import empty_frame


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
_TAIL_SEGMENTS = {None: 0, "backtrack": 3, "confirm": 1}


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """``[0..l0-1, 0..l1-1, ...]`` for the given lengths."""
    return np.arange(int(lengths.sum())) - np.repeat(_offsets(lengths)[:-1], lengths)


def _list_of(values: pl.Series, lengths: np.ndarray) -> pl.Series:
    """Cut ``values`` into consecutive lists of the given lengths (a list column, no text copied)."""
    arrow = values.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return pl.Series(pa.LargeListArray.from_arrays(pa.array(_offsets(lengths)), arrow))


class _Pieces:
    """The text pieces a trace is joined from (with "\n"): sample texts, reflection texts,
    final answers, and constant pieces (tags and phrases) built once per bank."""

    def __init__(self, responses: pl.Series, reflection_texts: pl.Series, answers: pl.Series, bank: PhraseBank):
        self.phrase_ids = bank.ids(*BANKS)
        texts = [bank.text(p) for p in self.phrase_ids]
        self.consts: list[str] = []
        self.OPEN = self._const("<think>\n<sample>")
        self.SAMPLE_THEN_REFLECT = self._const("</sample>\n<reflect>")
        self.SAMPLE_CLOSE = self._const("</sample>")
        self.REFLECT_CLOSE = self._const("</reflect>")
        self.ANSWER_CLOSE = self._const("</answer>")
        self.glue_after_reflection = self._consts([f"</reflect>\n{t}\n<sample>" for t in texts])
        self.glue_after_sample = self._consts([f"</sample>\n{t}\n<sample>" for t in texts])
        self.backtrack = self._consts([f"{t}\n<sample>" for t in texts])
        self.confirm = self._consts(texts)
        self.ending = self._consts([f"</think>\n\n{t}\n\n<answer>" for t in texts])
        self.refl0 = responses.len()
        self.answer0 = self.refl0 + reflection_texts.len()
        const0 = self.answer0 + answers.len()
        self.series = pl.concat([
            responses.cast(pl.Utf8), reflection_texts.cast(pl.Utf8), answers.cast(pl.Utf8),
            pl.Series(self.consts, dtype=pl.Utf8),
        ], rechunk=False)
        for name in ("OPEN", "SAMPLE_THEN_REFLECT", "SAMPLE_CLOSE", "REFLECT_CLOSE", "ANSWER_CLOSE"):
            setattr(self, name, getattr(self, name) + const0)
        for name in ("glue_after_reflection", "glue_after_sample", "backtrack", "confirm", "ending"):
            setattr(self, name, getattr(self, name) + const0)

    def _const(self, text: str) -> int:
        self.consts.append(text)
        return len(self.consts) - 1

    def _consts(self, texts: list[str]) -> np.ndarray:
        return np.array([self._const(t) for t in texts], dtype=np.int64)


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
    ``questions`` maps ``problem_id`` to ``question``. Texts are only gathered and
    joined, never copied on the way. Returns a frame in the ``traces`` table schema,
    ordered by problem, format, repeat and number of samples.
    """
    drops = Counter() if drops is None else drops
    if pool.height == 0:
        return empty_frame("traces")
    digest = cfg.digest(bank)
    sizes = pool.group_by("problem_id", maintain_order=True).len()
    problem_ids = sizes["problem_id"].to_list()
    pools = Pools.from_rows(sizes["len"].to_numpy(), pool["is_correct"].to_numpy(),
                            pool["prompt_variant"].to_numpy())

    # -- plan every format and repeat, then order the traces by (problem, format, repeat, n)
    fmt_rank = {name: i for i, name in enumerate(sorted(cfg.formats))}
    parts = []
    for fmt in cfg.formats:
        for repeat in range(cfg.repeats):
            keys = np.array([problem_key(cfg.seed, pid, fmt, repeat) for pid in problem_ids], dtype=np.uint64)
            plans, skipped = FORMATS[fmt](pools, keys, cfg)
            for reason, count in skipped.items():
                drops[f"traces/{fmt}:{reason}"] += count
            drops[f"built/{fmt}"] += len(plans.n)
            if len(plans.n):
                parts.append((fmt, repeat, plans, keys[plans.problem]))
    if not parts:
        return empty_frame("traces")
    cat = lambda get: np.concatenate([get(*part) for part in parts])  # noqa: E731
    n_of = [len(p[2].n) for p in parts]
    problem = cat(lambda f, r, p, k: p.problem)
    n = cat(lambda f, r, p, k: p.n)
    repeat = cat(lambda f, r, p, k: np.full(len(p.n), r))
    fmt_code = np.repeat(np.array([fmt_rank[p[0]] for p in parts]), n_of)
    order = np.lexsort((n, repeat, fmt_code, problem))
    problem, n, repeat, fmt_code = problem[order], n[order], repeat[order], fmt_code[order]
    key = cat(lambda f, r, p, k: k)[order]
    ordinal = cat(lambda f, r, p, k: p.ordinal)[order]
    final = cat(lambda f, r, p, k: p.final)[order]
    with_refl = np.repeat([p[2].reflections for p in parts], n_of)[order]
    generic = np.repeat([p[2].glue == "generic" for p in parts], n_of)[order]
    tail = np.repeat([p[2].tail or "" for p in parts], n_of)[order]
    slot_start = _offsets(cat(lambda f, r, p, k: p.n))[:-1][order]
    slot_rows = cat(lambda f, r, p, k: p.slots)
    n_traces = len(n)

    # -- slots (trace-major, in the new order): sample row, position, reflection and glue draws
    s_trace = np.repeat(np.arange(n_traces), n)
    s_pos = _ragged_arange(n)
    s_row = slot_rows[slot_start[s_trace] + s_pos]
    s_last = s_pos == n[s_trace] - 1
    n_kept = pool["n_kept"].to_numpy()
    kept_start = _offsets(n_kept)[:-1]
    u = uniform(key[s_trace], ordinal[s_trace], S_REFLECTION, s_pos)
    s_kept = kept_start[s_row] + below(u, n_kept[s_row])
    # glue after a correct sample: correct + generic banks; after a wrong one: incorrect + generic
    pieces = _Pieces(responses, reflection_texts, pool["extracted_answer"].fill_null(""), bank)
    phrase_index = {p: i for i, p in enumerate(pieces.phrase_ids)}

    def bank_of(*banks: str) -> np.ndarray:
        return np.array([phrase_index[p] for p in bank.ids(*banks)], dtype=np.int64)

    glue_banks = [bank_of("generic_glue"), bank_of("correct_glue", "generic_glue"), bank_of("incorrect_glue", "generic_glue")]
    which = np.where(generic[s_trace], 0, np.where(pools.correct[s_row], 1, 2))
    u = uniform(key[s_trace], ordinal[s_trace], S_GLUE, s_pos)
    glue = np.select([which == b for b in range(3)], [ids[below(u, len(ids))] for ids in glue_banks])
    tail_len = np.select([tail == "backtrack", tail == "confirm"], [3, 1], 0)
    width = np.where(with_refl, 4, 2)
    seg_len = 1 + n * width + tail_len + 3
    seg_off = _offsets(seg_len)
    seg = np.empty(int(seg_off[-1]), dtype=np.int64)
    seg[seg_off[:-1]] = pieces.OPEN
    text_row = pool["text_row"].to_numpy()
    base = seg_off[s_trace] + 1 + s_pos * width[s_trace]
    seg[base] = text_row[s_row]
    r = with_refl[s_trace]
    kept_text_row = kept["text_row"].to_numpy()
    seg[base[r] + 1] = pieces.SAMPLE_THEN_REFLECT
    seg[base[r] + 2] = pieces.refl0 + kept_text_row[s_kept[r]]
    seg[base[r] + 3] = np.where(s_last[r], pieces.REFLECT_CLOSE, pieces.glue_after_reflection[glue[r]])
    seg[base[~r] + 1] = np.where(s_last[~r], pieces.SAMPLE_CLOSE, pieces.glue_after_sample[glue[~r]])
    end = seg_off[:-1] + 1 + n * width
    tail_phrase = np.full(n_traces, -1, dtype=np.int64)
    for name, tail_pieces in (("backtrack", pieces.backtrack), ("confirm", pieces.confirm)):
        t = np.flatnonzero(tail == name)
        ids = bank_of(name)
        tail_phrase[t] = ids[below(uniform(key[t], ordinal[t], S_TAIL, 0), len(ids))]
        seg[end[t]] = tail_pieces[tail_phrase[t]]
    t = np.flatnonzero(tail == "backtrack")
    seg[end[t] + 1] = text_row[final[t]]
    seg[end[t] + 2] = pieces.SAMPLE_CLOSE
    end = end + tail_len
    endings = bank_of("ending")
    ending = endings[below(uniform(key, ordinal, S_ENDING, 0), len(endings))]
    seg[end] = pieces.ending[ending]
    seg[end + 1] = pieces.answer0 + final
    seg[end + 2] = pieces.ANSWER_CLOSE
    completion = _list_of(pieces.series.gather(pl.Series(seg)), seg_len).list.join("\n")

    # -- ids: samples, kept reflections and phrases of every trace, in the order they appear
    refl_slots = np.flatnonzero(r)
    refl_ids = kept["reflection_id"].gather(pl.Series(s_kept[refl_slots]))
    refl_counts = np.bincount(s_trace[refl_slots], minlength=n_traces)
    has_tail = tail_phrase >= 0
    phrase_counts = (n - 1) + has_tail + 1
    phrase_off = _offsets(phrase_counts)
    phrases = np.empty(int(phrase_off[-1]), dtype=np.int64)
    glue_slots = ~s_last
    phrases[phrase_off[s_trace[glue_slots]] + s_pos[glue_slots]] = glue[glue_slots]
    phrases[phrase_off[:-1][has_tail] + n[has_tail] - 1] = tail_phrase[has_tail]
    phrases[phrase_off[1:] - 1] = ending
    phrase_names = pl.Series(pieces.phrase_ids, dtype=pl.Utf8)
    formats_sorted = sorted(cfg.formats)

    pid = pl.Series(problem_ids, dtype=pl.Utf8).gather(pl.Series(problem))
    frame = pl.DataFrame({
        "problem_id": pid,
        "format": pl.Series(formats_sorted, dtype=pl.Utf8).gather(pl.Series(fmt_code)),
        "n_samples": n.astype(np.int64),
        "repeat": repeat.astype(np.int64),
    })
    frame = frame.with_columns(
        prompt=frame.select("problem_id").join(questions, on="problem_id", how="left")["question"],
        completion=completion,
        sample_ids=_list_of(pool["sample_id"].gather(pl.Series(s_row)), n),
        reflection_ids=_list_of(refl_ids, refl_counts),
        phrase_ids=_list_of(phrase_names.gather(pl.Series(phrases)), phrase_counts),
        final_answer=pool["extracted_answer"].gather(pl.Series(final)),
        final_correct=pool["is_correct"].gather(pl.Series(final)),
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
            samples, reflections = bucket["samples"], bucket["reflections"]
            stats["problems/total"] += bucket["problems"].height
            stats["samples/total"] += samples.height
            stats["reflections/total"] += reflections.height
            # the filter moves ids and flags only; texts stay where they were read and are gathered once
            pool, kept, _ = filter_pool(
                samples.drop("response").with_row_index("text_row"),
                reflections.drop("text", "problem_id").with_row_index("text_row"),
                min_samples=cfg.effective_min_samples,
                include_truncated=cfg.include_truncated,
                drops=stats,
            )
            missing = pool.join(bucket["problems"], on="problem_id", how="anti")
            if missing.height:
                from tracekit.errors import StoreError

                msg = (
                    f"samples reference {missing['problem_id'].n_unique()} problem id(s) absent from table 'problems', "
                    f"first: {missing['problem_id'][0]!r} (sample {missing['sample_id'][0]!r})."
                )
                raise StoreError(msg)
            traces = rearrange_pool(pool, kept, samples["response"], reflections["text"], bucket["problems"],
                                    cfg, bank, drops=stats)
            if existing.len():
                traces = traces.filter(~pl.col("trace_id").is_in(existing.implode()))
            if traces.height:
                writer.submit("traces", traces)
                stats["traces/written"] += traces.height
    return stats
