"""Budget forcing: make a model think longer by continuing its own response after a trigger.

A response generated with the first budget (``params.max_tokens``) is cut where the model
stopped thinking (before the last ``</think>``, else before its final ``<answer>``, else at
its end), a trigger is appended (SkillFactory-style models: a new ``<sample>``; s1-style:
``Wait``) and the backend continues that partial assistant turn (``Request.prefix``) with
what is left of the total budget. This repeats ``forces`` times. The total budget bounds
every token generated for the response: the first generation, the tails cut away and the
continuations (when a backend does not report token counts, a continuation is charged its
whole allowance, so the bound still holds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tracekit.evaluate.config import BudgetForcing
from tracekit.ids import seed_for
from tracekit.sampling.base import Request, Sampler, SamplingParams


@dataclass(frozen=True)
class Start:
    """A first response to force: its prompt, decoding settings, seed and what it generated."""

    messages: tuple[dict[str, str], ...]
    params: SamplingParams
    seed: int
    text: str
    finish_reason: str
    n_tokens: int | None


@dataclass(frozen=True)
class Forced:
    """A forced response: the whole text, how it ended, tokens generated in all, triggers inserted."""

    text: str
    finish_reason: str
    n_tokens: int
    n_forced: int


def cut_point(text: str, cut_before: tuple[str, ...]) -> int:
    """Where the trigger goes: before the last marker, else before the final ``<answer>``, else the end.

    Examples
    --------
    >>> t = "<think>a</think><answer>1</answer>"
    >>> t[: cut_point(t, ("</think>",))]
    '<think>a'
    >>> t = "so 2 * 3 = 6\\n<answer>6</answer>"
    >>> t[: cut_point(t, ("</think>",))]
    'so 2 * 3 = 6\\n'
    >>> cut_point("no tags", ("</think>",))
    7
    """
    found = [i for i in (text.rfind(m) for m in cut_before) if i >= 0]
    if found:
        return max(found)
    answer = text.rfind("<answer>")
    return answer if answer >= 0 else len(text)


def force_budget(sampler: Sampler, starts: list[Start], cfg: BudgetForcing) -> list[Forced]:
    """Continue every start ``cfg.forces`` times after ``cfg.trigger``, within ``cfg.total_tokens``.

    All responses of a round go to the backend in one call. A response whose budget is spent
    is left as it is (fewer triggers, counted in ``n_forced``).
    """
    text = [s.text for s in starts]
    finish = [s.finish_reason for s in starts]
    spent = [s.n_tokens if s.n_tokens is not None else s.params.max_tokens for s in starts]
    forced = [0] * len(starts)
    for round_ in range(cfg.forces):
        todo: list[tuple[int, Request]] = []
        for i, s in enumerate(starts):
            left = cfg.total_tokens - spent[i]
            if left < 1:
                continue
            prefix = text[i][: cut_point(text[i], cfg.cut_before)] + cfg.trigger
            params = dataclasses.replace(s.params, max_tokens=left)
            seed = seed_for(s.seed, "force", round_) % (2**31)
            todo.append((i, Request(messages=s.messages, n=1, seed=seed, params=params, prefix=prefix)))
        if not todo:
            break
        outputs = sampler.generate([req for _, req in todo])
        for (i, req), completions in zip(todo, outputs):
            comp = completions[0]
            text[i] = req.prefix + comp.text
            finish[i] = comp.finish_reason
            spent[i] += comp.n_tokens if comp.n_tokens is not None else req.params.max_tokens
            forced[i] += 1
    return [Forced(t, f, n, k) for t, f, n, k in zip(text, finish, spent, forced)]
