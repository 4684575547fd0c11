"""Prompt variants for sampling and the reflection prompt (tracekit's own wording).

The four variants follow the SkillFactory paper's four strategies: plain step-by-step,
plan then execute, list alternatives and deliberate, rewrite the question first. Every
variant asks for the final answer in ``<answer>`` tags. Weak models need to be shown
the format, so a prompt may carry ``few_shot`` in-context demonstrations: solved
problems of the same task (drawn from a seed disjoint from the run's problems, solved
by the task's own oracle) as earlier user/assistant turns. More variants can come from
a YAML file: a list of ``{name, system, instruction}`` mappings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, unknown_name
from tracekit.tasks import Task, get_task


@dataclass(frozen=True)
class Variant:
    name: str
    system: str
    instruction: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "plain",
            "You are a careful problem solver.",
            "Solve the problem step by step. Finish with the final answer alone inside <answer> </answer> tags.",
        ),
        Variant(
            "plan",
            "You are a careful problem solver who plans before acting.",
            "First write a short plan, then carry it out. Finish with the final answer alone inside "
            "<answer> </answer> tags.",
        ),
        Variant(
            "alternatives",
            "You are a careful problem solver who weighs options.",
            "List two or three ways to approach the problem, pick the most promising one and use it. Finish with "
            "the final answer alone inside <answer> </answer> tags.",
        ),
        Variant(
            "rephrase",
            "You are a careful problem solver.",
            "Start by restating the question in your own words, then solve it. Finish with the final answer alone "
            "inside <answer> </answer> tags.",
        ),
        Variant("question", "", ""),  # the bare question, as SFT exports show it (evaluation of SFT models)
    )
}

REFLECT_SYSTEM = "You check solutions to problems and decide whether their final answer is right."
REFLECT_INSTRUCTION = (
    "For each proposed solution, recompute the result yourself, compare it with the proposed final answer, "
    "and end with exactly <verdict>Correct</verdict> or <verdict>Incorrect</verdict>."
)


def load_variants(path: str | Path | None) -> dict[str, Variant]:
    """The built-in variants plus those of a YAML file (same names override)."""
    out = dict(VARIANTS)
    if path is None:
        return out
    from tracekit.yamlfile import read_yaml

    items = read_yaml(
        path, "prompt variants file", "variants_file is a path from the current folder to a YAML list."
    )
    if not isinstance(items, list):
        raise ConfigError(f"{path}: expected a list of variants")
    for i, item in enumerate(items):
        keys = {"name", "system", "instruction"}
        if not isinstance(item, dict) or set(item) - keys or not {"name", "instruction"} <= set(item):
            raise ConfigError(
                f"{path}: variant {i} must have 'name' and 'instruction' (and optional 'system')"
            )
        out[item["name"]] = Variant(item["name"], item.get("system", ""), item["instruction"])
    return out


def pick_variants(names: list[str], known: dict[str, Variant]) -> list[Variant]:
    for name in names:
        if name not in known:
            raise unknown_name("prompt variant", name, list(known))
    return [known[n] for n in names]


def user_turn(question: str, variant: Variant) -> str:
    return f"{question}\n\n{variant.instruction}" if variant.instruction else question


def sample_messages(
    question: str, variant: Variant, demos: list[tuple[str, str, str]]
) -> tuple[dict[str, str], ...]:
    """Chat messages for one problem under ``variant``; demos are (question, worked solution, answer).

    The variant's instruction follows every question, demonstrations included: measured on the
    embedded model, this gave 29/64 correct samples against 19/64 with the instruction said once
    in the system turn.
    """
    messages = [{"role": "system", "content": variant.system}] if variant.system else []
    for demo_q, solution, demo_answer in demos:
        messages.append({"role": "user", "content": user_turn(demo_q, variant)})
        messages.append({"role": "assistant", "content": f"{solution}\n<answer>{demo_answer}</answer>"})
    messages.append({"role": "user", "content": user_turn(question, variant)})
    return tuple(messages)


_QUESTION, _PROPOSED = "Question:\n", "\n\nProposed solution:\n"


def reflect_user_turn(question: str, response: str) -> str:
    return f"{_QUESTION}{question}{_PROPOSED}{response}"


def parse_reflect_user_turn(content: str) -> tuple[str, str] | None:
    """``(question, response)`` of a reflection request's user turn, or None for another turn.

    Examples
    --------
    >>> parse_reflect_user_turn(reflect_user_turn("What is 2 * 3?", "<answer>6</answer>"))
    ('What is 2 * 3?', '<answer>6</answer>')
    """
    if not content.startswith(_QUESTION) or _PROPOSED not in content:
        return None
    question, _, response = content[len(_QUESTION) :].partition(_PROPOSED)
    return question, response


def reflect_messages(
    question: str, response: str, demos: list[tuple[str, str, str, bool]]
) -> tuple[dict[str, str], ...]:
    """Chat messages asking the model to verify ``response``; demos are (question, response, worked solution, correct?).

    The instruction is said once, in the system turn: reflection prompts are long and prompt
    length is most of their cost on a CPU (measured: the reflect stage took 318 s instead of 403 s).
    """
    messages = [{"role": "system", "content": f"{REFLECT_SYSTEM} {REFLECT_INSTRUCTION}"}]
    for demo_q, demo_resp, solution, correct in demos:
        messages.append({"role": "user", "content": reflect_user_turn(demo_q, demo_resp)})
        if correct:
            body = f"Recomputing: {solution} This matches the proposed answer.\n<verdict>Correct</verdict>"
        else:
            body = f"Recomputing: {solution} This does not match the proposed answer.\n<verdict>Incorrect</verdict>"
        messages.append({"role": "assistant", "content": body})
    messages.append({"role": "user", "content": reflect_user_turn(question, response)})
    return tuple(messages)


# ----------------------------------------------------------------------------- demonstrations
DEMO_SEED_OFFSET = 7919  # demonstrations come from a seed disjoint from the run's problems


def solved_demos(
    task: Task, n: int, *, seed: int, options: dict[str, Any], exclude: set[str]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``n`` problems of ``task`` solved by its oracle: ``(question, worked solution, answer, meta)``.

    Drawn from the validation split under ``seed + DEMO_SEED_OFFSET``, never one of ``exclude``
    (the run's own problem ids). The first ``m`` demonstrations are the same for every ``n >= m``.
    """
    if n <= 0:
        return []
    want = n + 2
    while True:
        pool = task.generate(want, seed=seed + DEMO_SEED_OFFSET, split="validation", **options)
        rows = [r for r in pool.iter_rows(named=True) if r["problem_id"] not in exclude]
        if len(rows) >= n:
            break
        want *= 2
    out = []
    for row in rows[:n]:
        meta = json.loads(row["meta"])
        out.append((row["question"], task.demo_solution(meta, row["answer"]), row["answer"], meta))
    return out


def reflection_demos(
    task: Task, solved: list[tuple[str, str, str, dict[str, Any]]]
) -> list[tuple[str, str, str, bool]]:
    """Demonstrations for the reflection prompt: ``(question, proposed response, solution, correct)``.

    They alternate a right and a wrong proposed answer (a wrong one from
    :meth:`~tracekit.tasks.Task.wrong_answer`); every label is what the task's own verifier
    says of the proposed response, so a demonstration never teaches a wrong verdict.
    """
    demos = []
    for i, (question, solution, answer, meta) in enumerate(solved):
        shown = answer if i % 2 == 0 else (task.wrong_answer(answer, meta) or answer)
        response = f"The answer is {shown}.\n<answer>{shown}</answer>"
        demos.append((question, response, solution, task.score(response, meta).is_correct))
    return demos


def make_demos(
    tasks: Iterable[tuple[str, dict[str, Any]]],
    *,
    seed: int,
    exclude: set[str],
    sample_few_shot: int,
    reflect_few_shot: int = 0,
) -> tuple[dict[str, list], dict[str, list]]:
    """Solved demonstrations per task name: ``(for sampling prompts, for reflection prompts)``.

    ``tasks``: ``(name, options)`` of each generated task (dataset tasks have no oracle to solve
    them: leave them out); a name given twice takes its first options. ``sample_few_shot`` and
    ``reflect_few_shot`` demonstrations per task are drawn (:func:`solved_demos`, never one of
    ``exclude``; the reflection ones from :func:`reflection_demos`); none at all when both are 0.
    """
    sample_demos: dict[str, list] = {}
    reflect_demos: dict[str, list] = {}
    want = max(sample_few_shot, reflect_few_shot)
    for name, options in tasks:
        if want == 0 or name in sample_demos:
            continue
        task = get_task(name)
        solved = solved_demos(task, want, seed=seed, options=options, exclude=exclude)
        sample_demos[name] = [(q, s, a) for q, s, a, _ in solved[:sample_few_shot]]
        reflect_demos[name] = reflection_demos(task, solved[:reflect_few_shot])
    return sample_demos, reflect_demos
