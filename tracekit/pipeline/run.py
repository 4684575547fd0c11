"""The run: tasks -> sample -> verify -> reflect -> filter -> rearrange -> store.

A straight list of stage calls over a store. What the store already holds is read once,
as a small index (ids and flags, no text). Problems then go in chunks of
``chunk_problems``; for each chunk the sample stage and then the reflect stage each
**plan** the missing work against that index (a plain value: :class:`~tracekit.sample.SamplePlan`,
:class:`~tracekit.reflect.ReflectPlan`), **do** it (the only step that calls the model),
and **commit** it (an atomic write, on this process). The work goes through an executor
(:mod:`tracekit.executor`: here, or on Ray actors), which may run a chunk's reflections while
the next chunk is sampled. A run killed at any moment loses at most the work in flight;
running the same command again reuses every finished row.

The run defines the current view of its four tables (see :mod:`tracekit.store.views`):
its own problems, the samples and reflections its configuration keys, and the traces
built from them. Rows of other configurations (another model, fewer samples, other
settings) stay in the store as history and are not used, reported or exported.
"""

from __future__ import annotations

import sys
from typing import Any

import polars as pl

from tracekit import counters
from tracekit.errors import StoreError
from tracekit.executor import Build, Executor, Feed, Job, ModelInfo, make_executor
from tracekit.executor.base import timed
from tracekit.filter import TRUNCATED
from tracekit.pipeline.config import RunConfig, config_dict, config_hash
from tracekit.pipeline.shard import Shard
from tracekit.pipeline.summary import format_summary, summarize
from tracekit.prompts import load_variants, make_demos, pick_variants
from tracekit.rearrange.stage import build_traces
from tracekit.reflect import ReflectSetting, draw_reflections, plan_reflections, reflection_keys
from tracekit.sample import INDEX_COLUMNS, SampleSetting, draw_samples, plan_samples
from tracekit.sampling.base import Sampler
from tracekit.store import Store
from tracekit.store.manifest import recording
from tracekit.store.tables import created_store
from tracekit.tasks import task_problems, task_sources


def make_problems(cfg: RunConfig) -> pl.DataFrame:
    return pl.concat(
        task_problems(
            spec.name, spec.n, seed=cfg.seed, split=spec.split, path=spec.path, difficulties=[spec.options]
        )
        for spec in cfg.tasks
    )


def run_demos(cfg: RunConfig, exclude: set[str]) -> tuple[dict, dict]:
    """Solved demonstrations per task for the sampling and reflection prompts of ``cfg``
    (:func:`tracekit.prompts.make_demos`; none for dataset tasks)."""
    return make_demos(
        [(spec.name, spec.options) for spec in cfg.tasks if not spec.path],
        seed=cfg.seed,
        exclude=exclude,
        sample_few_shot=cfg.sampling.few_shot,
        reflect_few_shot=cfg.reflection.few_shot,
    )


def refuse_real_data(store: Store) -> None:
    """A dry run's canned rows must never mix with real ones: refuse a store that holds real samples."""
    real = store.scan("samples").filter(pl.col("source") != "scripted").select(pl.len()).collect().item()
    if real:
        msg = (
            f"--dry-run: the store {store.root} holds {real} real (generated or imported) samples; "
            "a dry run writes scripted data only.\n"
            "Hint: leave out --store (a dry run then uses STORE-dry-run) or name an empty folder."
        )
        raise StoreError(msg)


def _by_chunk(frame: pl.DataFrame, chunk_of: dict[str, int]) -> dict[int, pl.DataFrame]:
    """``frame`` split by the chunk of its ``problem_id``."""
    keyed = frame.with_columns(_chunk=pl.col("problem_id").replace_strict(chunk_of, return_dtype=pl.Int64))
    return {k[0]: part for k, part in keyed.partition_by("_chunk", as_dict=True, include_key=False).items()}


def run_pipeline(
    cfg: RunConfig,
    *,
    sampler: Sampler | None = None,
    executor: Executor | None = None,
    shard: Shard | None = None,
    dry_run: bool = False,
    progress: bool = True,
    echo=print,
) -> dict[str, Any]:
    """Run every stage of ``cfg``; return the summary (also printed through ``echo``).

    ``sampler``: a ready backend (tests; otherwise each replica builds one from ``cfg.model``).
    ``executor``: where the model calls run (default: the one ``cfg.executor`` names).
    ``shard``: only the problems of one shard (see :class:`~tracekit.pipeline.shard.Shard`).
    ``dry_run``: scripted, well-formed data instead of a model (see
    :func:`tracekit.sampling.scripted.dry_run_responder`); refused on a store with real data.
    The problems and demonstrations are made and the model is loaded before anything is
    written; a run that fails then leaves no new store behind.
    """
    with created_store(cfg.store) as store:
        summary = _run(
            store,
            cfg,
            sampler=sampler,
            executor=executor or make_executor(cfg.executor),
            shard=shard,
            dry_run=dry_run,
            progress=progress,
            echo=echo,
        )
    for table in (
        "samples",
        "reflections",
    ):  # chunks and backend calls each wrote a part: merge the small ones
        store.compact(table)  # rows, ids and views unchanged
    return summary


def _run(
    store: Store, cfg: RunConfig, *, sampler, executor: Executor, shard, dry_run: bool, progress: bool, echo
) -> dict[str, Any]:
    if dry_run:
        refuse_real_data(store)
    config = {**config_dict(cfg), "task_sources": task_sources(spec.name for spec in cfg.tasks)}
    if shard is not None:  # recorded; the hash stays the config's, shared by all its shards
        config["shard"] = str(shard)
    with recording(store, "run", config, seed=cfg.seed, config_hash=config_hash(cfg)) as rec:
        with rec.stage("tasks"):
            problems = make_problems(cfg)
            # the demonstrations avoid every problem of the config, so each shard renders the same prompts
            sample_demos, reflect_demos = run_demos(cfg, set(problems["problem_id"].to_list()))
            if shard is not None:
                problems = shard.take(problems)
        try:
            with rec.stage("load_model"):
                if sampler is None and dry_run:
                    from tracekit.sampling.scripted import ScriptedSampler, dry_run_responder

                    sampler = ScriptedSampler(dry_run_responder(problems), model_id="scripted-dry-run")
                build = (
                    Build(ready=sampler)
                    if sampler is not None
                    else Build(cfg.model.backend, cfg.model.options)
                )
                model = executor.start(build)
            with rec.stage("tasks"):
                rec.add_written("problems", store.write("problems", problems))
                rec.add_view("problems", problems["problem_id"])
            samples, reflections = _sample_and_reflect(
                store, cfg, rec, problems, model, sample_demos, reflect_demos, executor, progress
            )
        finally:
            executor.close()  # the engines' memory goes before the rearrangement
        with rec.stage("rearrange"):
            rows = {
                "problems": problems["problem_id"],
                "samples": samples["sample_id"],
                "reflections": reflections,
            }
            stats, _ = build_traces(
                store,
                cfg.rearrange_with_seed(),
                rows=rows,
                progress=progress,
                on_ids=lambda ids: rec.add_view("traces", ids),
            )
        rec.add_written("traces", stats[counters.WRITTEN])
        rec.drops.update(stats)
        summary = summarize(
            store=str(store.root),
            problems=problems,
            samples=samples,
            stats=stats,
            written=rec.written,
            dry_run=model.source == "scripted",
        )
    echo(format_summary(summary, rec.timings))
    return summary


def _sample_and_reflect(
    store: Store,
    cfg: RunConfig,
    rec,
    problems,
    model: ModelInfo,
    sample_demos,
    reflect_demos,
    executor,
    progress,
) -> tuple[pl.DataFrame, pl.Series]:
    """The chunk loop: per chunk, plan the samples, draw them (executor), commit; then plan its
    reflections, draw them in calls of ``call_size`` samples (executor), commit each call.
    Returns the run's current samples (``INDEX_COLUMNS``) and reflection ids, in chunk order."""
    from tqdm import tqdm

    rec.set_model(
        model.model_id,
        model.model_revision,
        {
            "sample": cfg.sampling.params.__dict__,
            "reflect": cfg.reflection.params.__dict__,
            "few_shot": {"sample": cfg.sampling.few_shot, "reflect": cfg.reflection.few_shot},
            # whether a sample's text is independent of the requests batched with it (None: unknown)
            "batch_invariant": model.batch_invariant,
        },
    )
    variants = pick_variants(list(cfg.sampling.variants), load_variants(cfg.sampling.variants_file))
    s_set = SampleSetting(
        variants=tuple(variants),
        k=cfg.sampling.samples_per_variant,
        params=cfg.sampling.params,
        seed=cfg.seed,
        model=model.model_id,
        revision=model.model_revision,
        demos=sample_demos,
        source=model.source,
    )
    r_set = ReflectSetting(
        per_sample=cfg.reflection.per_sample,
        params=cfg.reflection.params,
        seed=cfg.seed,
        model=model.model_id,
        revision=model.model_revision,
        demos=reflect_demos,
    )
    pids = problems["problem_id"].to_list()
    questions = dict(zip(pids, problems["question"].to_list()))
    tasks = dict(zip(pids, problems["task"].to_list()))
    chunk_of = {pid: i // cfg.chunk_problems for i, pid in enumerate(pids)}
    with rec.stage("index"):  # what the store holds for these problems: ids and flags, read once
        mine = pl.col("problem_id").is_in(problems["problem_id"].implode())
        stored = _by_chunk(store.scan("samples").filter(mine).select(INDEX_COLUMNS).collect(), chunk_of)
        stored_r = _by_chunk(
            store.scan("reflections").filter(mine).select("reflection_id", "problem_id").collect(),
            chunk_of,
        )
    bar = {"disable": not progress, "file": sys.stderr, "dynamic_ncols": True, "unit": "row"}
    n_samples = problems.height * len(variants) * s_set.k
    s_bar = tqdm(total=n_samples, desc="sample+verify", **bar)
    r_bar = tqdm(total=n_samples * r_set.per_sample, desc="reflect", **bar)
    current_samples: dict[int, pl.DataFrame] = {}
    current_reflections: dict[int, pl.Series] = {}

    def sample_jobs():
        for number, start in enumerate(range(0, problems.height, cfg.chunk_problems)):
            with rec.stage("sample"):
                chunk = problems.slice(start, cfg.chunk_problems)
                plan = plan_samples(chunk, s_set, stored.get(number, pl.DataFrame(schema=_index_schema())))
            yield Job(draw_samples, plan, key=number, note=("sample", number))

    def commit_samples(number: int, plan, new: pl.DataFrame) -> None:
        with rec.stage("sample"):
            rec.add_written("samples", store.write("samples", new))
            current = pl.concat([plan.serving.select(INDEX_COLUMNS), new.select(INDEX_COLUMNS)])
            rec.add_view("samples", current["sample_id"])
            current_samples[number] = current
            s_bar.update(current.height)
        with rec.stage("reflect"):
            eligible = current if cfg.rearrange.include_truncated else current.filter(~TRUNCATED)
            wanted = reflection_keys(eligible, tasks, r_set)
            rec.add_view("reflections", wanted["reflection_id"])
            current_reflections[number] = wanted["reflection_id"]
            have = stored_r.get(number, pl.DataFrame(schema={"reflection_id": pl.Utf8}))["reflection_id"]
            plan = plan_reflections(
                wanted, new, questions, tasks, r_set, stored=have, read=lambda ids: _responses(store, ids)
            )
            r_bar.update(plan.reused)
            feed.push(  # each call's rows land atomically
                *(
                    Job(draw_reflections, p, key=number, note=("reflect", number))
                    for p in plan.split(cfg.reflection.call_size)
                )
            )

    feed = Feed(sample_jobs())
    # the model's time goes to the stage whose result it was: sample or reflect
    for job, result in timed(executor.map(feed), rec.timings, lambda job: job.note[0]):
        kind, number = job.note
        if kind == "sample":
            commit_samples(number, job.plan, result)
        else:
            with rec.stage("reflect"):
                rec.add_written("reflections", store.write("reflections", result))
                r_bar.update(result.height)
    s_bar.close()
    r_bar.close()
    order = sorted(current_samples)
    samples = (
        pl.concat([current_samples[n] for n in order]) if order else pl.DataFrame(schema=_index_schema())
    )
    reflections = pl.concat(
        [
            pl.Series("reflection_id", [], pl.Utf8),
            *(current_reflections[n] for n in sorted(current_reflections)),
        ]
    )
    return samples, reflections


def _index_schema() -> dict[str, pl.DataType]:
    from tracekit.schemas import polars_schema

    schema = polars_schema("samples")
    return {c: schema[c] for c in INDEX_COLUMNS}


def _responses(store: Store, sample_ids: pl.Series) -> pl.DataFrame:
    """``sample_id, response`` of stored samples (a resumed run's samples that still miss reflections)."""
    return (
        store.scan("samples")
        .filter(pl.col("sample_id").is_in(sample_ids.implode()))
        .select("sample_id", "response")
        .collect()
    )
