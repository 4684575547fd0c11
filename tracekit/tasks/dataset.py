"""The generic dataset task: problems from any local file, a column mapping and a named checker.

A run or eval config names it ``dataset`` with a ``path`` (``.parquet``, ``.jsonl`` or a
folder written by ``datasets``' ``save_to_disk``) and options::

    - name: dataset
      path: data/my_benchmark.parquet
      options: {question: prompt, answer: target, checker: number, id: uid}

Options: ``question`` and ``answer`` (columns; default ``question``, ``answer``), ``id``
(a column of stable ids, kept in the problem's fields), ``split`` (a column naming each
row's split: only rows of the config's split are loaded), ``choices`` (a column of choice
texts, or ``{label, text}`` lists as in CommonsenseQA/ARC; the answer is a label, a
0-based index or the right text), ``checker`` (``exact``, ``number``, ``choice``, ``math``,
``regex``; see :mod:`tracekit.tasks.checkers`), ``pattern`` (``regex``: the pattern a right
answer matches whole, where ``{answer}`` stands for the escaped reference; default: the
answer column holds each problem's pattern) and ``instruction`` (text added after each
question). A list in the answer column is a set of accepted answers.

The checker and what it needs travel in each problem's fields (``meta``), so rewards and
exports score the problems with nothing but the rows. ``gsm8k``, ``commonsenseqa`` and
``math`` are presets of this task (:mod:`tracekit.tasks.loaders`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.errors import ConfigError, InputFormatError, unknown_name, warn
from tracekit.ids import problem_id
from tracekit.tasks.base import Check, Task
from tracekit.tasks.checkers import CHECKERS

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
CHOICE_INSTRUCTION = "Give the letter of the best choice in <answer> </answer> tags."
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def read_source(path: str | Path, split: str = "test", config: str | None = None) -> pl.DataFrame:
    """The rows of a local ``.parquet``/``.jsonl`` file or ``save_to_disk`` folder (or, given an
    ``owner/name`` that is not a local path and where the Hub is reachable, that Hub dataset)."""
    p = Path(path)
    if p.is_dir():
        return _read_saved(p, split)
    if not p.is_file():
        if (
            isinstance(path, str)
            and path.count("/") == 1
            and not p.exists()
            and not path.startswith((".", "/"))
        ):
            return _read_hub(path, split, config)
        raise InputFormatError(
            f"dataset file {p} does not exist.\nHint: give a .parquet or .jsonl file or a folder."
        )
    try:
        if p.suffix == ".parquet":
            return pl.read_parquet(p)
        if p.suffix in (".jsonl", ".json", ".ndjson"):
            return pl.read_ndjson(p, infer_schema_length=None)
    except Exception as exc:  # polars raises several types for bad files
        raise InputFormatError(f"cannot read {p}: {exc}") from None
    msg = f"{p}: unsupported file type {p.suffix!r}."
    raise InputFormatError(
        msg + "\nHint: use .parquet, .jsonl or a folder written by datasets' save_to_disk."
    )


def _read_saved(p: Path, split: str) -> pl.DataFrame:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    if not ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file()):
        msg = f"{p} is a folder but not one written by datasets' save_to_disk (no state.json or dataset_dict.json)."
        raise InputFormatError(msg + "\nHint: give a .parquet or .jsonl file, or a save_to_disk folder.")
    import datasets

    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as exc:  # datasets raises several types for damaged folders
        raise InputFormatError(f"cannot read the datasets folder {p}: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        names = [k for k in ds if SPLIT_ALIASES.get(k.lower()) == split] or (list(ds) if len(ds) == 1 else [])
        if not names:
            msg = f"{p} holds the splits {list(ds)}, none of them {split!r}."
            raise InputFormatError(msg + "\nHint: set the task's split to one of them.")
        ds = ds[names[0]]
    return ds.to_polars()


def _read_hub(name: str, split: str, config: str | None) -> pl.DataFrame:
    """A Hub dataset (``owner/name``), where the Hub is reachable."""
    import datasets

    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown name, gated: all mean "cannot load"
        msg = f"cannot load {name!r} (split {split!r}) from the Hub: {exc}\nHint: give a local .parquet or .jsonl file."
        raise InputFormatError(msg) from None
    return ds.to_polars()


def need_columns(frame: pl.DataFrame, path, columns: list[str], layout: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"{path} is not in the {layout} layout: missing column(s) {missing}; found {frame.columns}."
        raise InputFormatError(
            msg + "\nHint: map the task's columns with options (question: COL, answer: COL)."
        )


def problems_frame(task: str, rows: list[dict[str, Any]], split: str) -> pl.DataFrame:
    """A ``problems`` frame of loaded rows (``question``, ``answer``, ``meta``); a repeated
    (question, answer) is kept once, with a warning."""
    out, seen = [], set()
    for i, r in enumerate(rows):
        pid = problem_id(task, r["question"], r["answer"])
        if pid in seen:
            continue
        seen.add(pid)
        out.append(
            {
                "problem_id": pid,
                "task": task,
                "question": r["question"],
                "answer": r["answer"],
                "split": split,
                "difficulty": "",
                "seed": None,
                "index": i,
                "meta": json.dumps(r["meta"], sort_keys=True),
            }
        )
    if len(out) < len(rows):
        warn(
            f"task {task!r}: {len(rows) - len(out)} repeated problem(s) (same question and answer) kept once."
        )
    from tracekit.schemas import polars_schema  # pandera: not for scoring

    return pl.DataFrame(out, schema=polars_schema("problems"))


class DatasetTask(Task):
    """A dataset of questions with reference answers, checked by a named checker (see the module doc).

    Presets subclass it and set ``columns``, ``checker`` and the hooks :meth:`reference` and
    :meth:`rows`; ``name = "dataset"`` is the generic one, configured by options.
    """

    name = "dataset"
    description = (
        "Any local dataset (.parquet, .jsonl, save_to_disk folder): a column mapping and a checker "
        "(exact, number, choice, math, regex)."
    )
    generated = False
    multi_answer_guard = False
    fields = ("answer",)
    field_types = {
        "answer": "str|int|list[str]",
        "checker": "str",
        "labels": "list[str]",
        "choices": "list[str]",
        "pattern": "str",
        "id": "str|int",
    }
    knobs = {
        "question": "column of the question text (default 'question')",
        "answer": "column of the reference answer (default 'answer'; a list: accepted answers)",
        "id": "column of a stable problem id (optional; kept in the problem's fields)",
        "split": "column naming each row's split (optional; only the config's split is loaded)",
        "choices": "column of the choices (texts, or {label, text}) for checker 'choice'",
        "checker": "exact | number | choice | math | regex (default exact)",
        "pattern": "regex: what a right answer matches whole; {answer} is the reference (default: the answer column)",
        "instruction": "text added after each question (choice questions ask for the letter by default)",
    }
    checker = "exact"
    layout = "dataset"
    example_question = "What is the capital of France?"

    def example(self) -> str:
        return self.example_question

    def make_item(self, rng, **knobs):
        raise ConfigError(f"task {self.name!r} loads an existing dataset: use load(path), not generate().")

    def check_knobs(self, knobs: dict[str, Any]) -> None:
        self._check_known(knobs)
        self.options(knobs)

    def options(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """The options ``knobs`` with defaults, checked (a :class:`ConfigError` names a bad one)."""
        opts = {"question": "question", "answer": "answer", "checker": self.checker, **knobs}
        for key in ("question", "answer", "id", "split", "choices", "pattern", "instruction"):
            if opts.get(key) is not None and not isinstance(opts[key], str):
                raise ConfigError(f"task {self.name!r}: option {key!r} must be a string, got {opts[key]!r}.")
        if opts["checker"] not in CHECKERS:
            err = unknown_name("checker", str(opts["checker"]), list(CHECKERS))
            raise ConfigError(f"task {self.name!r}: {err}\nHint: options: {{checker: number}}")
        if opts["checker"] == "choice" and not opts.get("choices") and not self.choices_built_in:
            msg = f"task {self.name!r}: checker 'choice' needs the choices column (options: {{choices: COLUMN}})."
            raise ConfigError(msg)
        if opts.get("pattern") is not None:
            from tracekit.tasks.checkers import compile_pattern

            try:
                compile_pattern(opts["pattern"].replace("{answer}", "x"))
            except Exception as exc:  # regex.error
                raise ConfigError(
                    f"task {self.name!r}: pattern {opts['pattern']!r} is not a regex: {exc}."
                ) from None
        return opts

    choices_built_in = False

    # -- hooks for presets ------------------------------------------------------------
    def reference(self, value: Any, row: dict[str, Any]) -> Any:
        """The reference answer from the answer column's ``value`` (presets: ``#### 42``, boxed)."""
        return value

    default_split = "test"
    hub_config: str | None = None

    def hub_split(self, split: str) -> str:
        """The Hub split read for ``split`` (where the data comes from the Hub)."""
        return split

    def require_columns(self, frame: pl.DataFrame, path, opts: dict[str, Any]) -> None:
        wanted = [opts["question"], opts["answer"]] + [
            opts[k] for k in ("id", "split", "choices") if opts.get(k)
        ]
        need_columns(frame, path, wanted, self.layout)

    def load(
        self,
        path: str | Path,
        *,
        split: str | None = None,
        options: dict[str, Any] | None = None,
        **knobs: Any,
    ) -> pl.DataFrame:
        """The problems of ``split`` in ``path``, as a ``problems`` table frame; ``options`` (or
        keywords) are the task's options (a config's ``options:``: column mapping, checker...)."""
        split = split or self.default_split
        knobs = {**(options or {}), **knobs}
        self._check_known(knobs)
        opts = self.options(knobs)
        frame = read_source(path, self.hub_split(split), self.hub_config)
        self.require_columns(frame, path, opts)
        if opts.get("split"):
            values = frame[opts["split"]].cast(pl.Utf8).str.to_lowercase()
            frame = frame.filter(values.replace_strict(SPLIT_ALIASES, default=values) == split)
        rows = [self.row(rec, opts, path, i) for i, rec in enumerate(frame.iter_rows(named=True))]
        return problems_frame(self.name, rows, split)

    def row(self, rec: dict[str, Any], opts: dict[str, Any], path, i: int) -> dict[str, Any]:
        """One loaded row: ``question``, ``answer`` (the reference as text) and ``meta`` (the fields)."""
        question = rec[opts["question"]]
        if not isinstance(question, str) or not question.strip():
            raise InputFormatError(
                f"{path}: row {i}: column {opts['question']!r} must be a non-empty string."
            )
        ref = self.reference(rec.get(opts["answer"]), rec)
        if isinstance(ref, (list, tuple)):
            ref = [str(r) for r in ref]
            if not ref:
                raise InputFormatError(f"{path}: row {i}: the list of accepted answers is empty.")
        elif ref is None or isinstance(ref, dict):
            raise InputFormatError(f"{path}: row {i}: column {opts['answer']!r} holds no answer ({ref!r}).")
        else:
            ref = str(ref)
        meta: dict[str, Any] = {"answer": ref}
        if type(self).checker != opts["checker"] or self.name == "dataset":
            meta["checker"] = opts["checker"]
        if opts.get("id"):
            meta["id"] = rec[opts["id"]] if isinstance(rec[opts["id"]], int) else str(rec[opts["id"]])
        if opts.get("choices"):
            labels, texts = _choices(rec[opts["choices"]], path, i)
            meta["answer"] = _label_of(ref, labels, texts, path, i)
            meta["labels"], meta["choices"] = labels, texts
            listed = " ".join(f"({lab}) {txt}" for lab, txt in zip(labels, texts))
            question = f"{question}\nChoices: {listed}\n{opts.get('instruction') or CHOICE_INSTRUCTION}"
        elif opts.get("instruction"):
            question = f"{question}\n{opts['instruction']}"
        if opts["checker"] == "regex":
            refs = meta["answer"] if isinstance(meta["answer"], list) else [meta["answer"]]
            if opts.get("pattern"):
                import regex

                alts = "|".join(f"(?:{regex.escape(r)})" for r in refs)
                meta["pattern"] = opts["pattern"].replace("{answer}", f"(?:{alts})")
            else:
                meta["pattern"] = "|".join(f"(?:{r})" for r in refs)
            from tracekit.tasks.checkers import compile_pattern

            try:
                compile_pattern(meta["pattern"])
            except Exception as exc:  # regex.error
                raise InputFormatError(
                    f"{path}: row {i}: {meta['pattern']!r} is not a regex: {exc}."
                ) from None
        answer_text = meta["answer"] if isinstance(meta["answer"], str) else meta["answer"][0]
        return {"question": question, "answer": answer_text, "meta": meta}

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        name = meta.get("checker", self.checker)
        checker = CHECKERS.get(name)
        if checker is None:
            return Check(False, "unknown_checker", answer)
        return checker(answer, meta)

    def wrong_answer(self, answer: str, meta: dict[str, Any]) -> str | None:
        labels = meta.get("labels")
        if labels:
            others = [lab for lab in labels if lab != meta["answer"]]
            return others[0] if others else None
        return super().wrong_answer(answer, meta)


def _choices(value: Any, path, i: int) -> tuple[list[str], list[str]]:
    """(labels, texts) of a choices cell: a list of texts, or ``{label: [...], text: [...]}``."""
    if isinstance(value, dict) and "text" in value:
        texts = [str(t) for t in value["text"]]
        labels = [str(lab) for lab in value.get("label") or LETTERS[: len(texts)]]
    elif isinstance(value, (list, tuple)):
        texts = [str(t) for t in value]
        labels = list(LETTERS[: len(texts)])
    else:
        raise InputFormatError(
            f"{path}: row {i}: choices must be a list of texts or {{label, text}}, got {value!r}."
        )
    if not texts or len(texts) > len(LETTERS) or len(labels) != len(texts):
        raise InputFormatError(f"{path}: row {i}: {len(texts)} choice(s) with {len(labels)} label(s).")
    return labels, texts


def _label_of(ref: Any, labels: list[str], texts: list[str], path, i: int) -> str:
    """The label of the right choice, from a label, a 0-based index or the choice text."""
    if isinstance(ref, list):
        ref = ref[0]
    ref = str(ref).strip()
    upper = {lab.upper(): lab for lab in labels}
    if ref.upper() in upper:
        return upper[ref.upper()]
    if ref.isdigit() and int(ref) < len(labels):
        return labels[int(ref)]
    if ref in texts:
        return labels[texts.index(ref)]
    raise InputFormatError(f"{path}: row {i}: answer {ref!r} is none of the labels {labels} or choice texts.")
