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

The problems are labelled ``skillfactory`` (no verifier) unless ``task`` names a task that
can read its verifier's fields back from the question text (``countdown``: the numbers and
the target); then every question must be readable, and the rows that are not are an error
naming their lines. An import writes nothing unless all of it succeeds: its rows are staged
and published by the command's one last commit, with its views and its ``runs`` row (see
:meth:`tracekit.store.manifest.RunRecorder.transaction`).

An imported row's identity is its content, never its position in the file: a sample is
(problem, prompt variant, response, and its index among identical responses of the file),
a reflection is (sample, text, and its index among identical texts of that sample). So
importing half a file and then the whole file, or two files that overlap, stores each
sample once.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from tracekit.errors import InputFormatError, unknown_name
from tracekit.extract import parse_verdicts
from tracekit.ids import HashSet, hash_strings
from tracekit.ids import problem_id as make_problem_id
from tracekit.reference.raw import EXTRACTED, IS_CORRECT, REFLECTIONS, RESPONSES, RawFile
from tracekit.schemas import ID_COLUMNS, polars_schema
from tracekit.store import Store
from tracekit.store.manifest import recording
from tracekit.store.overlap import BackgroundWriter, prefetch
from tracekit.tasks import TASKS, Task

IMPORT_LABEL = "skillfactory"  # the default --task: imported data without a verifier


class Occurrences:
    """How often each content was seen before, across the batches of one file (flat memory).

    ``take(hashes)`` returns, for each row of a batch (64-bit content hashes), how many rows
    with the same content came before it in the file. Seen hashes are kept in a
    :class:`~tracekit.ids.HashSet`; only contents that repeat get a dictionary entry.

    Examples
    --------
    >>> occ = Occurrences()
    >>> occ.take(np.array([5, 7, 5], dtype=np.uint64)).tolist(), occ.take(np.array([5, 9], dtype=np.uint64)).tolist()
    ([0, 0, 1], [2, 0])
    """

    def __init__(self) -> None:
        self.seen = HashSet()
        self.extra: dict[int, int] = {}  # times seen beyond the first, for contents that repeat

    def take(self, hashes: np.ndarray) -> np.ndarray:
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        starts = np.flatnonzero(first)
        group = np.cumsum(first) - 1
        within = np.arange(len(ordered)) - starts[group]
        unique, counts = ordered[first], np.diff(np.append(starts, len(ordered)))
        seen = self.seen.contains(unique)
        prior = np.zeros(len(unique), dtype=np.int64)
        for i in np.flatnonzero(seen):  # contents met in an earlier batch (rare)
            h = int(unique[i])
            prior[i] = 1 + self.extra.get(h, 0)
            self.extra[h] = int(prior[i] + counts[i] - 1)
        repeated = ~seen & (counts > 1)
        if repeated.any():
            self.extra.update(zip(unique[repeated].tolist(), (counts[repeated] - 1).tolist()))
        if (~seen).any():
            self.seen.add(unique[~seen], sorted_unique=True)
        out = np.empty(len(ordered), dtype=np.int64)
        out[order] = prior[group] + within
        return out


class SeenProblems:
    """Which problems of a batch the import met in no earlier batch (a question's rows may span
    batches), with memory flat in the file's size: 8 bytes a problem (their id hashes), the ids
    of the last batch, and, for the rare hash that matches neither, the staged problems read back.
    A hash collision never drops a problem: every match is confirmed on the ids themselves.
    """

    def __init__(self, store: Store, staged) -> None:
        self.hashes = HashSet()
        self.last = pl.Series("problem_id", [], dtype=pl.Utf8)
        self.store, self.staged = store, staged  # the import's transaction of problems
        self.parts = store.snapshot("problems").parts  # problems an earlier import wrote

    def first_seen(self, ids: pl.Series) -> pl.Series:
        """A boolean mask over ``ids`` (unique within the batch): met for the first time."""
        hashes = ids.hash(seed=0).to_numpy()
        maybe = self.hashes.contains(hashes)
        fresh = ~maybe
        if maybe.any():
            suspects = ids.filter(pl.Series(maybe))
            known = suspects.is_in(self.last.implode())
            if not known.all():  # not in the last batch: in the staged parts (written before this batch)
                rest = suspects.filter(~known)
                found = [self.staged.staged_ids(rest), self.store.find_ids("problems", self.parts, rest)]
                known = known | suspects.is_in(pl.concat(found).implode())
            fresh[maybe] = ~known.to_numpy()
        self.hashes.add(hashes[fresh])
        self.last = ids
        return pl.Series(fresh)


def import_task(task: str) -> Task | None:
    """The task whose fields an import reads from each question (None for the plain label
    ``skillfactory``); an error for any other name, with a did-you-mean."""
    if task == IMPORT_LABEL:
        return None
    readers = [
        name for name, t in TASKS.items() if type(t).fields_from_question is not Task.fields_from_question
    ]
    if task not in readers:
        known = [IMPORT_LABEL, *readers]
        err = unknown_name("import task", task, known) if task not in TASKS else None
        msg = (
            str(err)
            if err
            else f"task {task!r} cannot read its verifier's fields from a reference question; importable: {known}."
        )
        hint = (
            f"--task {IMPORT_LABEL} imports the rows without a verifier; "
            f"{', '.join('--task ' + r for r in readers)} reads each question's fields so rewards can score it."
        )
        raise InputFormatError(f"import-skillfactory: {msg}\nHint: {hint}")
    return TASKS[task]


def import_skillfactory(
    path: str | Path,
    store: Store,
    *,
    task: str = IMPORT_LABEL,
    model: str = "unknown",
    split: str = "train",
    progress: bool = False,
) -> Counter:
    """The ``import-skillfactory`` command: import a reference-layout raw file (parquet or jsonl).

    Rows the store already holds are skipped (ids are content), so re-importing a file adds
    nothing; re-importing it under another ``model`` name is an error (the rows would keep the
    old name). The file's rows are added to the store's current view (see
    :mod:`tracekit.store.views`) and the import is recorded in ``runs``. Everything is checked
    and staged first and committed at the end: a failed import writes nothing. ``progress``
    shows a bar (rows, rows/s, ETA) on stderr. Returns row counts.
    """
    import sys

    from tqdm import tqdm

    from tracekit.tasks.base import SPLIT_FRACTIONS

    reader = import_task(task)
    if split not in SPLIT_FRACTIONS:
        msg = f"import-skillfactory: split must be one of {list(SPLIT_FRACTIONS)}, got {split!r}."
        raise InputFormatError(msg + "\nHint: train, validation or test.")
    raw_file = RawFile(path)
    counts: Counter = Counter()
    config = {"raw": str(raw_file.path), "task": task, "model": model, "split": split}
    tables = ("problems", "samples", "reflections")
    bar = tqdm(total=raw_file.rows, desc="import", unit="row", disable=not progress, file=sys.stderr)
    with recording(store, "import-skillfactory", config) as rec, rec.stage("import"), bar:
        named = _other_model_samples(store, model)
        occurrences = Occurrences()  # identical responses span batches
        unreadable: list[int] = []  # rows whose question the task cannot read
        staged = rec.final  # published with the runs row and the views, in one commit
        # sample and reflection ids are unique in a file by construction (occurrences count
        # repeated contents): their transactions keep no hashes of what they staged
        for table in tables:
            rec.transaction(table, unique=table != "problems")
        seen_problems = SeenProblems(store, rec.final.open["problems"])  # a question spans batches
        with BackgroundWriter(staged) as writer:
            for raw in prefetch(raw_file.batches()):  # batch i+1 is decoded while batch i is converted
                counts["raw_rows"] += raw.height
                fields = _question_fields(raw, reader, unreadable)
                problems, samples, reflections, rows = _convert(
                    raw, task=task, model=model, split=split, occurrences=occurrences, fields=fields
                )
                _check_model(raw_file, samples, rows, named, model)
                problems = problems.filter(seen_problems.first_seen(problems["problem_id"]))
                for table, frame in (
                    ("problems", problems),
                    ("samples", samples),
                    ("reflections", reflections),
                ):
                    rec.add_view(table, frame[ID_COLUMNS[table]], extends=True)  # ids are unique in a file
                    if frame.height and not unreadable:  # (rows the store holds are dropped as staged)
                        writer.submit(table, frame)
                bar.update(raw.height)
            if unreadable:
                _refuse_unreadable(raw_file, task, unreadable)
        for table in tables:
            rec.add_written(table, writer.written[table])
    # rows new at commit time (another import may have committed some of them first)
    counts.update({table: rec.final.rows[table] for table in tables})
    return counts


def _other_model_samples(store: Store, model: str) -> pl.DataFrame:
    """``sample_id, model`` of the imported samples the store holds under another model name."""
    return (
        store.scan("samples")
        .filter((pl.col("source") == "import") & (pl.col("model") != model))
        .select("sample_id", "model")
        .collect()
    )


def _check_model(
    raw_file: RawFile, samples: pl.DataFrame, rows: pl.Series, named: pl.DataFrame, model: str
) -> None:
    """Refuse responses the store already holds under another model name (they would keep it);
    ``rows``: each sample's row in the raw file."""
    if not named.height:
        return
    clash = samples.select("sample_id").with_columns(row=rows).join(named, on="sample_id")
    if clash.height:
        other = clash["model"][0]
        msg = (
            f"{raw_file.where(clash['row'][0])}: this response is already in the store, "
            f"imported as model {other!r}, not {model!r} ({clash.height} such responses in this batch).\n"
            f"Hint: import into another store to keep both names, or give --model {other} to add to that import."
        )
        raise InputFormatError(msg)


def _question_fields(raw: pl.DataFrame, reader: Task | None, unreadable: list[int]) -> dict[str, str]:
    """The ``meta`` (JSON) of each problem of ``raw`` (keyed ``question + "\\x1f" + answer``): the
    task's fields read from the question and checked against a whole-number answer; rows whose
    question cannot be read go to ``unreadable``."""
    base = {"source": "skillfactory-reference"}
    if reader is None:
        return {}
    out: dict[str, str] = {}
    for row, question, answer in raw.select("row", "question", "answer").iter_rows():
        key = f"{question}\x1f{answer}"
        if key in out:
            continue
        fields = reader.fields_from_question(question)
        if fields is not None and answer.strip().lstrip("-").isdigit() and "target" in fields:
            if int(answer) != fields["target"]:  # the answer names another target than the question
                fields = None
        if fields is None:
            unreadable.append(row)
            continue
        out[key] = json.dumps({**fields, **base}, sort_keys=True)
    return out


def _refuse_unreadable(raw_file: RawFile, task: str, rows: list[int]) -> None:
    shown = "; ".join(raw_file.where(r).rsplit(": ", 1)[-1] for r in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    msg = (
        f"{raw_file.path}: cannot read the {task} fields from the question of {len(rows)} row(s): {shown}{more} "
        "(or the answer names another target than the question); nothing was imported."
    )
    hint = (
        f"fix or remove those rows, or import with --task {IMPORT_LABEL} (no verifier). A {task} question "
        "names its numbers as a list [a, b, c] (or after 'numbers') and the target after 'equals', 'make' or 'reach'."
    )
    raise InputFormatError(f"{msg}\nHint: {hint}")


def _convert(
    raw: pl.DataFrame, *, task: str, model: str, split: str, occurrences: Occurrences, fields: dict[str, str]
):
    pairs = raw.select("question", "answer").unique(maintain_order=True)
    pids = [make_problem_id(task, q, a) for q, a in pairs.iter_rows()]
    pairs = pairs.with_columns(problem_id=pl.Series(pids, dtype=pl.Utf8))
    problems = pairs.select(
        "problem_id",
        task=pl.lit(task),
        question="question",
        answer="answer",
        split=pl.lit(split),
        difficulty=pl.lit(""),
        seed=pl.lit(None, dtype=pl.Int64),
        index=pl.lit(None, dtype=pl.Int64),
        meta=pl.concat_str("question", "answer", separator="\x1f").replace_strict(
            fields, default=json.dumps({"source": "skillfactory-reference"}), return_dtype=pl.Utf8
        ),
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
    # id: the content (problem, variant, response and the reflections the file gives it) and its index
    # among identical contents of the file: the same rows in any order or in several files are the same
    # samples with the same reflections (two copies of a response with other reflections are two samples)
    content = long.select(
        pl.concat_str(
            [
                pl.col("problem_id"),
                pl.col("prompt_variant").fill_null(""),
                pl.col("response"),
                pl.col("refl").list.join("\x1e").fill_null(""),
            ],
            separator="\x1f",
        )
    ).to_series()
    sample_ids, occurrence = _content_ids("s-", content, occurrences)
    long = long.with_columns(sample_id=sample_ids, occurrence=occurrence)
    long = long.with_columns(is_correct=pl.col("is_correct").fill_null(False))
    answer = pl.col("extracted_answer")
    samples = long.select(
        "sample_id",
        pl.col("sample_id").alias("sample_key"),
        "problem_id",
        pl.col("prompt_variant").fill_null("unknown"),
        sample_index=pl.col("occurrence").cast(pl.Int64),  # not the row: the order of a file is no identity
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
    # id: the sample and the reflection's position in its list: the sample's id already covers the
    # whole ordered list of its reflection texts, so this is content too (and no text is hashed twice)
    refl = refl.with_columns(
        reflection_id=pl.concat_str(
            [
                pl.lit("r-"),
                pl.col("sample_id").str.slice(2),
                pl.lit("-"),
                pl.col("reflection_index").cast(pl.Utf8),
            ]
        )
    )
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
    return problems, samples, reflections, long["row"]


def _content_ids(prefix: str, content: pl.Series, occurrences: Occurrences) -> tuple[pl.Series, pl.Series]:
    """``prefix`` + a stable hash of each content and its index among identical contents so far;
    and that index.

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
    return pl.select(pl.lit(prefix) + ids).to_series(), occurrence
