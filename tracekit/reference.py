"""The SkillFactory reference raw layout, imported into tracekit's tables.

The reference layout has one row per question x prompt variant x response, with
list-valued columns (see :data:`RAW_COLUMNS`). Each element of
``model_responses__mutated_prompts`` becomes a ``samples`` row; each reflection text
becomes a ``reflections`` row with its parsed verdict. The reflection column may hold
one list of reflections per response (``list[list[str]]``) or, as in the reference
data, one flat list that belongs to the row's first response (the reference script
only ever reads the first response).

Correctness and extracted answers are taken from the file (the reference pipeline's
own verifier); ``reason`` is ``ok``, ``no_answer`` or ``imported_incorrect``.

An imported row's identity is its content, never its position in the file: a sample is
(problem, prompt variant, response, and its index among identical responses of the file),
a reflection is (sample, text, and its index among identical texts of that sample). So
importing half a file and then the whole file, or two files that overlap, stores each
sample once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from tracekit.errors import InputFormatError
from tracekit.extract import parse_verdicts
from tracekit.ids import hash_strings
from tracekit.ids import problem_id as make_problem_id
from tracekit.schemas import polars_schema
from tracekit.store import Store
from tracekit.store.manifest import recording
from tracekit.store.overlap import BackgroundWriter, prefetch

RESPONSES = "model_responses__mutated_prompts"
IS_CORRECT = "model_responses__mutated_prompts__eval_is_correct"
EXTRACTED = "model_responses__mutated_prompts__eval_extracted_answers"
REFLECTIONS = "model_responses__mutated_prompts_reflection"
RAW_COLUMNS = ("question", "answer", "prompt_variant", RESPONSES, IS_CORRECT, EXTRACTED, REFLECTIONS)
BATCH_ROWS = 25_000


def _batches(path: Path) -> Iterator[pl.DataFrame]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            # pyarrow streams page by page, so memory stays bounded even for one huge row group
            pf = pq.ParquetFile(path)
            _check_columns(path, set(pf.schema_arrow.names))
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=list(RAW_COLUMNS)):
                yield pl.from_arrow(batch)
        elif suffix in (".jsonl", ".json", ".ndjson"):
            frame = pl.read_ndjson(path, infer_schema_length=None)
            _check_columns(path, set(frame.columns))
            for start in range(0, frame.height, BATCH_ROWS):
                yield frame.slice(start, BATCH_ROWS).select(RAW_COLUMNS)
        else:
            msg = f"{path}: unsupported file type {suffix!r}.\nHint: give a .parquet or .jsonl file."
            raise InputFormatError(msg)
    except InputFormatError:
        raise
    except Exception as exc:  # pyarrow/polars raise many types for unreadable files
        raise InputFormatError(f"cannot read {path}: {exc}") from None


def _check_columns(path: Path, names: set[str]) -> None:
    missing = [c for c in RAW_COLUMNS if c not in names]
    if missing:
        msg = (
            f"{path} is not in the SkillFactory reference layout: missing column(s) {missing}; "
            f"found {sorted(names)}.\nHint: the layout needs {list(RAW_COLUMNS)}."
        )
        raise InputFormatError(msg)


def _check_types(path: Path, frame: pl.DataFrame, first_row: int) -> pl.DataFrame:
    expected = {
        "question": pl.Utf8,
        "answer": pl.Utf8,
        "prompt_variant": pl.Utf8,
        RESPONSES: pl.List(pl.Utf8),
        IS_CORRECT: pl.List(pl.Boolean),
        EXTRACTED: pl.List(pl.Utf8),
    }
    if frame.schema["answer"] != pl.Utf8 and frame.schema["answer"] in (pl.Int64, pl.Float64, pl.Int32):
        frame = frame.with_columns(pl.col("answer").cast(pl.Utf8))
    for col, dtype in expected.items():
        got = frame.schema[col]
        if got == pl.Null or (isinstance(got, pl.List) and got.inner == pl.Null):
            frame = frame.with_columns(pl.col(col).cast(dtype))
        elif got != dtype:
            raise InputFormatError(f"{path}: column {col!r} has type {got}, expected {dtype}.")
    refl = frame.schema[REFLECTIONS]
    if refl == pl.Null or (isinstance(refl, pl.List) and refl.inner == pl.Null):
        frame = frame.with_columns(pl.col(REFLECTIONS).cast(pl.List(pl.Utf8)))
    elif refl not in (pl.List(pl.Utf8), pl.List(pl.List(pl.Utf8))):
        raise InputFormatError(
            f"{path}: column {REFLECTIONS!r} has type {refl}, expected list[str] or list[list[str]]."
        )
    lengths = frame.select(
        r=pl.col(RESPONSES).list.len(), c=pl.col(IS_CORRECT).list.len(), e=pl.col(EXTRACTED).list.len()
    )
    bad = lengths.with_row_index().filter((pl.col("r") != pl.col("c")) | (pl.col("r") != pl.col("e")))
    if bad.height:
        row = first_row + bad["index"][0]
        msg = (
            f"{path}: row {row}: the lists {RESPONSES!r}, {IS_CORRECT!r} and {EXTRACTED!r} have different lengths "
            f"({bad['r'][0]}, {bad['c'][0]}, {bad['e'][0]})."
        )
        raise InputFormatError(msg)
    nulls = frame.select(pl.col("question").is_null() | (pl.col("question") == "")).to_series()
    if nulls.any():
        raise InputFormatError(f"{path}: row {first_row + nulls.arg_true()[0]}: empty 'question'.")
    return frame


class Occurrences:
    """How often each content was seen before, across the batches of one file (flat memory).

    ``take(hashes)`` returns, for each row of a batch (64-bit content hashes), how many rows
    with the same content came before it in the file. Seen hashes are kept in sorted numpy
    arrays, and only contents that repeat get a dictionary entry.

    Examples
    --------
    >>> occ = Occurrences()
    >>> occ.take(np.array([5, 7, 5], dtype=np.uint64)).tolist(), occ.take(np.array([5, 9], dtype=np.uint64)).tolist()
    ([0, 0, 1], [2, 0])
    """

    def __init__(self) -> None:
        self.sorted = np.empty(0, dtype=np.uint64)
        self.pending: list[np.ndarray] = []
        self.extra: dict[int, int] = {}  # times seen beyond the first, for contents that repeat

    def _seen(self, values: np.ndarray) -> np.ndarray:
        found = np.zeros(len(values), dtype=bool)
        for arr in (self.sorted, *self.pending):
            if len(arr):
                at = np.minimum(np.searchsorted(arr, values), len(arr) - 1)
                found |= arr[at] == values
        return found

    def take(self, hashes: np.ndarray) -> np.ndarray:
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        starts = np.flatnonzero(first)
        group = np.cumsum(first) - 1
        within = np.arange(len(ordered)) - starts[group]
        unique, counts = ordered[first], np.diff(np.append(starts, len(ordered)))
        seen = self._seen(unique)
        prior = np.zeros(len(unique), dtype=np.int64)
        for i in np.flatnonzero(seen):  # contents met in an earlier batch (rare)
            h = int(unique[i])
            prior[i] = 1 + self.extra.get(h, 0)
            self.extra[h] = int(prior[i] + counts[i] - 1)
        repeated = ~seen & (counts > 1)
        if repeated.any():
            self.extra.update(zip(unique[repeated].tolist(), (counts[repeated] - 1).tolist()))
        if (~seen).any():
            self.pending.append(unique[~seen])
        if sum(len(a) for a in self.pending) > len(self.sorted) // 2 + 4096:
            self.sorted = np.sort(np.concatenate([self.sorted, *self.pending]))
            self.pending = []
        out = np.empty(len(ordered), dtype=np.int64)
        out[order] = prior[group] + within
        return out


def import_skillfactory(
    path: str | Path,
    store: Store,
    *,
    task: str = "skillfactory",
    model: str = "unknown",
    split: str = "train",
) -> Counter:
    """The ``import-skillfactory`` command: import a reference-layout raw file (parquet or jsonl).

    Rows the store already holds are skipped (ids are content), so re-importing a file adds
    nothing. The file's rows are added to the store's current view (see
    :mod:`tracekit.store.views`) and the import is recorded in ``runs``. Returns row counts.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"input file {path} does not exist.")
    counts: Counter = Counter()
    config = {"raw": str(path), "task": task, "model": model, "split": split}
    with recording(store, "import-skillfactory", config) as rec, rec.stage("import"):
        before = {
            t: store.ids(t) for t in ("problems", "samples", "reflections")
        }  # rows an earlier import wrote
        seen_problems: set[str] = set()  # a question spans batches
        occurrences = Occurrences()  # identical responses span batches
        first_row = 0
        with BackgroundWriter(store) as writer:  # batch i is written while batch i+1 is converted
            for raw in prefetch(_batches(path)):  # batch i+1 is decoded while batch i is converted
                raw = _check_types(path, raw, first_row).with_row_index("row", offset=first_row)
                first_row += raw.height
                counts["raw_rows"] += raw.height
                problems, samples, reflections = _convert(
                    raw, task=task, model=model, split=split, occurrences=occurrences
                )
                new = [pid not in seen_problems for pid in problems["problem_id"].to_list()]
                problems = problems.filter(pl.Series(new, dtype=pl.Boolean))
                seen_problems.update(problems["problem_id"].to_list())
                for table, frame in (
                    ("problems", problems),
                    ("samples", samples),
                    ("reflections", reflections),
                ):
                    rec.add_view(table, frame[frame.columns[0]], extends=True)  # ids are unique in a file
                    if before[table].len():
                        frame = frame.filter(~pl.col(frame.columns[0]).is_in(before[table].implode()))
                    if frame.height:
                        writer.submit(table, frame)
        counts.update(writer.written)  # rows new at commit time (another import may have written some)
        for table in ("problems", "samples", "reflections"):
            rec.add_written(table, counts[table])
    return counts


def _convert(raw: pl.DataFrame, *, task: str, model: str, split: str, occurrences: Occurrences):
    pairs = raw.select("question", "answer").unique(maintain_order=True)
    pids = [make_problem_id(task, q, a or "") for q, a in pairs.iter_rows()]
    pairs = pairs.with_columns(problem_id=pl.Series(pids, dtype=pl.Utf8))
    problems = pairs.select(
        "problem_id",
        task=pl.lit(task),
        question="question",
        answer=pl.col("answer").fill_null(""),
        split=pl.lit(split),
        difficulty=pl.lit(""),
        seed=pl.lit(None, dtype=pl.Int64),
        index=pl.lit(None, dtype=pl.Int64),
        meta=pl.lit(json.dumps({"source": "skillfactory-reference"})),
    ).cast(dict(polars_schema("problems")))
    raw = raw.join(pairs, on=["question", "answer"], how="left", nulls_equal=True)

    nested = raw.schema[REFLECTIONS] == pl.List(pl.List(pl.Utf8))
    exploded = ["response", "is_correct", "extracted_answer", "pos"] + (["refl"] if nested else [])
    long = raw.select(
        "row",
        "problem_id",
        "prompt_variant",
        pl.col(RESPONSES).alias("response"),
        pl.col(IS_CORRECT).alias("is_correct"),
        pl.col(EXTRACTED).alias("extracted_answer"),
        pl.col(REFLECTIONS).alias("refl"),
        pos=pl.int_ranges(pl.col(RESPONSES).list.len()),
    ).explode(exploded)
    long = long.filter(pl.col("response").is_not_null())
    if not nested:  # a flat list belongs to the first response of the row
        long = long.with_columns(
            refl=pl.when(pl.col("pos") == 0)
            .then(pl.col("refl"))
            .otherwise(pl.lit([], dtype=pl.List(pl.Utf8)))
        )
    # id: the content (problem, variant, response) and its index among identical contents of the file
    content = long.select(
        pl.concat_str(
            [pl.col("problem_id"), pl.col("prompt_variant").fill_null(""), pl.col("response")],
            separator="\x1f",
        )
    ).to_series()
    long = long.with_columns(sample_id=_content_ids("s-", content, occurrences))
    long = long.with_columns(is_correct=pl.col("is_correct").fill_null(False))
    answer = pl.col("extracted_answer")
    samples = long.select(
        "sample_id",
        pl.col("sample_id").alias("sample_key"),
        "problem_id",
        pl.col("prompt_variant").fill_null("unknown"),
        sample_index=(pl.col("row") * 1000 + pl.col("pos")).cast(pl.Int64),
        model=pl.lit(model),
        max_tokens=pl.lit(None, dtype=pl.Int64),
        prompt=pl.lit(None, dtype=pl.Utf8),
        response="response",
        finish_reason=pl.lit("unknown"),
        n_tokens=pl.lit(None, dtype=pl.Int64),
        extracted_answer=answer,
        is_correct="is_correct",
        reason=pl.when(pl.col("is_correct"))
        .then(pl.lit("ok"))
        .when(answer.is_null() | (answer.str.strip_chars() == ""))
        .then(pl.lit("no_answer"))
        .otherwise(pl.lit("imported_incorrect")),
        source=pl.lit("import"),
    ).cast(dict(polars_schema("samples")))
    refl = (
        long.select("sample_id", "problem_id", "is_correct", "refl")
        .with_columns(reflection_index=pl.int_ranges(pl.col("refl").list.len()))
        .explode("refl", "reflection_index")
        .filter(pl.col("refl").is_not_null())
    )
    parsed = parse_verdicts(refl["refl"])
    refl = refl.with_columns(parsed)
    # id: the sample, the text and its index among identical texts of that sample (one raw row holds them all)
    # id: the sample, the text and its index among identical texts of that sample (all in one raw row)
    text = refl.select(pl.concat_str(["sample_id", "refl"], separator="\x1f")).to_series()
    refl = refl.with_columns(reflection_id=_content_ids("r-", text, Occurrences()))
    reflections = refl.select(
        "reflection_id",
        sample_id="sample_id",
        problem_id="problem_id",
        reflection_index=pl.col("reflection_index").cast(pl.Int64),
        model=pl.lit(model),
        text="refl",
        finish_reason=pl.lit("unknown"),
        verdict="verdict",
        verdict_reason="verdict_reason",
    ).cast(dict(polars_schema("reflections")))
    return problems, samples, reflections


def _content_ids(prefix: str, content: pl.Series, occurrences: Occurrences) -> pl.Series:
    """``prefix`` + a stable hash of each content and its index among identical contents so far.

    Equal contents are found with polars' fast (process-local) hash; the id is xxh3
    (:func:`tracekit.ids.hash_strings`), stable across versions and machines: the content's own
    hash for a first occurrence, a hash of it and the index for a repeat (rare)."""
    occurrence = pl.Series(occurrences.take(content.hash(seed=0).to_numpy()))
    ids = pl.Series(hash_strings(content), dtype=pl.Utf8)
    repeat = (occurrence > 0).arg_true()
    if repeat.len():
        again = pl.select(
            pl.concat_str([ids.gather(repeat), occurrence.gather(repeat).cast(pl.Utf8)], separator="#")
        )
        ids = ids.scatter(repeat, pl.Series(hash_strings(again.to_series()), dtype=pl.Utf8))
    return pl.select(pl.lit(prefix) + ids).to_series()


def synthetic_raw(
    n_questions: int,
    *,
    variants: tuple[str, ...] = ("original", "plan_and_execute", "alternatively", "rephrase"),
    samples_per_variant: int = 2,
    reflections_per_sample: int = 2,
    response_chars: int = 1000,
    reflection_chars: int = 500,
    seed: int = 0,
    text: str = "repeated",
) -> pl.DataFrame:
    """A synthetic raw table in the reference layout (for demos, tests and benchmarks).

    Questions are small "reach the target" arithmetic puzzles; about half the responses
    are correct; reflections agree with the truth about 85% of the time, and some have
    no usable verdict. Vectorised, so millions of rows take seconds. Deterministic in
    ``seed``. ``text`` pads responses and reflections with one repeated sentence
    (``"repeated"``: compresses about 50x) or with each row's own window of a random
    stream of English words (``"words"``: compresses about 3x, like model text).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = n_questions * len(variants) * samples_per_variant
    q = np.repeat(np.arange(n_questions), len(variants) * samples_per_variant)
    v = np.tile(np.repeat(np.arange(len(variants)), samples_per_variant), n_questions)
    a = rng.integers(2, 60, size=n_questions)
    b = rng.integers(2, 60, size=n_questions)
    c = rng.integers(2, 9, size=n_questions)
    target = (a + b) * c
    correct = rng.random(rows) < 0.5
    wrong_by = rng.integers(1, 9, size=rows)
    said = np.where(correct, target[q], target[q] + wrong_by)
    refl_ok = rng.random((rows, reflections_per_sample)) < 0.85
    no_verdict = rng.random((rows, reflections_per_sample)) < 0.05
    pad_r = max(0, response_chars - 120)
    pad_f = max(0, reflection_chars - 80)
    if text not in ("repeated", "words"):
        raise ValueError(f"synthetic_raw: text must be 'repeated' or 'words', got {text!r}")
    filler = "Let me think about the order of operations and try the numbers one at a time. "
    stream = _word_stream(rng, 4_000_000) if text == "words" else ""

    def pad(chars: int, repeated: str) -> pl.Expr:
        if not stream:
            return pl.lit((repeated * (chars // len(repeated) + 1))[:chars])
        starts = rng.integers(0, len(stream) - chars, size=rows).tolist()
        return pl.lit(pl.Series([stream[i : i + chars] for i in starts], dtype=pl.Utf8))

    frame = pl.DataFrame(
        {
            "q": q,
            "said": said,
            "correct": correct,
            "a": a[q],
            "b": b[q],
            "c": c[q],
            "t": target[q],
            "variant": np.array(variants, dtype=object)[v].tolist(),
        }
    )
    question = pl.format(
        "Puzzle {}: using the numbers {}, {}, {}, make {}. Use each number once with + - * /.",
        "q",
        "a",
        "b",
        "c",
        "t",
    )
    response = pl.format(
        "Attempt {}. {}\nStep 1: {} + {} = {}\nStep 2: multiply by {}.\n<answer>({} + {}) * {} = {}</answer>",
        pl.int_range(pl.len()),
        pad(pad_r, filler),
        "a",
        "b",
        pl.col("a") + pl.col("b"),
        "c",
        "a",
        "b",
        "c",
        "said",
    )
    refl_cols = []
    for j in range(reflections_per_sample):
        says_correct = pl.lit(pl.Series(refl_ok[:, j]))
        verdict = (
            pl.when(pl.lit(pl.Series(no_verdict[:, j])))
            .then(pl.lit("I am not sure."))
            .when(says_correct == pl.col("correct"))
            .then(pl.lit("<verdict>\nCorrect\n</verdict>"))
            .otherwise(pl.lit("<verdict>\nIncorrect\n</verdict>"))
        )
        fpad = pad(pad_f, "Checking the arithmetic step by step. ")
        refl_cols.append(pl.format("{} ({} + {}) * {} gives {}.\n{}", fpad, "a", "b", "c", "said", verdict))
    return frame.select(
        question=question,
        answer=pl.col("t").cast(pl.Utf8),
        prompt_variant="variant",
        model_responses__mutated_prompts=pl.concat_list(response),
        model_responses__mutated_prompts__eval_is_correct=pl.concat_list("correct"),
        model_responses__mutated_prompts__eval_extracted_answers=pl.concat_list(
            pl.format("({} + {}) * {} = {}", "a", "b", "c", "said")
        ),
        model_responses__mutated_prompts_reflection=pl.concat_list(refl_cols),
    )


def _word_stream(rng, n_words: int) -> str:
    """``n_words`` English words drawn at random (from the ``english-words`` lists), space-separated."""
    import numpy as np
    from english_words import get_english_words_set

    words = np.array(
        sorted(w for w in get_english_words_set(["web2"], lower=True) if w.isascii()), dtype=object
    )
    return " ".join(words[rng.integers(0, len(words), size=n_words)].tolist())
