"""Stage: problems -> samples (each verified), as a plan, its work, and a commit.

**Identity.** A sample's key covers everything that decides its text but the token
budget: problem, prompt variant, the rendered chat messages (demonstrations included),
model and revision, sampling settings, the run's seed and the sample's index
(:func:`sample_keys`). Its ``sample_id`` adds ``max_tokens``.

**Which stored row serves a key** (:func:`serving_rows`, the one place of that rule): a
row generated with the requested ``max_tokens``, or else one that stopped on its own
within that many tokens. A row cut by a smaller budget is regenerated when the budget
grows, and one cut by a larger budget when it shrinks; the older row stays as history.

**Plan, work, commit.** :func:`plan_samples` compares the wanted keys with the stored
rows and returns a :class:`SamplePlan`, a plain value: the stored rows that serve, and
one request per missing sample, seeded by its key (so its text depends on its key alone,
never on which other samples were asked for with it). :func:`draw_samples` does the
work (generate, then verify with :mod:`tracekit.verify`); the caller commits the frame it
returns with ``store.write``. An executor may run the work of many plans anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from tracekit.ids import seed_for, stable_hash
from tracekit.prompts import Variant, sample_messages
from tracekit.sampling.base import Request, Sampler, SamplingParams
from tracekit.schemas import empty_frame, polars_schema
from tracekit.verify import verify_responses

# the stored columns a plan reads (small: no text)
INDEX_COLUMNS = [
    "sample_id",
    "sample_key",
    "problem_id",
    "prompt_variant",
    "sample_index",
    "max_tokens",
    "finish_reason",
    "n_tokens",
    "is_correct",
    "reason",
]


@dataclass(frozen=True)
class SampleSetting:
    """Everything but the problem and the index that decides a sample's text.

    ``demos`` maps a task name to its solved demonstrations ``(question, solution, answer)``.
    """

    variants: tuple[Variant, ...]
    k: int
    params: SamplingParams
    seed: int
    model: str
    revision: str | None = None
    demos: Mapping[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    source: str = "generate"

    @property
    def digest(self) -> str:
        """Hash of the model, its revision, the sampling settings (all but ``max_tokens``) and the seed."""
        return stable_hash(self.model, self.revision, self.params.key(), self.seed)


def sample_keys(problem_id: str, variant: str, prompt: str, setting: SampleSetting) -> list[str]:
    """The key of each of the ``k`` samples of one problem under one variant (``prompt``: the
    rendered messages as JSON)."""
    rendered = stable_hash(prompt)
    return ["s-" + stable_hash(problem_id, variant, rendered, setting.digest, i) for i in range(setting.k)]


def sample_id(key: str, max_tokens: int) -> str:
    """The id of the sample generated for ``key`` with a budget of ``max_tokens``."""
    return "s-" + stable_hash(key, max_tokens)


def serving_rows(stored: pl.DataFrame, max_tokens: int) -> pl.DataFrame:
    """Per ``sample_key``, the stored row that serves a request for ``max_tokens`` tokens.

    A row serves when it was generated with that very budget, or when it stopped on its own
    within it (its ``n_tokens``, or its budget when the count is unknown, is at most
    ``max_tokens``). The exact budget wins, then the larger budget.

    Examples
    --------
    >>> rows = pl.DataFrame({"sample_id": ["a", "b", "c"], "sample_key": ["k1", "k1", "k2"],
    ...                      "max_tokens": [32, 64, 64], "finish_reason": ["length", "stop", "length"],
    ...                      "n_tokens": [32, 40, 64]})
    >>> serving_rows(rows, 64)["sample_id"].to_list()  # k1: the row generated with 64
    ['b', 'c']
    >>> serving_rows(rows, 32)["sample_id"].to_list()  # k2 was cut at 64 tokens: regenerate
    ['a']
    >>> serving_rows(rows, 48)["sample_id"].to_list()  # k1 stopped at 40 tokens: it serves
    ['b']
    """
    exact = pl.col("max_tokens") == max_tokens
    within = (pl.col("finish_reason") == "stop") & (
        pl.coalesce("n_tokens", "max_tokens").fill_null(max_tokens + 1) <= max_tokens
    )
    return (
        stored.filter(exact.fill_null(False) | within)
        .sort(
            [exact.fill_null(False), pl.col("max_tokens").fill_null(0), "sample_id"],
            descending=[True, True, False],
        )
        .unique("sample_key", keep="first", maintain_order=True)
    )


@dataclass(frozen=True)
class SampleWork:
    """One request: sample ``index`` (key ``key``) of a problem under a variant."""

    request: Request
    problem_id: str
    task: str
    meta: str
    variant: str
    prompt: str  # the messages as JSON, stored on every sample
    index: int
    key: str


@dataclass(frozen=True)
class SamplePlan:
    """What a chunk of problems needs: ``serving`` stored rows (``INDEX_COLUMNS``) and ``work``."""

    setting: SampleSetting
    serving: pl.DataFrame
    work: tuple[SampleWork, ...]


def plan_samples(problems: pl.DataFrame, setting: SampleSetting, stored: pl.DataFrame) -> SamplePlan:
    """Compare the samples ``problems`` need with the ``stored`` rows (``INDEX_COLUMNS``, any keys)."""
    serving = serving_rows(stored, setting.params.max_tokens)
    have = set(serving["sample_key"].to_list())
    wanted: list[str] = []
    work: list[SampleWork] = []
    for pid, task, question, meta in problems.select("problem_id", "task", "question", "meta").iter_rows():
        for variant in setting.variants:
            messages = sample_messages(question, variant, setting.demos.get(task, []))
            prompt = json.dumps(messages)
            keys = sample_keys(pid, variant.name, prompt, setting)
            wanted.extend(keys)
            for i, key in enumerate(keys):
                if key in have:
                    continue
                # one request per sample, seeded by its own key (a batch-dependent engine such as
                # vLLM may still vary its text with the batch; its id does not vary)
                request = Request(
                    messages=messages, n=1, params=setting.params, seed=seed_for(key) % (2**31), group=pid
                )
                work.append(SampleWork(request, pid, task, meta, variant.name, prompt, i, key))
    serving = serving.filter(pl.col("sample_key").is_in(wanted))
    return SamplePlan(setting=setting, serving=serving, work=tuple(work))


def draw_samples(plan: SamplePlan, sampler: Sampler) -> pl.DataFrame:
    """Do a plan's work: generate its missing samples and verify them; a ``samples`` frame."""
    if not plan.work:
        return empty_frame("samples")
    setting = plan.setting
    outputs = sampler.generate([w.request for w in plan.work])
    columns: dict[str, list] = {c: [] for c in polars_schema("samples")}
    tasks, row_metas = [], []
    metas: dict[str, dict] = {}
    for work, completions in zip(plan.work, outputs):
        meta = metas.get(work.problem_id) or metas.setdefault(work.problem_id, json.loads(work.meta))
        for comp in completions:
            for name, value in (
                ("sample_id", sample_id(work.key, setting.params.max_tokens)),
                ("sample_key", work.key),
                ("problem_id", work.problem_id),
                ("prompt_variant", work.variant),
                ("sample_index", work.index),
                ("model", setting.model),
                ("max_tokens", setting.params.max_tokens),
                ("prompt", work.prompt),
                ("response", comp.text),
                ("finish_reason", comp.finish_reason),
                ("n_tokens", comp.n_tokens),
                ("source", setting.source),
            ):
                columns[name].append(value)
            tasks.append(work.task)
            row_metas.append(meta)
    verdicts = verify_responses(columns["response"], tasks, row_metas)
    for name in verdicts.columns:
        columns[name] = verdicts[name]
    return pl.DataFrame(columns, schema=polars_schema("samples"))


def sample_problems(
    problems: pl.DataFrame, sampler: Sampler, setting: SampleSetting, stored: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Plan and do in one call: the samples ``problems`` lack (given ``stored`` rows), verified."""
    stored = empty_frame("samples").select(INDEX_COLUMNS) if stored is None else stored
    return draw_samples(plan_samples(problems, setting, stored), sampler)
