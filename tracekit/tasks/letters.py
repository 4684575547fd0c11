"""Letter countdown: make an English word of the given length from a bag of letters."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tracekit.tasks.base import Check, Task
from tracekit.tasks.words import check_word, common_words

_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


class LetterCountdown(Task):
    name = "letter_countdown"
    fields = ("letters", "length")
    field_types = {"letters": "list[str]", "length": "int"}
    description = (
        "Form a valid English word of the given length from the given letters (each used at most once)."
    )
    knobs = {"length": "word length (4 or 5; default 4)", "extra": "distractor letters added (default 3)"}

    def make_item(self, rng, length: int = 4, extra: int = 3) -> dict[str, Any]:
        from tracekit.errors import ConfigError

        words = common_words(int(length))
        if not words:
            raise ConfigError(f"letter_countdown: no words of length {length}")
        word = rng.choice(words)
        letters = list(word) + [rng.choice(_ALPHABET) for _ in range(int(extra))]
        rng.shuffle(letters)
        question = (
            f"Using only the letters {', '.join(letters)} (each at most once), write an English word "
            f"of exactly {length} letters. Give the word in <answer> </answer> tags."
        )
        return {"question": question, "answer": word, "letters": letters, "length": int(length)}

    def dedup_key(self, item: dict[str, Any]) -> str:
        return f"{''.join(sorted(item['letters']))}|{item['length']}"

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        have = Counter(meta["letters"])
        return check_word(answer, meta, lambda word: all(n <= have[c] for c, n in Counter(word).items()))
