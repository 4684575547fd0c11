"""``tracekit eval``: sample models on held-out problems, score them, store and tabulate.

For every model of the config, problems are processed in chunks of ``chunk_problems``;
each chunk's rows are written to the ``evals`` table atomically before the next chunk,
so a run killed at any moment loses at most one chunk, and running the same command
again reuses every finished row. Requests are planned and keyed by the sample stage
(:func:`tracekit.sample.plan_samples`: prompt, model and revision, sampling settings, seed,
index; which stored row serves a key is :func:`tracekit.sample.serving_rows`' rule), within
each model's label and revision; every response is scored by the task's one verifier
(:meth:`Task.score`). With budget forcing, every base response
is also continued (see :mod:`tracekit.evaluate.budget`) into a ``forced`` row.
"""

from __future__ import annotations

import gc
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracekit.errors import warn
from tracekit.evaluate.budget import Forced, Start, force_budget
from tracekit.evaluate.config import BudgetForcing, EvalConfig, EvalModel
from tracekit.evaluate.decontaminate import decontaminate
from tracekit.evaluate.problems import eval_problems
from tracekit.evaluate.results import current_evals, format_results, results_long
from tracekit.executor import Build, Executor, Feed, Job, ModelInfo, make_executor
from tracekit.executor.base import timed
from tracekit.ids import seed_for, stable_hash
from tracekit.prompts import load_variants, make_demos, pick_variants
from tracekit.sample import SampleSetting, draw_samples, plan_samples
from tracekit.sampling.base import Sampler
from tracekit.schemas import polars_schema
from tracekit.store import Store
from tracekit.store.manifest import recording
from tracekit.store.tables import created_store
from tracekit.store.views import view
from tracekit.tasks import get_task, load_recorded_tasks, task_sources

LINEAGE_FILE = "tracekit-lineage.json"  # a checkpoint's training lineage, copied into every eval row


def fingerprint(folder: str | None) -> str | None:
    """A revision for a local model folder: names, sizes and the first and last MiB of its files."""
    import xxhash

    if not folder or not Path(folder).is_dir():
        return None
    h = xxhash.xxh3_128()
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.suffix not in (".json", ".safetensors", ".bin", ".gguf", ".model"):
            continue
        size = path.stat().st_size
        h.update(f"{path.name}|{size}|".encode())
        with open(path, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                h.update(fh.read())
    return "local:" + h.hexdigest()[:20]


def _lineage(spec: EvalModel, model: ModelInfo, revision: str | None, cfg_hash: str, store: str) -> str:
    source = spec.options.get("model")
    out: dict[str, Any] = {
        "backend": spec.backend,
        "model": model.model_id,
        "revision": revision,
        "eval_config_hash": cfg_hash,
        "store": store,
    }
    if source and Path(source, LINEAGE_FILE).is_file():
        try:
            out["train"] = json.loads(Path(source, LINEAGE_FILE).read_text(encoding="utf-8"))
        except ValueError:
            out["train"] = "unreadable"
    return json.dumps(out, sort_keys=True, default=str)


def _demos(cfg: EvalConfig, few_shot: int, exclude: set[str]) -> dict:
    """Solved demonstrations per generated task (its first difficulty's knobs) for the sampling prompt."""
    tasks = [(t.name, t.difficulties()[0]) for t in cfg.tasks if not t.path]
    return make_demos(tasks, seed=cfg.seed, exclude=exclude, sample_few_shot=few_shot)[0]


def _rows(frame: pl.DataFrame, problems: pl.DataFrame, **const: Any) -> pl.DataFrame:
    """``evals`` rows from generated responses: problem fields joined, scored by the task's verifier."""
    info = problems.select("problem_id", "task", "difficulty", "answer", "meta")
    frame = frame.join(info, on="problem_id", how="left")
    checks = [
        get_task(task).score(response, json.loads(meta))
        for task, meta, response in frame.select("task", "meta", "response").iter_rows()
    ]
    frame = frame.with_columns(
        extracted_answer=pl.Series([c.answer for c in checks], dtype=pl.Utf8),
        is_correct=pl.Series([c.is_correct for c in checks], dtype=pl.Boolean),
        reason=pl.Series([c.reason for c in checks], dtype=pl.Utf8),
        **{k: pl.lit(v, dtype=polars_schema("evals")[k]) for k, v in const.items()},
    )
    return frame.select(list(polars_schema("evals")))


def _base_rows(new: pl.DataFrame, problems, label, revision, cfg_hash, lineage) -> pl.DataFrame:
    ids = [
        "e-" + stable_hash(label, revision, "base", sid)
        for sid in new["sample_id"].to_list()  # sample_id: the request key and its max_tokens
    ]
    frame = new.select(
        "sample_key",
        "problem_id",
        "sample_index",
        "model",
        "max_tokens",
        "prompt",
        "response",
        "finish_reason",
        "n_tokens",
    ).with_columns(eval_id=pl.Series(ids, dtype=pl.Utf8))
    return _rows(
        frame,
        problems,
        label=label,
        model_revision=revision,
        condition="base",
        n_forced=0,
        config_hash=cfg_hash,
        lineage_json=lineage,
    )


@dataclass(frozen=True)
class ForcePlan:
    """The budget forcing a chunk still needs: its stored ``base`` rows (with the ``forced_id`` each
    gets) and the first responses to continue."""

    base: pl.DataFrame
    starts: tuple[Start, ...]
    forcing: BudgetForcing


def plan_forcing(base: pl.DataFrame, done: set[str], cfg: EvalConfig) -> ForcePlan:
    """Continue the current ``base`` rows whose forced row is not among the ``done`` ids."""
    bf = cfg.budget_forcing
    setting = stable_hash(bf.trigger, bf.cut_before, bf.forces, bf.total_tokens)
    base = base.with_columns(
        forced_id=pl.Series(["e-" + stable_hash(e, "forced", setting) for e in base["eval_id"].to_list()])
    ).filter(~pl.col("forced_id").is_in(list(done)))
    starts = tuple(
        Start(
            messages=tuple(json.loads(prompt)),
            params=cfg.params,
            seed=seed_for(cfg.seed, "force", eid) % (2**31),
            text=response,
            finish_reason=finish,
            n_tokens=n_tokens,
        )
        for eid, prompt, response, finish, n_tokens in base.select(
            "eval_id", "prompt", "response", "finish_reason", "n_tokens"
        ).iter_rows()
    )
    return ForcePlan(base, starts, bf)


def draw_forced(plan: ForcePlan, sampler: Sampler) -> list[Forced]:
    """Do a forcing plan's work (the only step of it that calls the model)."""
    return force_budget(sampler, list(plan.starts), plan.forcing) if plan.starts else []


def _forced_rows(plan: ForcePlan, forced: list[Forced], problems, cfg_hash: str) -> pl.DataFrame:
    base = plan.base
    if base.height == 0:
        return pl.DataFrame(schema=polars_schema("evals"))
    frame = base.select(
        "forced_id", "sample_key", "label", "model", "model_revision", "problem_id", "sample_index", "prompt"
    ).rename({"forced_id": "eval_id"})
    frame = frame.with_columns(
        response=pl.Series([f.text for f in forced], dtype=pl.Utf8),
        finish_reason=pl.Series([f.finish_reason for f in forced], dtype=pl.Utf8),
        n_tokens=pl.Series([f.n_tokens for f in forced], dtype=pl.Int64),
        n_forced=pl.Series([f.n_forced for f in forced], dtype=pl.Int64),
        max_tokens=pl.lit(plan.forcing.total_tokens, dtype=pl.Int64),
    )
    lineage = base["lineage_json"][0]
    return _rows(frame, problems, condition="forced", config_hash=cfg_hash, lineage_json=lineage)


def run_eval(
    cfg: EvalConfig,
    *,
    samplers: dict[str, Sampler] | None = None,
    executor: Callable[[], Executor] | None = None,
    progress: bool = True,
    echo=print,
) -> dict[str, Any]:
    """Evaluate every model of ``cfg``; print and return the results (see the module docstring).

    ``samplers`` maps a model's position in ``cfg.models`` (as a string) or its label to a
    ready backend (tests; otherwise each is built from the config, one model at a time).
    ``executor`` makes the executor of each model in turn (default: the one ``cfg.executor``
    names); it is closed, and its engines' memory freed, before the next model.
    """
    with created_store(cfg.store) as store:  # a failed first eval into a new store leaves no store behind
        return _run_eval(
            store,
            cfg,
            samplers=samplers,
            executor=executor or (lambda: make_executor(cfg.executor)),
            progress=progress,
            echo=echo,
        )


def _run_eval(store: Store, cfg: EvalConfig, *, samplers, executor, progress: bool, echo) -> dict[str, Any]:
    cfg_dict = json.loads(cfg.to_json())
    cfg_hash = stable_hash(cfg.hashed())  # the rows' hash: the executor changes no row
    recorded = {**cfg_dict, "task_sources": task_sources(spec.name for spec in cfg.tasks)}
    with recording(store, "eval", recorded, seed=cfg.seed) as rec:
        with rec.stage("problems"):
            problems = eval_problems(cfg)
            training = _training_problems(cfg)
            report = None
            if cfg.decontaminate.enabled:
                problems, report = decontaminate(problems, training, n=cfg.decontaminate.ngram)
                rec.drops.update(f"decontaminate/{r['rule']}" for r in report.removed)
        if report is not None:
            echo(report.format())
            if report.training_problems == 0:
                where = ", ".join(cfg.decontaminate.against) or cfg.store
                warn(
                    f"decontamination found no training problems in {where}: nothing was checked. "
                    "Evaluate into the store that holds the training data, or name it in "
                    "decontaminate.against."
                )
        variants = pick_variants([cfg.variant], load_variants(cfg.variants_file))
        new_rows: Counter = Counter()
        labels, models = [], []
        for position, spec in enumerate(cfg.models):
            given = (samplers or {}).get(str(position)) or (samplers or {}).get(spec.label or "")
            ex = executor()
            try:
                with rec.stage("load_model"):
                    model = ex.start(Build(ready=given) if given else Build(spec.backend, spec.options))
                label = spec.label or model.model_id
                revision = model.model_revision or fingerprint(spec.options.get("model"))
                labels.append(label)
                models.append(f"{label}={model.model_id}@{revision}")
                few_shot = cfg.few_shot if spec.few_shot is None else spec.few_shot
                setting = SampleSetting(
                    variants=tuple(variants),
                    k=cfg.k,
                    params=cfg.params,
                    seed=cfg.seed,
                    model=model.model_id,
                    revision=revision,
                    demos=_demos(cfg, few_shot, set(problems["problem_id"].to_list())),
                )
                lineage = _lineage(spec, model, revision, cfg_hash, cfg.store)
                out = _eval_model(
                    store, cfg, rec, problems, setting, label, revision, lineage, cfg_hash, ex, progress
                )
                new_rows.update(out)
            finally:
                ex.close()  # one model in memory at a time
            del given
            gc.collect()
        evals = current_evals(view(store, "evals").collect())
        conditions = ["base", "forced"] if cfg.budget_forcing is not None else ["base"]
        evals = evals.filter(  # this config's models, problems, samples and conditions
            pl.col("label").is_in(labels)
            & pl.col("problem_id").is_in(problems["problem_id"].implode())
            & (pl.col("sample_index") < cfg.k)
            & pl.col("condition").is_in(conditions)
        )
        long = results_long(evals, pass_k=cfg.pass_k)
        rec.set_model(", ".join(models), None, {"params": cfg.params.__dict__})
        rec.add_written("evals", sum(new_rows.values()))
    echo(format_results(long))
    return {
        "store": str(store.root),
        "problems": problems.height,
        "new_rows": dict(+new_rows),  # kinds with new rows only
        "decontamination": report.to_dict() if report else None,
        "results": long.to_dicts(),
        "labels": labels,
    }


def _eval_model(
    store: Store, cfg: EvalConfig, rec, problems, setting, label, revision, lineage, cfg_hash, ex, progress
) -> Counter:
    """One model's chunk loop: per chunk, plan the base samples, draw them (executor), commit; then,
    with budget forcing, plan the forcing of the chunk's current base rows, draw it, commit."""
    from tqdm import tqdm

    new_rows: Counter = Counter()
    bar = tqdm(
        total=problems.height * cfg.k,
        desc=f"eval {label}",
        unit="row",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )

    def base_jobs():
        for number, start in enumerate(range(0, problems.height, cfg.chunk_problems)):
            chunk = problems.slice(start, cfg.chunk_problems)
            with rec.stage("sample"):
                # stored base rows in the sample stage's index shape (an eval id stands for the sample id)
                have = (
                    _mine(store, label, revision, chunk)
                    .filter(pl.col("condition") == "base")
                    .select(
                        pl.col("eval_id").alias("sample_id"),
                        "sample_key",
                        "max_tokens",
                        "finish_reason",
                        "n_tokens",
                    )
                )
                plan = plan_samples(chunk, setting, have)
            yield Job(draw_samples, plan, key=number, note=("sample", chunk))

    feed = Feed(base_jobs())
    for job, result in timed(ex.map(feed), rec.timings, lambda job: job.note[0]):
        kind, chunk = job.note
        if kind == "sample":
            with rec.stage("sample"):
                if result.height:
                    rows = _base_rows(result, chunk, label, revision, cfg_hash, lineage)
                    new_rows["base"] += store.write("evals", rows)
            if cfg.budget_forcing is None:
                bar.update(chunk.height * cfg.k)
                continue
            with rec.stage("budget_forcing"):
                current = current_evals(_mine(store, label, revision, chunk))
                done = set(current.filter(pl.col("condition") == "forced")["eval_id"].to_list())
                plan = plan_forcing(current.filter(pl.col("condition") == "base"), done, cfg)
            feed.push(Job(draw_forced, plan, key=job.key, note=("budget_forcing", chunk)))
        else:
            with rec.stage("budget_forcing"):
                new_rows["forced"] += store.write("evals", _forced_rows(job.plan, result, chunk, cfg_hash))
            bar.update(chunk.height * cfg.k)
    bar.close()
    return new_rows


def _mine(store: Store, label: str, revision: str | None, chunk: pl.DataFrame) -> pl.DataFrame:
    """This model's stored rows for the chunk's problems (every condition), in store order."""
    return (
        view(store, "evals")
        .filter(
            (pl.col("label") == label)
            & pl.col("model_revision").eq_missing(pl.lit(revision, dtype=pl.Utf8))
            & pl.col("problem_id").is_in(chunk["problem_id"].implode())
        )
        .collect()
    )


def _training_problems(cfg: EvalConfig) -> pl.DataFrame:
    cols = ["problem_id", "task", "question", "meta"]
    frames = []
    for path in cfg.decontaminate.against or (cfg.store,):
        if not cfg.decontaminate.against and not Path(path).exists():
            continue  # a new eval store holds no training problems
        training = Store(path)
        load_recorded_tasks(training)  # its tasks from outside the package decide what overlaps
        frames.append(view(training, "problems").select(cols).collect())
    return pl.concat(frames) if frames else pl.DataFrame(schema={c: pl.Utf8 for c in cols})
