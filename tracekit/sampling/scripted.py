"""A deterministic scripted backend: for tests and ``--dry-run`` (never for real data).

:func:`dry_run_responder` makes canned but well-formed data that walks every stage: answers
from the task's own oracle, right about half the time (the wrong ones checked wrong by the
task's verifier), and reflections whose verdict agrees with the verifier most of the time.
Rows it makes are marked ``source = "scripted"``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import polars as pl

from tracekit.ids import seed_for
from tracekit.prompts import parse_reflect_user_turn
from tracekit.sampling.base import Completion, Request
from tracekit.tasks import get_task


class ScriptedSampler:
    """Answers with ``respond(messages, rng) -> str``; the rng is seeded by the request seed and index.

    The default responder answers a random digit in ``<answer>`` tags; tests pass their own,
    ``--dry-run`` passes :func:`dry_run_responder`. A response longer than ``max_tokens``
    words is cut there (``finish_reason = "length"``).

    A continuation request (``Request.prefix``) passes the partial assistant turn as the
    last message (``{"role": "assistant", "content": prefix}``); the responder returns the
    continuation only. Tokens are whitespace-separated words (``max_tokens`` cuts them).
    """

    def __init__(self, respond: Callable | None = None, model_id: str = "scripted") -> None:
        self.respond = respond or (
            lambda messages, rng: f"I think it is {rng.randint(1, 9)}.\n<answer>{rng.randint(1, 9)}</answer>"
        )
        self.model_id = model_id
        self.model_revision = None
        self.source = "scripted"  # recorded on every sample it makes
        self.batch_invariant = True  # each text is a function of its own request

    def close(self) -> None:
        """Nothing to free."""

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
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


def dry_run_responder(problems: pl.DataFrame, *, right: float = 0.5, agree: float = 0.8) -> Callable:
    """A responder for ``problems`` (a ``problems`` frame) that walks every stage with canned data.

    A sampling request gets the task's oracle answer with probability ``right``, else an
    answer the task's verifier rejects (:meth:`~tracekit.tasks.Task.wrong_answer`); a
    reflection request gets the verifier's verdict on the proposed response with probability
    ``agree``, else the opposite one.

    Examples
    --------
    >>> from tracekit.prompts import VARIANTS, reflect_messages, sample_messages
    >>> problems = get_task("multiplication").generate(1, seed=0)
    >>> respond = dry_run_responder(problems, right=1.0, agree=1.0)
    >>> question, answer = problems.row(0)[2:4]
    >>> reply = respond(list(sample_messages(question, VARIANTS["plain"], [])), random.Random(0))
    >>> reply.endswith(f"<answer>{answer}</answer>")
    True
    >>> respond(list(reflect_messages(question, reply, [])), random.Random(0)).endswith("<verdict>Correct</verdict>")
    True
    """
    known = {
        q: (get_task(t), a, json.loads(m))
        for q, t, a, m in problems.select("question", "task", "answer", "meta").iter_rows()
    }

    def problem_of(question_turn: str):
        if question_turn in known:
            return known[question_turn]
        at = question_turn.rfind("\n\n")  # a sampling turn: the question, a blank line, the instruction
        while at > 0:
            if question_turn[:at] in known:
                return known[question_turn[:at]]
            at = question_turn.rfind("\n\n", 0, at)
        msg = f"dry run: a request for a problem this run does not have: {question_turn[:80]!r}"
        raise ValueError(msg)

    def respond(messages, rng: random.Random) -> str:
        content = messages[-1]["content"]
        reflect = parse_reflect_user_turn(content)
        if reflect is not None:
            task, _, meta = problem_of(reflect[0])
            truth = task.score(reflect[1], meta).is_correct
            says = truth if rng.random() < agree else not truth
            verdict = "Correct" if says else "Incorrect"
            return (
                f"(dry run) Checking the proposed answer against the question.\n<verdict>{verdict}</verdict>"
            )
        task, answer, meta = problem_of(content)
        shown = answer if rng.random() < right else (task.wrong_answer(answer, meta) or answer)
        return f"(dry run) {task.demo_solution(meta, shown)}\n<answer>{shown}</answer>"

    return respond
