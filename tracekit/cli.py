"""The ``tracekit`` command line: each command is a few lines over the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from tracekit.errors import TracekitError

app = typer.Typer(
    help="Build SkillFactory-style silver reasoning traces: sample, verify, self-verify, rearrange, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StoreOpt = typer.Option(..., "--store", "-s", help="Store directory (a folder of parquet tables).")


def _split(values: Optional[List[str]]) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


@app.command()
def run(
    config: Path = typer.Argument(..., help="Run configuration (YAML); see configs/."),
    store: Optional[Path] = typer.Option(None, "--store", "-s", help="Override the config's store directory."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Use the scripted sampler instead of a model (no real data; store STORE-dry-run)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Build a silver-trace dataset end to end: tasks, sample, verify, reflect, filter, rearrange."""
    from tracekit.config import load_config
    from tracekit.pipeline import run_pipeline

    cfg = load_config(config, store=str(store) if store else None)
    sampler = None
    if dry_run:  # canned responses must never mix with real ones: a separate store unless one is named
        import dataclasses

        from tracekit.sampling.scripted import ScriptedSampler

        sampler = ScriptedSampler(model_id="scripted-dry-run")
        if store is None:
            cfg = dataclasses.replace(cfg, store=cfg.store.rstrip("/") + "-dry-run")
    run_pipeline(cfg, sampler=sampler, progress=not quiet, echo=typer.echo)


@app.command("import-skillfactory")
def import_skillfactory_cmd(
    raw: Path = typer.Argument(..., help="Raw file in the SkillFactory reference layout (.parquet or .jsonl)."),
    store: Path = StoreOpt,
    task: str = typer.Option("skillfactory", help="Task name recorded on the imported problems."),
    model: str = typer.Option("unknown", help="Model name recorded on the imported samples."),
) -> None:
    """Import existing raw samples and reflections (reference layout) into a store."""
    from tracekit.manifest import RunRecorder
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    st = Store(store, create=True)
    rec = RunRecorder("import-skillfactory", {"raw": str(raw), "task": task, "model": model}, model=model)
    with rec.stage("import"):
        counts = import_skillfactory(raw, st, task=task, model=model)
    rec.counts = dict(counts)
    rec.finish(st)
    typer.echo(
        f"imported {counts['raw_rows']} raw rows: {counts['problems']} new problems, "
        f"{counts['samples']} new samples, {counts['reflections']} new reflections -> {store}"
    )


@app.command()
def rearrange(
    store: Path = StoreOpt,
    formats: List[str] = typer.Option(["*C_full"], "--formats", "-f", help="Trace formats, comma-separated or repeated: 0C, *C, *C_full, *C*IC, *CC, random, no_reflection, alg1."),
    n_max: int = typer.Option(5, "--n-max", help="Most samples in one trace (paper: 5)."),
    repeats: int = typer.Option(1, help="Draws of each format per problem."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    draw_n: bool = typer.Option(False, "--draw-n", help="*C, *C*IC, *CC: draw N in [2, n-max] instead of n-max."),
    unique_variants: bool = typer.Option(False, "--unique-variants", help="*C family: one sample per prompt variant."),
    min_samples: Optional[int] = typer.Option(None, "--min-samples", help="Surviving samples a problem needs (default: n-max)."),
    include_truncated: bool = typer.Option(False, "--include-truncated", help="Allow responses cut by the token limit."),
    phrases: Optional[Path] = typer.Option(None, help="Phrase bank file (YAML/JSON); default: tracekit's own."),
    replace: bool = typer.Option(False, "--replace", help="Delete existing traces first."),
) -> None:
    """Filter reflections and rearrange kept samples into traces."""
    from tracekit.manifest import RunRecorder
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.report import format_counters
    from tracekit.store import Store

    cfg = RearrangeConfig(
        formats=tuple(_split(formats)), n_max=n_max, repeats=repeats, seed=seed, draw_n=draw_n,
        unique_variants=unique_variants, min_samples=min_samples, include_truncated=include_truncated,
        phrases=str(phrases) if phrases else None,
    )
    st = Store(store)
    rec = RunRecorder("rearrange", cfg.__dict__, seed=seed)
    with rec.stage("rearrange"):
        stats = rearrange_store(st, cfg, replace=replace)
    rec.drops = stats
    rec.finish(st)
    typer.echo(format_counters(stats))
    typer.echo(f"{stats['traces/written']} new traces in {store}/traces")


@app.command()
def export(
    store: Path = StoreOpt,
    to: str = typer.Option(..., "--to", help="Target layout: trl-sft (traces) or trl-grpo (problems with verifier fields)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    formats: Optional[List[str]] = typer.Option(None, "--formats", "-f", help="Only these trace formats."),
) -> None:
    """Export traces for a trainer or hub."""
    from tracekit.errors import unknown_name
    from tracekit.export import EXPORTERS
    from tracekit.store import Store

    if to not in EXPORTERS:
        raise unknown_name("export target", to, list(EXPORTERS))
    path = EXPORTERS[to](Store(store), out, formats=_split(formats) or None)
    typer.echo(f"wrote {path}")


@app.command()
def info(store: Path = StoreOpt) -> None:
    """Row counts of every table and the last runs."""
    import json

    from tracekit.store import Store

    st = Store(store)
    for table, n in st.counts().items():
        typer.echo(f"{table:<12}{n:>10}")
    runs = st.read("runs", columns=["command", "started_at", "timings_json"]) if st.count("runs") else None
    if runs is not None:
        typer.echo("\nruns:")
        for command, started, timings in runs.tail(10).iter_rows():
            typer.echo(f"  {started}  {command:<22} {json.loads(timings).get('total', 0):.1f}s")


tasks_app = typer.Typer(help="The task registry: generators and exact verifiers.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")


@tasks_app.command("list")
def tasks_list() -> None:
    """Show every task: name, difficulty knobs and an example question."""
    from tracekit.tasks import TASKS

    for name, task in TASKS.items():
        typer.echo(f"{name}: {task.description}")
        for knob, doc in task.knobs.items():
            typer.echo(f"    {knob}: {doc}")
        typer.echo(f"    example: {task.example()}\n")


@app.command()
def score(
    src: Path = typer.Argument(..., help="jsonl: the task's problem fields plus 'response' on each line."),
    task: str = typer.Option(..., "--task", "-t", help="Task name (see `tracekit tasks list`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output jsonl: each input line plus is_correct and reason."),
) -> None:
    """Score any model's outputs with the task's exact verifier."""
    from tracekit.errors import InputFormatError
    from tracekit.store import atomic_write_text
    from tracekit.tasks import get_task
    from tracekit.tasks.base import score_jsonl

    verifier = get_task(task)
    if not src.is_file():
        raise InputFormatError(f"input file {src} does not exist.")
    import io

    buffer = io.StringIO()
    with open(src, encoding="utf-8", errors="replace") as fh:
        scored, errors = score_jsonl(verifier, fh, buffer)
    atomic_write_text(out, buffer.getvalue())
    for err in errors:
        typer.echo(f"{src}: {err}", err=True)
    typer.echo(f"scored {scored} line(s) -> {out}" + (f"; {len(errors)} malformed line(s) skipped" if errors else ""))
    if errors:
        raise typer.Exit(1)


@app.command()
def schema(table: str = typer.Argument(..., help="problems, samples, reflections, traces or runs.")) -> None:
    """Print a table's columns and types."""
    from tracekit.schemas import polars_schema

    for name, dtype in polars_schema(table).items():
        typer.echo(f"{name:<20}{dtype}")


def main() -> None:
    try:
        app(standalone_mode=True)
    except TracekitError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
