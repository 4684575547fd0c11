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

from dataclasses import dataclass
from pathlib import Path

import yaml

from tracekit.errors import ConfigError, unknown_name


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
    try:
        items = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read prompt variants file {path}: {exc}") from None
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


def reflect_user_turn(question: str, response: str) -> str:
    return f"Question:\n{question}\n\nProposed solution:\n{response}"


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
