"""Answer and verdict extraction, shared by every stage.

The data filter, SFT validation, the GRPO reward and evaluation all call these two
functions, so that a response is read the same way everywhere:

* the **final answer** is the content of the last ``<answer>...</answer>`` that comes
  after the last ``</think>`` (answers inside ``<sample>`` blocks of a trace do not count);
  tags are matched exactly (lower case), as trainers' format rewards do;
* a **verdict** is the first word after a ``<verdict>`` tag: ``correct`` or ``incorrect``,
  in any case, with whitespace, markdown emphasis or trailing text around it.

Model text is only ever matched with linear-time regular expressions; it is never
evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # polars is imported where it is used, so this module stays light
    import polars as pl

# Inputs longer than this are cut from the front before matching: the final answer is at the end.
MAX_SCAN_CHARS = 1_000_000

_THINK_CLOSE = "</think>"
_OPEN, _CLOSE = "<answer>", "</answer>"
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# ASCII-only classes, so that the polars (Rust regex) twin below reads text identically.
_WS = r"[ \t\r\n]"
_VERDICT_OPEN = rf"<{_WS}*verdict{_WS}*>"
_VERDICT_LEAD = r"[ \t\r\n*_`'\"\[\(:]*"
_VERDICT_OPEN_RE = re.compile(_VERDICT_OPEN, re.IGNORECASE | re.ASCII)
_VERDICT_WORD_RE = re.compile(_VERDICT_LEAD + r"([A-Za-z]+)")
_VERDICT_WORDS = {"correct": True, "incorrect": False}


def all_answers(text: str) -> list[str]:
    """Every ``<answer>`` span of ``text`` in order, stripped (for skill analytics).

    Examples
    --------
    >>> all_answers("<answer> 3 </answer> then <answer>4</answer>")
    ['3', '4']
    """
    if len(text) > MAX_SCAN_CHARS:
        text = text[-MAX_SCAN_CHARS:]
    return [m.strip() for m in _ANSWER_RE.findall(text)]


def final_region_start(text: str) -> int:
    """Where the part of a response that may hold its final answer starts: after the last
    ``</think>`` (the whole text when there is none), within the last :data:`MAX_SCAN_CHARS`.

    >>> text = "<think><answer>1</answer></think> <answer>2</answer>"
    >>> text[final_region_start(text):]
    ' <answer>2</answer>'
    """
    low = max(0, len(text) - MAX_SCAN_CHARS)  # searches start here instead of copying the tail
    floor = text.rfind(_THINK_CLOSE, low)
    return low if floor < 0 else floor + len(_THINK_CLOSE)


def final_answer(text: str | None) -> str | None:
    """The final answer of a response, or ``None`` when it has none.

    Examples
    --------
    >>> final_answer("<think><sample><answer>1</answer></sample></think> So: <answer>\\n 2 \\n</answer>")
    '2'
    >>> final_answer("<think><answer>1</answer></think> no tag after thinking") is None
    True
    >>> final_answer("I think it is 7.") is None
    True
    """
    if not text:
        return None
    # final_region_start(text), spelt out: every line `tracekit score` reads goes through here
    low = len(text) - MAX_SCAN_CHARS
    low = 0 if low < 0 else low
    floor = text.rfind(_THINK_CLOSE, low)
    floor = low if floor < 0 else floor + 8  # len(_THINK_CLOSE)
    # the last closing tag after </think>, then the last opening tag before it (C-speed scans)
    end = text.rfind(_CLOSE, floor)
    if end < 0:
        return None
    start = text.rfind(_OPEN, floor, end)
    if start < 0:
        return None
    return text[start + len(_OPEN) : end].strip()


@dataclass(frozen=True, slots=True)
class Verdict:
    """A parsed self-verification verdict.

    ``value`` is ``True`` (the reflection says the sample is correct), ``False``
    (incorrect) or ``None`` (no usable verdict; ``reason`` says why: ``missing``,
    ``unrecognized`` or ``contradictory``).
    """

    value: bool | None
    reason: str


def parse_verdict(text: str | None) -> Verdict:
    """Parse the ``<verdict>`` of a reflection.

    The closing tag is not required (weak models often garble it); every opening tag
    counts, and tags that disagree make the verdict ``contradictory``.

    Examples
    --------
    >>> parse_verdict("... so <verdict> **Incorrect** </verdict>")
    Verdict(value=False, reason='ok')
    >>> parse_verdict("<verdict>correct, the sum is 24</verdict")
    Verdict(value=True, reason='ok')
    >>> parse_verdict("<verdict>Correct</verdict> wait <verdict>Incorrect</verdict>")
    Verdict(value=None, reason='contradictory')
    >>> parse_verdict("The answer looks right.")
    Verdict(value=None, reason='missing')
    >>> parse_verdict("<verdict>Not correct</verdict>")
    Verdict(value=None, reason='unrecognized')
    """
    if not text:
        return Verdict(None, "missing")
    if len(text) > MAX_SCAN_CHARS:
        text = text[-MAX_SCAN_CHARS:]
    seen: set[bool] = set()
    tags = 0
    for match in _VERDICT_OPEN_RE.finditer(text):
        tags += 1
        word = _VERDICT_WORD_RE.match(text, match.end())
        value = _VERDICT_WORDS.get(word.group(1).lower()) if word else None
        if value is None:
            return Verdict(None, "unrecognized")
        seen.add(value)
    if tags == 0:
        return Verdict(None, "missing")
    if len(seen) > 1:
        return Verdict(None, "contradictory")
    return Verdict(seen.pop(), "ok")


def parse_verdicts(texts: pl.Series) -> pl.DataFrame:
    """Vectorised :func:`parse_verdict` over a polars string column.

    Returns a frame with ``verdict`` (bool, null when unusable) and ``verdict_reason``;
    row for row the same result as :func:`parse_verdict` (a property test checks it).
    Reflections almost always hold one tag, so the first word and the number of tags
    are read for every row and the list of every tag's word only where there are several.
    """
    import polars as pl

    texts = texts.cast(pl.Utf8).fill_null("")
    if len(texts) and (texts.str.len_bytes().max() or 0) > MAX_SCAN_CHARS:  # bytes >= characters
        texts = texts.str.slice(-MAX_SCAN_CHARS)
    frame = pl.DataFrame({"t": texts}).with_columns(
        n_tags=pl.col("t").str.count_matches(f"(?i){_VERDICT_OPEN}"),
        first=pl.col("t").str.extract(f"(?i){_VERDICT_OPEN}{_VERDICT_LEAD}([A-Za-z]*)", 1).str.to_lowercase(),
    )
    known = ["correct", "incorrect"]
    multi = frame["n_tags"] > 1
    several = (
        frame.filter(multi)
        .select(
            w=pl.col("t")
            .str.extract_all(f"(?i){_VERDICT_OPEN}{_VERDICT_LEAD}[A-Za-z]*")
            .list.eval(pl.element().str.extract(r"([A-Za-z]*)$", 1).str.to_lowercase())
        )
        .select(
            pl.when(pl.col("w").list.eval(~pl.element().is_in(known)).list.any())
            .then(pl.lit("unrecognized"))
            .when(pl.col("w").list.n_unique() > 1)
            .then(pl.lit("contradictory"))
            .otherwise(pl.lit("ok"))
        )
        .to_series()
    )
    multi_reason = pl.repeat(None, len(frame), dtype=pl.Utf8, eager=True).alias("multi")
    if several.len():
        multi_reason = multi_reason.scatter(multi.arg_true(), several)
    frame = frame.with_columns(multi_reason)
    word_ok = pl.col("first").is_in(known)
    reason = (
        pl.when(pl.col("n_tags") == 0)
        .then(pl.lit("missing"))
        .when(pl.col("n_tags") > 1)
        .then(pl.col("multi"))
        .when(word_ok)
        .then(pl.lit("ok"))
        .otherwise(pl.lit("unrecognized"))
    )
    return frame.select(
        verdict=pl.when(reason == "ok").then(pl.col("first") == "correct").otherwise(None),
        verdict_reason=reason,
    )
