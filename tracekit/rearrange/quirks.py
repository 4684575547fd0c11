"""The reference script's filter quirks, as explicit opt-ins (never defaults).

The SkillFactory reference script reads verdicts, drops reflections and groups problems
in ways tracekit does not by default. To reproduce its output, each quirk can be turned
on by itself (``RearrangeConfig`` fields):

* ``verdict_first_tag``: a verdict is read only when the text holds both ``<verdict>``
  and ``</verdict>``, from the text between the first ``<verdict>`` and the next
  ``</verdict>``, lower-cased and stripped, which must then be exactly ``correct`` or
  ``incorrect``; any later tag is ignored (tracekit reads every tag, accepts a missing
  closing tag and markdown around the word, and rejects disagreeing tags);
* ``drop_idea_fast``: a reflection whose text contains ``idea`` or ``fast`` in any case
  is dropped (counted as ``reflections/idea_or_fast``);
* ``group_by_question``: problems with the same question text are one problem (the
  reference groups raw rows by question alone; tracekit's problem id also hashes the
  task and the answer). The merged problem keeps the smallest of their ids.

Examples
--------
>>> import polars as pl
>>> texts = pl.Series(["<verdict> Correct </verdict> <verdict>Incorrect</verdict>", "<verdict>**Correct**</verdict>"])
>>> reference_verdicts(texts)["verdict"].to_list()
[True, None]
>>> mentions_idea_or_fast(pl.Series(["A good IDEA", "slow and careful"])).to_list()
[True, False]
"""

from __future__ import annotations

import polars as pl

# the characters Python's str.strip() removes (the reference strips with it): every c with c.isspace()
_PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def reference_verdicts(texts: pl.Series) -> pl.DataFrame:
    """``verdict`` (bool or null) and ``verdict_reason`` of every reflection text, read the reference's way."""
    text = texts.cast(pl.Utf8).fill_null("")
    frame = pl.DataFrame({"text": text})
    word = (
        pl.col("text")
        .str.split("<verdict>")
        .list.get(1, null_on_oob=True)
        .str.split("</verdict>")
        .list.first()
        .str.to_lowercase()
        .str.strip_chars(_PY_WHITESPACE)
    )
    tagged = pl.col("text").str.contains("<verdict>", literal=True) & pl.col("text").str.contains(
        "</verdict>", literal=True
    )
    verdict = (
        pl.when(tagged & (word == "correct")).then(True).when(tagged & (word == "incorrect")).then(False)
    )
    reason = pl.when(~tagged).then(pl.lit("missing")).when(verdict.is_null()).then(pl.lit("unrecognized"))
    return frame.select(
        verdict=verdict.otherwise(None).cast(pl.Boolean), verdict_reason=reason.otherwise(pl.lit("ok"))
    )


def mentions_idea_or_fast(texts: pl.Series) -> pl.Series:
    """Whether each text contains ``idea`` or ``fast`` in any case (the reference drops those reflections)."""
    low = texts.cast(pl.Utf8).fill_null("").str.to_lowercase()
    return low.str.contains("idea", literal=True) | low.str.contains("fast", literal=True)


def question_groups(problems: pl.DataFrame) -> pl.DataFrame:
    """``problem_id -> group_id``: problems with the same ``question`` share the smallest of their ids."""
    return problems.select("problem_id", group_id=pl.col("problem_id").min().over("question")).unique(
        "problem_id"
    )
