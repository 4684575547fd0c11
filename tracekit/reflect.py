"""Stage: samples -> reflections (the same model verifies its own samples).

Each sample gets ``per_sample`` reflections asking for ``<verdict>Correct</verdict>`` or
``<verdict>Incorrect</verdict>``; the verdict is parsed (:func:`tracekit.extract.parse_verdict`).
Whether a reflection is kept is the filter's decision (:mod:`tracekit.filter`).

**Identity.** A reflection's id covers everything that decides its text: the sample
(whose id fixes the question and the response), the rest of the rendered messages (the
reflection prompt and its demonstrations, per task), model and revision, the sampling
settings with ``max_tokens``, the run's seed and the reflection's index
(:func:`reflection_keys`).

**Plan, work, commit**, as in :mod:`tracekit.sample`: :func:`reflection_keys` names every
wanted reflection; :func:`plan_reflections` compares them with the stored ids and turns the
missing ones into requests, one per reflection seeded by its id (a plain :class:`ReflectPlan`);
:func:`draw_reflections` does the work (the only step that calls the model, wherever an
executor runs it); the caller writes the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from tracekit.extract import parse_verdict
from tracekit.ids import hash_strings, seed_for, stable_hash
from tracekit.prompts import reflect_messages
from tracekit.sampling.base import Request, Sampler, SamplingParams
from tracekit.schemas import empty_frame, polars_schema


@dataclass(frozen=True)
class ReflectSetting:
    """Everything but the sample and the index that decides a reflection's text.

    ``demos`` maps a task name to its demonstrations ``(question, response, solution, correct)``.
    """

    per_sample: int
    params: SamplingParams
    seed: int
    model: str
    revision: str | None = None
    demos: Mapping[str, list[tuple[str, str, str, bool]]] = field(default_factory=dict)

    def digest(self, task: str) -> str:
        """Hash of the reflection prompt of ``task`` (rendered around placeholders), the model,
        its revision, the sampling settings and the seed."""
        template = reflect_messages("\x00question", "\x00response", self.demos.get(task, []))
        return stable_hash(
            template, self.model, self.revision, self.params.key(), self.params.max_tokens, self.seed
        )


def reflection_keys(samples: pl.DataFrame, tasks: Mapping[str, str], setting: ReflectSetting) -> pl.DataFrame:
    """Every wanted reflection of ``samples`` (``sample_id``, ``problem_id``): ``sample_id,
    problem_id, reflection_index, reflection_id``, sample by sample. ``tasks`` maps problem ids
    to task names."""
    by_task = {task: setting.digest(task) for task in set(tasks.values())}
    digests = {pid: by_task[task] for pid, task in tasks.items()}
    wanted = samples.select("sample_id", "problem_id").with_columns(
        reflection_index=pl.int_ranges(0, setting.per_sample, dtype=pl.Int64)
    )
    wanted = wanted.explode("reflection_index")
    if wanted.height == 0:
        return wanted.with_columns(reflection_id=pl.lit(None, dtype=pl.Utf8))
    digest = wanted["problem_id"].replace_strict(digests, return_dtype=pl.Utf8)
    text = pl.select(
        pl.concat_str(
            [wanted["sample_id"], digest, wanted["reflection_index"].cast(pl.Utf8)], separator="\x1f"
        )
    ).to_series()
    return wanted.with_columns(reflection_id=pl.Series(["r-" + h for h in hash_strings(text)], dtype=pl.Utf8))


@dataclass(frozen=True)
class ReflectWork:
    """One request: reflection ``index`` (id ``reflection_id``) of one sample."""

    request: Request
    sample_id: str
    problem_id: str
    index: int
    reflection_id: str


@dataclass(frozen=True)
class ReflectPlan:
    """The reflections to ask for, one request each; ``reused``: wanted reflections already stored."""

    setting: ReflectSetting
    work: tuple[ReflectWork, ...]
    reused: int = 0

    def split(self, samples_per_call: int) -> list[ReflectPlan]:
        """The plan in pieces of the reflections of ``samples_per_call`` samples (one backend call
        each); the first piece counts the ``reused`` ones."""
        pieces: list[list[ReflectWork]] = []
        in_piece: set[str] = set()
        for work in self.work:
            if not pieces or (work.sample_id not in in_piece and len(in_piece) >= max(1, samples_per_call)):
                pieces.append([])
                in_piece = set()
            pieces[-1].append(work)
            in_piece.add(work.sample_id)
        return [
            ReflectPlan(self.setting, tuple(piece), self.reused if i == 0 else 0)
            for i, piece in enumerate(pieces)
        ]


def plan_reflections(
    wanted: pl.DataFrame,
    samples: pl.DataFrame,
    questions: Mapping[str, str],
    tasks: Mapping[str, str],
    setting: ReflectSetting,
    *,
    stored: pl.Series | None = None,
    read: Callable[[pl.Series], pl.DataFrame] | None = None,
) -> ReflectPlan:
    """Requests for the ``wanted`` reflections (rows of :func:`reflection_keys`) whose id is not
    among the ``stored`` ones.

    ``samples`` holds ``sample_id`` and ``response`` of samples in memory (those just drawn);
    ``read(sample_ids)`` returns the same columns for the other samples that still miss a
    reflection (a resumed run reads them from the store), and is called only for those.
    """
    missing = wanted if stored is None else wanted.filter(~pl.col("reflection_id").is_in(stored.implode()))
    reused = wanted.height - missing.height
    if missing.height == 0:
        return ReflectPlan(setting, (), reused)
    texts = samples.select("sample_id", "response")
    need = missing.select("sample_id").unique(maintain_order=True).join(texts, on="sample_id", how="anti")
    if need.height and read is not None:
        texts = pl.concat([texts, read(need["sample_id"]).select("sample_id", "response")])
    response = dict(zip(*texts.get_columns()))
    work = []
    grouped = missing.group_by("sample_id", "problem_id", maintain_order=True).agg(
        "reflection_index", "reflection_id"
    )
    for sid, pid, indices, ids in grouped.iter_rows():
        task = tasks[pid]
        messages = reflect_messages(questions[pid], response[sid], setting.demos.get(task, []))
        for j, rid in zip(indices, ids):  # one request per reflection, seeded by its own id
            request = Request(
                messages=messages, n=1, params=setting.params, seed=seed_for(rid) % (2**31), group=pid
            )
            work.append(ReflectWork(request, sid, pid, j, rid))
    return ReflectPlan(setting, tuple(work), reused)


def draw_reflections(plan: ReflectPlan, sampler: Sampler) -> pl.DataFrame:
    """Do a plan's work: ask for its reflections and parse their verdicts; a ``reflections`` frame."""
    if not plan.work:
        return empty_frame("reflections")
    rows = []
    for work, completions in zip(plan.work, sampler.generate([w.request for w in plan.work])):
        for comp in completions:
            verdict = parse_verdict(comp.text)
            rows.append(
                {
                    "reflection_id": work.reflection_id,
                    "sample_id": work.sample_id,
                    "problem_id": work.problem_id,
                    "reflection_index": work.index,
                    "model": plan.setting.model,
                    "text": comp.text,
                    "finish_reason": comp.finish_reason,
                    "verdict": verdict.value,
                    "verdict_reason": verdict.reason,
                }
            )
    return pl.DataFrame(rows, schema=polars_schema("reflections"))
