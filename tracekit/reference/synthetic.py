"""A synthetic raw table in the SkillFactory reference layout, for demos, tests and benchmarks."""

from __future__ import annotations

import polars as pl


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
    first_question: int = 0,
) -> pl.DataFrame:
    """A synthetic raw table in the reference layout (for demos, tests and benchmarks).

    Questions are small "reach the target" arithmetic puzzles; about half the responses
    are correct; reflections agree with the truth about 85% of the time, and some have
    no usable verdict. Vectorised, so millions of rows take seconds. Deterministic in
    ``seed``; questions are numbered from ``first_question`` (so files written piece by
    piece, with their own seeds, hold distinct questions). ``text`` pads responses and
    reflections with one repeated sentence (``"repeated"``: compresses about 50x) or with
    each row's own window of a random stream of English words (``"words"``: compresses
    about 3x, like model text).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = n_questions * len(variants) * samples_per_variant
    q = np.repeat(np.arange(n_questions), len(variants) * samples_per_variant)  # (offset below)
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
            "q": q + first_question,
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
