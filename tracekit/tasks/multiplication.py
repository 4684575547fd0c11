"""Long multiplication: the product of two operands of a given number of digits (2 to 5)."""

from __future__ import annotations

from typing import Any

from tracekit.tasks.base import Check, Task, parse_integer


class Multiplication(Task):
    name = "multiplication"
    fields = ("a", "b")
    field_types = {"a": "int", "b": "int"}
    description = "Multiply two integers of the given number of digits; the answer is the exact product."
    knobs = {
        "digits": "digits of each operand (2 to 5; default 2)",
        "digits_b": "digits of the second operand (default: same as digits)",
    }

    def make_item(self, rng, digits: int = 2, digits_b: int | None = None) -> dict[str, Any]:
        from tracekit.errors import ConfigError

        digits_b = digits if digits_b is None else digits_b
        for d in (digits, digits_b):
            if not 1 <= int(d) <= 9:
                raise ConfigError(f"multiplication: digits must be in [1, 9], got {d}")
        a = rng.randint(10 ** (int(digits) - 1), 10 ** int(digits) - 1)
        b = rng.randint(10 ** (int(digits_b) - 1), 10 ** int(digits_b) - 1)
        question = (
            f"What is {a} * {b}? Work it out, then give only the final number "
            f"in <answer> </answer> tags, for example <answer>1234</answer>."
        )
        return {"question": question, "answer": str(a * b), "a": a, "b": b}

    def demo_solution(self, meta: dict[str, Any], answer: str) -> str:
        return f"{meta['a']} * {meta['b']} = {answer}."

    def check(self, answer: str, meta: dict[str, Any]) -> Check:
        value = parse_integer(answer.rstrip("."))
        if value is None:
            return Check(False, "not_a_number", answer)
        if value != int(meta["a"]) * int(meta["b"]):
            return Check(False, "wrong_value", answer)
        return Check(True, "ok", answer)
