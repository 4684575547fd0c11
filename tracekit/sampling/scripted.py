"""A deterministic scripted backend: for tests and ``--dry-run`` (never for real data)."""

from __future__ import annotations

import random
from collections.abc import Callable

from tracekit.ids import seed_for
from tracekit.sampling.base import Completion, Request


class ScriptedSampler:
    """Answers with ``respond(messages, rng) -> str``; the rng is seeded by the request seed and index.

    A continuation request (``Request.prefix``) passes the partial assistant turn as the
    last message (``{"role": "assistant", "content": prefix}``); the responder returns the
    continuation only. Tokens are whitespace-separated words (``max_tokens`` cuts them).

    The default responder echoes a fixed text with an ``<answer>``; tests pass their own.
    """

    def __init__(
        self, respond: Callable | None = None, model_id: str = "scripted", delay: float = 0.0
    ) -> None:
        self.respond = respond or (
            lambda messages, rng: f"I think it is {rng.randint(1, 9)}.\n<answer>{rng.randint(1, 9)}</answer>"
        )
        self.model_id = model_id
        self.model_revision = None
        self.source = "scripted"  # recorded on every sample it makes
        self.calls = 0
        self.delay = delay  # seconds per generate() call (to test interruption)

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        import time

        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = []
        for req in requests:
            outs = []
            messages = list(req.messages)
            if req.prefix:  # a continuation: the responder sees the partial assistant turn last
                messages.append({"role": "assistant", "content": req.prefix})
            for i in range(req.n):
                rng = random.Random(seed_for(req.seed, i))
                text = self.respond(messages, rng)
                words = text.split()
                if len(words) > req.params.max_tokens:
                    outs.append(
                        Completion(" ".join(words[: req.params.max_tokens]), "length", req.params.max_tokens)
                    )
                else:
                    outs.append(Completion(text, "stop", len(words)))
            out.append(outs)
        return out
