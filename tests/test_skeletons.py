"""The text skeleton of every format in both layouts, written out; and the reference layout
reproduces the reference script's template exactly, given the same choices."""

from __future__ import annotations

import pytest
import trace_spec as spec

from tracekit.rearrange import FORMATS, RearrangeConfig, rearrange_pool, rearrange_store
from tracekit.rearrange.phrases import BANKS, PhraseBank, load_phrase_bank

# every sample reads S, every reflection F, every answer A; each bank one phrase
PLACEHOLDERS = {
    "generic_glue": "GLUE",
    "correct_glue": "GLUE",
    "incorrect_glue": "GLUE",
    "ending": "END",
    "backtrack": "BACK",
    "confirm": "CONF",
}
BANK = PhraseBank({b: (PLACEHOLDERS[b],) for b in BANKS}, digest="placeholders", source="test")

# two samples with their reflections, and the glue between them
ONE = "<think>\n<sample>\nS\n</sample>\n<reflect>\nF\n</reflect>\n"
TWO = ONE + "GLUE\n<sample>\nS\n</sample>\n<reflect>\nF\n</reflect>\n"
END = "</think>\n\n\nEND\n\n<answer>\nA\n</answer>"  # three newlines after </think>, as the reference's template
SKELETONS = {
    "tracekit": {
        "0C": ONE + END,
        "*C": TWO + END,
        "*C_full": TWO + END,
        "random": TWO + END,
        "*C*IC": TWO + "BACK\n<sample>\nS\n</sample>\n" + END,
        "*CC": TWO + "CONF\n" + END,
        "no_reflection": "<think>\n<sample>\nS\n</sample>\nGLUE\n<sample>\nS\n</sample>\n" + END,
        "alg1": ONE + END,
        "star": "<think>\n<sample>\nS\n</sample>\n" + END,
    },
    "reference": {
        "0C": ONE + END,
        "*C": TWO + END,
        "*C_full": TWO + END,
        "random": TWO + END,
        "*C*IC": TWO + "</think>\n\n\nBACK\nS\nEND\n\n<answer>\nA\n</answer>",
        "*CC": TWO + "</think>\n\n\nCONF\nEND\n\n<answer>\nA\n</answer>",
        "no_reflection": "<think>\n<sample>\nS\n</sample>\n\nGLUE\n<sample>\nS\n</sample>\n\n" + END,
        "alg1": ONE + END,
        "star": "<think>\n<sample>\nS\n</sample>\n\n" + END,
    },
}


def sample(i: int, correct: bool) -> spec.Sample:
    return spec.Sample(f"s-{i}", "abc"[i % 3], correct, "A", "S", [(f"r-{i}", "F")])


@pytest.mark.parametrize("layout", list(SKELETONS))
def test_every_format_has_its_skeleton(layout):
    two_right_one_wrong = spec.Problem("p-0", [sample(0, True), sample(1, False), sample(2, True)])
    one_right = spec.Problem("p-1", [sample(3, True)])  # alg1 and star only: one trace of one sample
    cfg = RearrangeConfig(formats=tuple(FORMATS), n_max=2, layout=layout)
    traces = rearrange_pool(*spec.inputs([two_right_one_wrong, one_right]), cfg, BANK)
    assert set(SKELETONS[layout]) == set(FORMATS)
    for fmt, skeleton in SKELETONS[layout].items():
        problem = "p-1" if fmt in ("alg1", "star") else "p-0"
        n = 1 if fmt in ("0C", "alg1", "star") else 2
        mine = traces.filter(
            (traces["format"] == fmt) & (traces["problem_id"] == problem) & (traces["n_samples"] == n)
        )
        assert mine.height >= 1, fmt
        assert set(mine["completion"]) == {skeleton}, fmt


# ------------------------------------------------------------------ the reference's template


def reference_template(n: int) -> str:
    """The reference script's trace template for n samples (its skeleton, written out here)."""
    parts = ["<think>"]
    for i in range(1, n + 1):
        parts.append(f"<sample>\n{{response_{i}}}\n</sample>")
        parts.append(f"<reflect>\n{{reflection_{i}}}\n</reflect>")
        if i < n:
            parts.append(f"{{glue_phrase_{i}}}")
    parts.append("</think>")
    parts.append("\n\n{ending_phrase}\n\n<answer>\n{final_answer}\n</answer>")
    return "\n".join(parts)


def reference_text(fmt, responses, reflections, glue, ending, tail, final_response, final_answer) -> str:
    """What the reference writes for these choices: the template filled in, with its tail before
    the ending phrase and, without reflections, the empty reflect blocks taken out."""
    values = {"final_answer": final_answer, "ending_phrase": ending}
    for i, response in enumerate(responses, start=1):
        values[f"response_{i}"] = response
        values[f"reflection_{i}"] = reflections[i - 1] if reflections else ""
    for i, phrase in enumerate(glue, start=1):
        values[f"glue_phrase_{i}"] = phrase
    if fmt == "*C*IC":
        values["ending_phrase"] = f"{tail}\n{final_response}\n{ending}"
    elif fmt == "*CC":
        values["ending_phrase"] = f"{tail}\n{ending}"
    text = reference_template(len(responses)).format(**values)
    if not reflections:
        text = text.replace("<reflect>\n\n</reflect>", "")
    return text


def test_reference_layout_is_the_reference_template(filled_store, tmp_path):
    """Rebuild every trace with the reference's template from the choices tracekit recorded
    (samples, reflections, phrases): the texts are identical, for every format."""
    import yaml

    bank_file = tmp_path / "bank.yaml"  # a phrase file, as a user loads the reference's lists
    bank_file.write_text(yaml.safe_dump({b: [f"{b} {i}, with {{braces}}" for i in range(3)] for b in BANKS}))
    cfg = RearrangeConfig(
        formats=tuple(FORMATS), n_max=3, repeats=2, layout="reference", phrases=str(bank_file)
    )
    rearrange_store(filled_store, cfg, replace=True)
    bank = load_phrase_bank(bank_file)
    samples = filled_store.read("samples")
    response = dict(zip(samples["sample_id"], samples["response"]))
    answer = dict(zip(samples["sample_id"], samples["extracted_answer"]))
    correct = dict(zip(samples["sample_id"], samples["is_correct"]))
    reflections = filled_store.read("reflections")
    reflection = dict(zip(reflections["reflection_id"], reflections["text"]))
    traces = filled_store.read("traces")
    assert set(traces["format"]) == set(FORMATS)
    for row in traces.iter_rows(named=True):
        fmt, sids = row["format"], row["sample_ids"]
        phrases = [bank.text(p) for p in row["phrase_ids"]]
        tail = phrases[-2] if fmt in ("*C*IC", "*CC") else None
        final = sids[-1]
        if fmt == "*C*IC":  # the latest correct sample before the wrong last one
            final = [s for s in sids[:-1] if correct[s]][-1]
        want = reference_text(
            fmt,
            [response[s] for s in sids],
            [reflection[r] for r in row["reflection_ids"]],
            phrases[: len(sids) - 1],
            phrases[-1],
            tail,
            response[final],
            answer[final],
        )
        assert row["completion"] == want, fmt
