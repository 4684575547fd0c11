"""A task of your own: the remainder of a division (`tracekit run examples/custom-task.yaml`)."""

from tracekit.tasks import Check, Task
from tracekit.tasks.base import parse_integer


class Remainders(Task):
    name = "remainders"
    description = "The remainder of a number divided by a small divisor."
    knobs = {"digits": "digits of the number (default 3)", "divisor_max": "largest divisor (default 9)"}
    fields = ("number", "divisor")  # what check() reads from each problem's meta
    field_types = {"number": "int", "divisor": "int"}
    verifier_timeout = 2.0  # seconds one check may take; a slower one is the verdict "timeout"

    def make_item(self, rng, digits=3, divisor_max=9):
        if not 1 <= int(digits) <= 12 or int(divisor_max) < 2:
            raise ValueError("digits must be in [1, 12] and divisor_max >= 2")
        number = rng.randint(10 ** (int(digits) - 1), 10 ** int(digits) - 1)
        divisor = rng.randint(2, int(divisor_max))
        question = (
            f"What is the remainder when {number} is divided by {divisor}? "
            "Give only the number in <answer> </answer> tags."
        )
        return {"question": question, "answer": str(number % divisor), "number": number, "divisor": divisor}

    def check(self, answer, meta):
        value = parse_integer(answer)
        if value is None:
            return Check(False, "not_a_number", answer)
        right = value == meta["number"] % meta["divisor"]
        return Check(right, "ok" if right else "wrong_value", answer)
