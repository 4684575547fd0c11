"""Acronym: pick words from a list, in order, whose first letters spell an English word."""

from __future__ import annotations

from typing import Any

from tracekit.tasks.base import Check, Task
from tracekit.tasks.words import check_word, common_words, words_by_initial


def _is_subsequence(word: str, initials: list[str]) -> bool:
    it = iter(initials)
    return all(ch in it for ch in word)


class Acronym(Task):
    name = "acronym"
    fields = ("words", "length")
    field_types = {"words": "list[str]", "length": "int"}
    description = (
        "Choose words from the list, keeping their order, so that their first letters spell an English word."
    )
    knobs = {"length": "acronym length (4 or 5; default 4)", "extra": "distractor words (default 3)"}

    def make_item(self, rng, length: int = 4, extra: int = 3) -> dict[str, Any]:
        by_initial = words_by_initial()
        targets = [w for w in common_words(int(length)) if all(c in by_initial for c in w)]
        target = rng.choice(targets)
        chosen = [rng.choice(by_initial[c]) for c in target]
        letters = sorted(by_initial)
        distractors = [rng.choice(by_initial[rng.choice(letters)]) for _ in range(int(extra))]
        words = chosen[:]
        for d in distractors:
            words.insert(rng.randint(0, len(words)), d)
        question = (
            f"Here is a list of words: {', '.join(words)}. Choose {length} of them, keeping their order, so "
            f"that their first letters spell an English word of {length} letters. "
            "Give that word in <answer> </answer> tags."
        )
        return {"question": question, "answer": target, "words": words, "length": int(length)}

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        initials = [w[0].lower() for w in meta["words"]]
        return check_word(answer, meta, lambda word: _is_subsequence(word, initials))
