"""Stage: samples -> reflections (the same model verifies its own samples).

Each sample gets ``per_sample`` reflections asking for ``<verdict>Correct</verdict>`` or
``<verdict>Incorrect</verdict>``; the verdict is parsed (:func:`tracekit.extract.parse_verdict`)
and compared with the verifier's truth. Reflections are keyed by (sample, model,
settings, index), so a re-run only asks for the missing ones.
"""

from __future__ import annotations

import polars as pl

from tracekit.extract import parse_verdict
from tracekit.ids import seed_for, stable_hash
from tracekit.prompts import reflect_messages
from tracekit.sampling.base import Request, Sampler, SamplingParams

REFLECTION_SCHEMA = {
    "reflection_id": pl.Utf8,
    "sample_id": pl.Utf8,
    "problem_id": pl.Utf8,
    "reflection_index": pl.Int64,
    "model": pl.Utf8,
    "text": pl.Utf8,
    "finish_reason": pl.Utf8,
    "verdict": pl.Boolean,
    "verdict_reason": pl.Utf8,
    "matches_truth": pl.Boolean,
}


def reflect_samples(
    samples: pl.DataFrame,
    questions: dict[str, str],
    sampler: Sampler,
    *,
    per_sample: int,
    params: SamplingParams,
    demos: dict[str, list[tuple[str, str, str, bool]]],
    tasks: dict[str, str],
    seed: int,
    done: set[str],
) -> pl.DataFrame:
    """Ask for the missing reflections of ``samples``; a ``reflections`` frame."""
    requests, infos = [], []
    for sid, pid, response, correct in samples.select(
        "sample_id", "problem_id", "response", "is_correct"
    ).iter_rows():
        ids = [
            "r-" + stable_hash(sid, sampler.model_id, params.key(), params.max_tokens, j)
            for j in range(per_sample)
        ]
        missing = [j for j in range(per_sample) if ids[j] not in done]
        if not missing:
            continue
        messages = reflect_messages(questions[pid], response, demos.get(tasks[pid], []))
        requests.append(
            Request(
                messages=messages,
                n=len(missing),
                params=params,
                seed=seed_for(seed, "reflect", sid, tuple(missing)) % (2**31),
            )
        )
        infos.append((sid, pid, correct, ids, missing))
    if not requests:
        return pl.DataFrame(schema=REFLECTION_SCHEMA)
    rows = []
    for (sid, pid, correct, ids, missing), completions in zip(infos, sampler.generate(requests)):
        for j, comp in zip(missing, completions):
            verdict = parse_verdict(comp.text)
            rows.append(
                {
                    "reflection_id": ids[j],
                    "sample_id": sid,
                    "problem_id": pid,
                    "reflection_index": j,
                    "model": sampler.model_id,
                    "text": comp.text,
                    "finish_reason": comp.finish_reason,
                    "verdict": verdict.value,
                    "verdict_reason": verdict.reason,
                    "matches_truth": verdict.value is not None and verdict.value == correct,
                }
            )
    return pl.DataFrame(rows, schema=REFLECTION_SCHEMA)
