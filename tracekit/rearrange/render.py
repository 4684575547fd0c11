"""Trace text and ids from planned traces: the layout (numpy) and the text (polars).

A trace's text is a list of pieces joined with ``"\\n"``: the store's sample and
reflection texts as they are, final answers, and constant pieces (tags fused with
phrases, built once per phrase bank). With tracekit's layout::

    <think>\\n<sample> | response | </sample>\\n<reflect> | reflection | </reflect>\\n{glue}\\n<sample> | ...
    ... | </reflect> | [{backtrack}\\n<sample> | response | </sample>] or [{confirm}]
    | </think>\\n\\n\\n{ending}\\n\\n<answer> | answer | </answer>

The reference layout (``layout="reference"``) is the SkillFactory reference script's
skeleton: the backtrack phrase and the re-pasted sample, or the confirmation, come after
``</think>``, untagged, on the lines before the ending phrase; without reflections, each
``</sample>`` is followed by a blank line; a missing final answer is written ``None``.

:func:`lay_out` draws the reflection and phrase of every slot and writes each trace as
integer references into that table of pieces, plus every column but the text;
:meth:`Layout.render` gathers and joins the pieces (the one copy of the text), so the two
steps can run on different threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from tracekit.ids import hash_strings, stable_hash
from tracekit.rearrange.config import BACKTRACK, CONFIRM, LAYOUTS  # noqa: F401  (LAYOUTS: re-exported)
from tracekit.rearrange.draws import S_ENDING, S_GLUE, S_REFLECTION, S_TAIL, below, uniform
from tracekit.rearrange.phrases import BANKS, PhraseBank
from tracekit.rearrange.ragged import offsets, ragged_arange, starts, take_runs
from tracekit.schemas import polars_schema

# the version of the text templates: it enters every trace id, so a template change never keeps old
# traces under the same ids (2: three newlines after </think>; the reference layout)
TEMPLATE_VERSION = 2


def list_of(values: pl.Series, lengths: np.ndarray) -> pl.Series:
    """Cut ``values`` into consecutive lists of the given lengths (a list column, no text copied)."""
    arrow = values.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return pl.Series(pa.LargeListArray.from_arrays(pa.array(offsets(lengths)), arrow))


@dataclass
class TraceBatch:
    """Every planned trace of a batch of problems, ordered by (problem, format, repeat, n).

    Arrays are per trace except ``slots``, which holds each trace's pool rows in order.
    """

    problem: np.ndarray
    fmt_code: np.ndarray  # index into sorted(formats)
    repeat: np.ndarray
    n: np.ndarray
    key: np.ndarray  # the (problem, format, repeat) key of every draw (see tracekit.rearrange.draws)
    ordinal: np.ndarray
    final: np.ndarray
    with_reflections: np.ndarray
    generic_glue: np.ndarray
    tail: np.ndarray  # "" or one of TAILS (BACKTRACK, CONFIRM)
    slots: np.ndarray
    problem_ids: pl.Series  # id of every problem of the batch, in pool order


def template_digest(bank: PhraseBank, layout: str) -> str:
    """Hash of every constant piece of text (tags and phrases as laid out in ``layout``) and of
    :data:`TEMPLATE_VERSION`: it enters trace ids, so a change to the layout gives new traces
    instead of stale ones under old ids."""
    return stable_hash(_Pieces(0, 0, 0, bank, layout).consts, TEMPLATE_VERSION)


class _Pieces:
    """The table of text pieces: responses, reflection texts, answers, then constants."""

    def __init__(self, n_responses: int, n_reflections: int, n_answers: int, bank: PhraseBank, layout: str):
        self.phrase_ids = bank.ids(*BANKS)
        self.index = {p: i for i, p in enumerate(self.phrase_ids)}
        texts = [bank.text(p) for p in self.phrase_ids]
        self.refl0 = n_responses
        self.answer0 = n_responses + n_reflections
        self.consts: list[str] = []
        const0 = self.answer0 + n_answers
        add = lambda items: np.array([const0 + self._add(t) for t in items], dtype=np.int64)  # noqa: E731
        self.OPEN, self.SAMPLE_THEN_REFLECT, self.SAMPLE_CLOSE, self.REFLECT_CLOSE, self.ANSWER_CLOSE = add(
            ["<think>\n<sample>", "</sample>\n<reflect>", "</sample>", "</reflect>", "</answer>"]
        )
        reference = layout == "reference"
        # without reflections the reference leaves a blank line after every </sample>
        gap = "\n" if reference else ""
        self.LAST_SAMPLE_CLOSE = add([f"</sample>{gap}"])[0]
        self.glue_after_reflection = add([f"</reflect>\n{t}\n<sample>" for t in texts])
        self.glue_after_sample = add([f"</sample>\n{gap}{t}\n<sample>" for t in texts])
        self.ending = add([f"</think>\n\n\n{t}\n\n<answer>" for t in texts])
        if reference:  # the tail follows </think>, untagged; the ending phrase comes after it
            self.backtrack = add([f"</think>\n\n\n{t}" for t in texts])
            self.confirm = self.backtrack
            self.ending_after_tail = add([f"{t}\n\n<answer>" for t in texts])
        else:  # the tail stays inside <think>; the re-pasted sample is a <sample> block
            self.backtrack = add([f"{t}\n<sample>" for t in texts])
            self.confirm = add(texts)
            self.ending_after_tail = self.ending
        self.backtrack_close = [] if reference else [self.SAMPLE_CLOSE]  # pieces after the re-pasted sample

    def _add(self, text: str) -> int:
        self.consts.append(text)
        return len(self.consts) - 1

    def bank(self, bank: PhraseBank, *names: str) -> np.ndarray:
        """Phrase indices of the named banks (glue draws from a union of banks)."""
        return np.array([self.index[p] for p in bank.ids(*names)], dtype=np.int64)


@dataclass
class Layout:
    """Traces laid out as references into their text pieces; :meth:`render` makes the rows."""

    frame: pl.DataFrame  # every column of the traces table but ``completion``
    pieces: list[pl.Series]  # responses, reflection texts, answers, constants
    segments: np.ndarray
    lengths: np.ndarray  # segments per trace

    def select(self, keep: np.ndarray) -> Layout:
        """Only the traces where ``keep`` holds (e.g. those the store lacks)."""
        lengths = self.lengths[keep]
        segments = take_runs(self.segments, starts(self.lengths)[keep], lengths)
        return Layout(self.frame.filter(pl.Series(keep)), self.pieces, segments, lengths)

    def pieces_of(self, rows: int) -> list[Layout]:
        """This layout cut into layouts of at most ``rows`` traces, in order (none when empty)."""
        n = self.frame.height
        if n <= rows:
            return [self] if n else []
        return [self.select((np.arange(n) >= s) & (np.arange(n) < s + rows)) for s in range(0, n, rows)]

    def render(self) -> pl.DataFrame:
        """The ``traces`` rows: gather the pieces of every trace and join them with newlines."""
        pieces = pl.concat(self.pieces, rechunk=False)
        completion = list_of(pieces.gather(pl.Series(self.segments)), self.lengths).list.join("\n")
        return self.frame.with_columns(completion=completion).select(list(polars_schema("traces")))


def lay_out(
    batch: TraceBatch,
    pool: pl.DataFrame,
    kept: pl.DataFrame,
    responses: pl.Series,
    reflection_texts: pl.Series,
    questions: pl.DataFrame,
    formats: list[str],
    bank: PhraseBank,
    digest: str,
    *,
    layout: str = "tracekit",
) -> Layout:
    """Draw each slot's reflection and glue, each trace's tail and ending, and lay the traces out.

    ``pool``/``kept`` come from :func:`tracekit.filter.filter_pool` (``text_row`` points into
    ``responses``/``reflection_texts``); ``formats`` is the sorted list ``fmt_code`` indexes.
    """
    pieces = _Pieces(len(responses), len(reflection_texts), pool.height, bank, layout)
    slots = _draw_slots(batch, pool, pieces, bank)
    segments, lengths, tail_phrase, ending = _segments(batch, slots, pool, kept, pieces, bank)
    frame = _columns(batch, slots, pool, kept, questions, formats, pieces, tail_phrase, ending, digest)
    texts = [
        responses.cast(pl.Utf8),
        reflection_texts.cast(pl.Utf8),
        pool["extracted_answer"].fill_null("None" if layout == "reference" else ""),
        pl.Series(pieces.consts, dtype=pl.Utf8),
    ]
    return Layout(frame=frame, pieces=texts, segments=segments, lengths=lengths)


@dataclass
class _Slots:
    """Every slot (a sample's place in a trace), trace-major: its trace, position, pool row, whether it
    is its trace's last, the kept reflection drawn for it (a row of ``kept``) and the glue phrase after it."""

    trace: np.ndarray
    pos: np.ndarray
    row: np.ndarray
    last: np.ndarray
    kept: np.ndarray
    glue: np.ndarray


def _draw_slots(b: TraceBatch, pool: pl.DataFrame, pieces: _Pieces, bank: PhraseBank) -> _Slots:
    """Each slot's sample row, position, drawn reflection (among the sample's kept ones) and glue."""
    correct = pool["is_correct"].to_numpy()
    s_trace = np.repeat(np.arange(len(b.n)), b.n)
    s_pos = ragged_arange(b.n)
    s_row = b.slots
    s_key, s_ordinal = b.key[s_trace], b.ordinal[s_trace]
    n_kept = pool["n_kept"].to_numpy()
    s_kept = starts(n_kept)[s_row] + below(uniform(s_key, s_ordinal, S_REFLECTION, s_pos), n_kept[s_row])
    # glue after a correct sample: correct + generic banks; after a wrong one: incorrect + generic
    glue_banks = [
        pieces.bank(bank, "generic_glue"),
        pieces.bank(bank, "correct_glue", "generic_glue"),
        pieces.bank(bank, "incorrect_glue", "generic_glue"),
    ]
    which = np.where(b.generic_glue[s_trace], 0, np.where(correct[s_row], 1, 2))
    u = uniform(s_key, s_ordinal, S_GLUE, s_pos)
    glue = np.select([which == i for i in range(3)], [ids[below(u, len(ids))] for ids in glue_banks])
    return _Slots(s_trace, s_pos, s_row, s_pos == b.n[s_trace] - 1, s_kept, glue)


def _segments(
    b: TraceBatch, s: _Slots, pool: pl.DataFrame, kept: pl.DataFrame, pieces: _Pieces, bank: PhraseBank
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pieces of every trace in order: (segments, segments per trace, each trace's tail phrase
    (-1: none) and ending phrase). Samples with their reflections and glue, then the tail, the ending
    and the final answer."""
    n_traces = len(b.n)
    text_row = pool["text_row"].to_numpy()
    backtrack_len = 2 + len(pieces.backtrack_close)
    tail_len = np.select([b.tail == BACKTRACK, b.tail == CONFIRM], [backtrack_len, 1], 0)
    width = np.where(b.with_reflections, 4, 2)
    lengths = 1 + b.n * width + tail_len + 3
    seg_off = offsets(lengths)
    seg = np.empty(int(seg_off[-1]), dtype=np.int64)
    seg[seg_off[:-1]] = pieces.OPEN
    # the samples: each with its reflection and glue (4 pieces), or with its glue only (2)
    base = seg_off[s.trace] + 1 + s.pos * width[s.trace]
    seg[base] = text_row[s.row]
    r = b.with_reflections[s.trace]
    seg[base[r] + 1] = pieces.SAMPLE_THEN_REFLECT
    seg[base[r] + 2] = pieces.refl0 + kept["text_row"].to_numpy()[s.kept[r]]
    seg[base[r] + 3] = np.where(s.last[r], pieces.REFLECT_CLOSE, pieces.glue_after_reflection[s.glue[r]])
    seg[base[~r] + 1] = np.where(s.last[~r], pieces.LAST_SAMPLE_CLOSE, pieces.glue_after_sample[s.glue[~r]])
    # the tail: its phrase, and for a backtrack the final sample again
    end = seg_off[:-1] + 1 + b.n * width
    tail_phrase = np.full(n_traces, -1, dtype=np.int64)
    for name, tail_pieces in ((BACKTRACK, pieces.backtrack), (CONFIRM, pieces.confirm)):
        t = np.flatnonzero(b.tail == name)
        ids = pieces.bank(bank, name)
        tail_phrase[t] = ids[below(uniform(b.key[t], b.ordinal[t], S_TAIL, 0), len(ids))]
        seg[end[t]] = tail_pieces[tail_phrase[t]]
    t = np.flatnonzero(b.tail == BACKTRACK)
    seg[end[t] + 1] = text_row[b.final[t]]
    for i, piece in enumerate(pieces.backtrack_close):
        seg[end[t] + 2 + i] = piece
    # the ending phrase and the final answer
    end = end + tail_len
    endings = pieces.bank(bank, "ending")
    ending = endings[below(uniform(b.key, b.ordinal, S_ENDING, 0), len(endings))]
    seg[end] = np.where(tail_len > 0, pieces.ending_after_tail[ending], pieces.ending[ending])
    seg[end + 1] = pieces.answer0 + b.final
    seg[end + 2] = pieces.ANSWER_CLOSE
    return seg, lengths, tail_phrase, ending


def _phrases(
    b: TraceBatch, s: _Slots, tail_phrase: np.ndarray, ending: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The phrases of every trace in the order they appear (glue, tail, ending), as indices into
    the phrase ids: (phrases, phrases per trace)."""
    has_tail = tail_phrase >= 0
    phrase_counts = b.n + has_tail
    phrase_off = offsets(phrase_counts)
    phrases = np.empty(int(phrase_off[-1]), dtype=np.int64)
    glue_slots = ~s.last
    phrases[phrase_off[s.trace[glue_slots]] + s.pos[glue_slots]] = s.glue[glue_slots]
    phrases[phrase_off[:-1][has_tail] + b.n[has_tail] - 1] = tail_phrase[has_tail]
    phrases[phrase_off[1:] - 1] = ending
    return phrases, phrase_counts


def _columns(
    b: TraceBatch,
    s: _Slots,
    pool: pl.DataFrame,
    kept: pl.DataFrame,
    questions: pl.DataFrame,
    formats: list[str],
    pieces: _Pieces,
    tail_phrase: np.ndarray,
    ending: np.ndarray,
    digest: str,
) -> pl.DataFrame:
    """Every column of the traces but the text: the samples, kept reflections and phrases of every
    trace in the order they appear, and the trace id."""
    refl_slots = np.flatnonzero(b.with_reflections[s.trace])
    refl_ids = kept["reflection_id"].gather(pl.Series(s.kept[refl_slots]))
    refl_counts = np.bincount(s.trace[refl_slots], minlength=len(b.n))
    phrases, phrase_counts = _phrases(b, s, tail_phrase, ending)
    frame = pl.DataFrame(
        {
            "problem_id": b.problem_ids.gather(pl.Series(b.problem)),
            "format": pl.Series(formats, dtype=pl.Utf8).gather(pl.Series(b.fmt_code)),
            "n_samples": b.n.astype(np.int64),
            "repeat": b.repeat.astype(np.int64),
            "ordinal": b.ordinal.astype(np.int64),
        }
    )
    final = pl.Series(b.final)
    frame = frame.with_columns(
        prompt=frame.select("problem_id").join(questions, on="problem_id", how="left")["question"],
        sample_ids=list_of(pool["sample_id"].gather(pl.Series(s.row)), b.n).cast(pl.List(pl.Utf8)),
        reflection_ids=list_of(refl_ids, refl_counts).cast(pl.List(pl.Utf8)),
        phrase_ids=list_of(
            pl.Series(pieces.phrase_ids, dtype=pl.Utf8).gather(pl.Series(phrases)), phrase_counts
        ).cast(pl.List(pl.Utf8)),
        final_answer=pool["extracted_answer"].gather(final),
        final_correct=pool["is_correct"].gather(final),
        config_hash=pl.lit(digest),
    )
    return _with_trace_ids(frame, pool["sample_id"].gather(final))


def _with_trace_ids(frame: pl.DataFrame, final_sample_ids: pl.Series) -> pl.DataFrame:
    """``frame`` with its ``trace_id`` (and without ``ordinal``, which only the id needs)."""
    # a trace's id hashes everything its text is made of (the template and phrase bank via the
    # digest): a changed input gives a new id, an unchanged trace keeps its id and is not rewritten
    keys = frame.select(
        pl.concat_str(
            [
                "problem_id",
                "format",
                "n_samples",
                "repeat",
                "ordinal",
                "config_hash",
                pl.col("sample_ids").list.join(","),
                pl.col("reflection_ids").list.join(","),
                pl.col("phrase_ids").list.join(","),
                final_sample_ids,
            ],
            separator="|",
        )
    )
    return frame.with_columns(
        trace_id=pl.Series(["t-" + h for h in hash_strings(keys.to_series())], dtype=pl.Utf8)
    ).drop("ordinal")
