"""Reading a raw file in the SkillFactory reference layout, with every check that names a line.

A raw file is parquet or jsonl with the columns of :data:`RAW_COLUMNS`. :class:`RawFile`
streams it in batches of checked frames (flat memory for parquet; a jsonl file is checked line
by line, then parsed once), each with a ``row`` column (0-based position among the file's rows). Whatever is
wrong is an :class:`~tracekit.errors.InputFormatError` that says where, as a text editor
would: ``line N`` of a jsonl file (blank lines counted), ``row N`` of a parquet file (from 1).

* every jsonl line is checked first, in Python (the fast reader does not say where, and keeps
  what Python refuses): JSON that does not parse, bytes that are not UTF-8, a key given twice in
  one object, a lone surrogate (``\\ud800``) are errors naming the line; ``\\u0000`` is kept, as in
  a parquet file; a file without a row is an error;
* answers are read as written: JSON numbers keep their text (``416``, not ``416.0``), and a
  float column of a parquet file (pandas writes integers with gaps that way) loses ``.0``
  on whole numbers; a row without a question or an answer is an error;
* the reflection column is one list per row (it belongs to the row's first response) or one
  list per response; a jsonl file that mixes the two is an error, not a silent conversion.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tracekit.errors import InputFormatError

RESPONSES = "model_responses__mutated_prompts"
IS_CORRECT = "model_responses__mutated_prompts__eval_is_correct"
EXTRACTED = "model_responses__mutated_prompts__eval_extracted_answers"
REFLECTIONS = "model_responses__mutated_prompts_reflection"
RAW_COLUMNS = ("question", "answer", "prompt_variant", RESPONSES, IS_CORRECT, EXTRACTED, REFLECTIONS)
BATCH_ROWS = 25_000
LAYOUT_HINT = f"the reference layout has the columns {list(RAW_COLUMNS)}."
_NESTED = re.compile(r"^\s*\[\s*\[")  # a JSON list whose first element is a list
_FLAT = re.compile(r'^\s*\[\s*(?:"|null)')


class RawFile:
    """A raw file in the reference layout: ``rows`` (how many), ``batches()`` (checked frames)
    and ``where(row)`` (``"line N"`` or ``"row N"`` of a 0-based row index)."""

    def __init__(self, path: str | Path) -> None:
        from tracekit.places import check_input_file

        self.path = check_input_file(path, "import: raw file", "give a .parquet or .jsonl file.")
        self.kind = self.path.suffix.lower()
        if self.kind not in (".parquet", ".jsonl", ".json", ".ndjson"):
            msg = f"{self.path}: unsupported file type {self.kind!r}.\nHint: give a .parquet or .jsonl file."
            raise InputFormatError(msg)
        self._lines: list[int] | None = None  # jsonl: the line of each row (computed on the error path)
        self._frame: pl.DataFrame | None = None
        if self.kind == ".parquet":
            import pyarrow.parquet as pq

            try:
                # buffered reads stream each column chunk page by page: memory does not grow
                # with the row groups' size (one group may hold a whole file)
                self._parquet = pq.ParquetFile(self.path, buffer_size=1 << 20, pre_buffer=False)
            except Exception as exc:  # pyarrow raises many types for unreadable files
                raise InputFormatError(
                    f"cannot read {self.path} as parquet: {exc}\nHint: {LAYOUT_HINT}"
                ) from None
            _check_columns(self.path, set(self._parquet.schema_arrow.names))
            self.rows = self._parquet.metadata.num_rows
            if not self.rows:
                msg = f"{self.path} holds no rows (its columns are right, but it is empty)."
                raise InputFormatError(msg + "\nHint: give a file with at least one row.")
        else:
            self._frame = self._read_jsonl()
            self.rows = self._frame.height

    # ------------------------------------------------------------------ where
    def where(self, row: int) -> str:
        """Where 0-based row ``row`` is, in the file's own terms."""
        if self.kind == ".parquet":
            return f"{self.path}: row {row + 1}"
        if self._lines is None:
            with open(self.path, "rb") as fh:
                self._lines = [n for n, line in enumerate(fh, start=1) if line.strip()]
        line = self._lines[row] if row < len(self._lines) else row + 1
        return f"{self.path}: line {line}"

    # ------------------------------------------------------------------ reading
    def _read_jsonl(self) -> pl.DataFrame:
        self._check_lines()  # Python's reader says where; polars' says neither where nor all of what
        overrides = {"answer": pl.String, REFLECTIONS: pl.String}  # as written; decoded below
        try:
            frame = pl.read_ndjson(self.path, infer_schema_length=None, schema_overrides=overrides)
        except Exception as exc:  # every line is an object of valid JSON: say what polars says, on one line
            reason = " ".join(str(exc).split())[:300]
            msg = f"cannot read {self.path}: {reason}"
            raise InputFormatError(
                msg + "\nHint: each line is one JSON object of the reference layout."
            ) from None
        _check_columns(self.path, set(frame.columns))
        return frame.select(RAW_COLUMNS)

    def _check_lines(self) -> None:
        """Every line is UTF-8 text of one JSON object whose keys are all different and whose strings
        are Unicode text (JSON allows a lone surrogate such as ``\\ud800``; UTF-8 cannot hold one); the
        file holds at least one such line. The first line that is not is an error naming it."""
        rows = 0
        with open(self.path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                problem = _line_problem(raw)
                if problem is not None:
                    raise InputFormatError(f"{self.path}: line {number}: {problem}")
                rows += 1
        if not rows:
            msg = f"{self.path} holds no rows (it is empty or has only blank lines)."
            raise InputFormatError(msg + "\nHint: give a file with one JSON object per line.")

    def batches(self) -> Iterator[pl.DataFrame]:
        """Checked frames of at most :data:`BATCH_ROWS` rows with a ``row`` column, in file order."""
        first = 0
        if self._frame is not None:
            frame = self._reflections_decoded(self._frame)
            for start in range(0, frame.height, BATCH_ROWS):
                yield self._checked(frame.slice(start, BATCH_ROWS), start)
            return
        # pyarrow streams page by page, so memory stays bounded even for one huge row group
        try:
            for batch in self._parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(RAW_COLUMNS)):
                frame = pl.from_arrow(batch)
                yield self._checked(frame, first)
                first += frame.height
        except InputFormatError:
            raise
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputFormatError(f"cannot read {self.path}: {exc}\nHint: {LAYOUT_HINT}") from None

    def _reflections_decoded(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The reflection column of a jsonl file (read as JSON text) decoded, all rows of one shape."""
        text = frame[REFLECTIONS]
        nested = text.str.contains(_NESTED.pattern).fill_null(False)
        flat = text.str.contains(_FLAT.pattern).fill_null(False)
        if nested.any() and flat.any():
            odd, usual = (nested, "flat") if nested.sum() <= flat.sum() else (flat, "nested")
            row = odd.arg_true()[0]
            msg = (
                f"{self.where(row)}: column {REFLECTIONS!r} is a {'nested' if usual == 'flat' else 'flat'} list "
                f"while the file's other rows hold {usual} ones.\nHint: use one shape in the whole file: one list "
                "of reflections per row (for its first response) or one list per response."
            )
            raise InputFormatError(msg)
        dtype = pl.List(pl.List(pl.String)) if nested.any() else pl.List(pl.String)
        try:
            return frame.with_columns(pl.col(REFLECTIONS).str.json_decode(dtype))
        except pl.exceptions.PolarsError as exc:
            msg = f"{self.path}: column {REFLECTIONS!r} holds values that are not lists of strings ({exc})."
            raise InputFormatError(msg + "\nHint: reflections are JSON lists of strings.") from None

    def _checked(self, frame: pl.DataFrame, first: int) -> pl.DataFrame:
        frame = _answers_as_text(frame.with_row_index("row", offset=first), self.path)
        return _check_types(self, frame)


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _line_problem(raw: bytes) -> str | None:
    """What is wrong with one jsonl line (ending with its hint), or ``None``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
        return f"not UTF-8 text ({byte}).\nHint: save the file as UTF-8."
    try:
        record = json.loads(text, object_pairs_hook=_distinct_keys)
    except RecursionError:
        return "nested too deeply to read.\nHint: each line is one JSON object of the reference layout."
    except _RepeatedKey as exc:
        hint = "keep one of them (JSON readers differ in which they use)"
        return f"the key {exc.key!r} appears twice in one object.\nHint: {hint}."
    except ValueError as exc:
        return f"not valid JSON ({exc}).\nHint: each line is one JSON object; fix or remove that line."
    if not isinstance(record, dict):
        kind = type(record).__name__
        return f"expected a JSON object, got {kind}.\nHint: each line is one JSON object of the reference layout."
    if _SURROGATE.search(raw):  # only an escape can write a surrogate: check such lines whole
        try:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                f"a string holds a lone surrogate ({exc.object[exc.start]!a}), which is not Unicode text."
                "\nHint: write the character itself, or a surrogate pair (\\ud83d\\ude00)."
            )
    return None


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _distinct_keys(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return out


def _check_columns(path: Path, names: set[str]) -> None:
    missing = [c for c in RAW_COLUMNS if c not in names]
    if missing:
        msg = (
            f"{path} is not in the SkillFactory reference layout: missing column(s) {missing}; "
            f"found {sorted(names)}.\nHint: {LAYOUT_HINT}"
        )
        raise InputFormatError(msg)


def _answers_as_text(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """The ``answer`` column as text: whole floats without ``.0`` (``416.0`` -> ``416``)."""
    dtype = frame.schema["answer"]
    if dtype == pl.String:
        return frame
    if dtype.is_integer() or dtype == pl.Null:
        return frame.with_columns(pl.col("answer").cast(pl.String))
    if dtype.is_float():
        whole = pl.col("answer").is_finite() & (pl.col("answer") == pl.col("answer").round(0))
        text = pl.when(whole).then(pl.col("answer").cast(pl.Int64, strict=False).cast(pl.String))
        return frame.with_columns(text.otherwise(pl.col("answer").cast(pl.String)).alias("answer"))
    msg = f"{path}: column 'answer' has type {dtype}, expected text or numbers."
    raise InputFormatError(msg + "\nHint: the answer is the problem's ground truth, e.g. '770'.")


def _check_types(raw: RawFile, frame: pl.DataFrame) -> pl.DataFrame:
    expected = {
        "question": pl.Utf8,
        "answer": pl.Utf8,
        "prompt_variant": pl.Utf8,
        RESPONSES: pl.List(pl.Utf8),
        IS_CORRECT: pl.List(pl.Boolean),
        EXTRACTED: pl.List(pl.Utf8),
    }
    for col, dtype in expected.items():
        got = frame.schema[col]
        if got == pl.Null or (isinstance(got, pl.List) and got.inner == pl.Null):
            frame = frame.with_columns(pl.col(col).cast(dtype))
        elif got != dtype:
            msg = f"{raw.path}: column {col!r} has type {got}, expected {dtype}."
            raise InputFormatError(msg + f"\nHint: {LAYOUT_HINT}")
    refl = frame.schema[REFLECTIONS]
    if refl == pl.Null or (isinstance(refl, pl.List) and refl.inner == pl.Null):
        frame = frame.with_columns(pl.col(REFLECTIONS).cast(pl.List(pl.Utf8)))
    elif refl not in (pl.List(pl.Utf8), pl.List(pl.List(pl.Utf8))):
        msg = f"{raw.path}: column {REFLECTIONS!r} has type {refl}, expected list[str] or list[list[str]]."
        raise InputFormatError(msg + "\nHint: one list of reflections per row, or one per response.")
    lengths = frame.select(
        "row", r=pl.col(RESPONSES).list.len(), c=pl.col(IS_CORRECT).list.len(), e=pl.col(EXTRACTED).list.len()
    )
    bad = lengths.filter((pl.col("r") != pl.col("c")) | (pl.col("r") != pl.col("e")))
    if bad.height:
        msg = (
            f"{raw.where(bad['row'][0])}: the lists {RESPONSES!r}, {IS_CORRECT!r} and {EXTRACTED!r} have "
            f"different lengths ({bad['r'][0]}, {bad['c'][0]}, {bad['e'][0]}).\n"
            "Hint: each response needs its correctness and its extracted answer, in the same order."
        )
        raise InputFormatError(msg)
    for column in ("question", "answer"):
        empty = frame.filter(pl.col(column).is_null() | (pl.col(column).str.strip_chars() == ""))
        if empty.height:
            msg = f"{raw.where(empty['row'][0])}: empty {column!r}"
            more = f" ({empty.height} rows of this batch)" if empty.height > 1 else ""
            raise InputFormatError(
                f"{msg}{more}.\nHint: every row needs a question and its answer (the ground truth)."
            )
    return frame
