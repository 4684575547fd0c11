"""Store commands: import, rearrange, export, info, schema."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli.app import StoreOpt, app, split_values


@app.command("import-skillfactory")
def import_skillfactory_cmd(
    raw: Path = typer.Argument(
        ..., help="Raw file in the SkillFactory reference layout (.parquet or .jsonl)."
    ),
    store: Path = StoreOpt,
    task: str = typer.Option("skillfactory", help="Task name recorded on the imported problems."),
    model: str = typer.Option("unknown", help="Model name recorded on the imported samples."),
) -> None:
    """Import existing raw samples and reflections (reference layout) into a store."""
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    counts = import_skillfactory(raw, Store(store, create=True), task=task, model=model)
    typer.echo(
        f"imported {counts['raw_rows']} raw rows: {counts['problems']} new problems, "
        f"{counts['samples']} new samples, {counts['reflections']} new reflections -> {store}"
    )


@app.command()
def rearrange(
    store: Path = StoreOpt,
    formats: list[str] = typer.Option(
        ["*C_full"],
        "--formats",
        "-f",
        help="Trace formats, comma-separated or repeated: 0C, *C, *C_full, *C*IC, *CC, random, no_reflection, alg1.",
    ),
    n_max: int = typer.Option(5, "--n-max", help="Most samples in one trace (paper: 5)."),
    repeats: int = typer.Option(1, help="Draws of each format per problem."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    draw_n: bool = typer.Option(
        False, "--draw-n", help="*C, *C*IC, *CC: draw N in [2, n-max] instead of n-max."
    ),
    unique_variants: bool = typer.Option(
        False, "--unique-variants", help="*C family: one sample per prompt variant."
    ),
    min_samples: int | None = typer.Option(
        None, "--min-samples", help="Surviving samples a problem needs (default: n-max)."
    ),
    include_truncated: bool = typer.Option(
        False, "--include-truncated", help="Allow responses cut by the token limit."
    ),
    phrases: Path | None = typer.Option(None, help="Phrase bank file (YAML/JSON); default: tracekit's own."),
    replace: bool = typer.Option(False, "--replace", help="Delete existing traces first."),
) -> None:
    """Filter reflections and rearrange kept samples into traces."""
    from tracekit.pipeline.summary import format_counters
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.store import Store

    cfg = RearrangeConfig(
        formats=tuple(split_values(formats)),
        n_max=n_max,
        repeats=repeats,
        seed=seed,
        draw_n=draw_n,
        unique_variants=unique_variants,
        min_samples=min_samples,
        include_truncated=include_truncated,
        phrases=str(phrases) if phrases else None,
    )
    stats = rearrange_store(Store(store), cfg, replace=replace)
    typer.echo(format_counters(stats))
    typer.echo(f"{stats['traces/written']} new traces in {store}/traces")


@app.command()
def export(
    store: Path = StoreOpt,
    to: str = typer.Option(
        ..., "--to", help="Target layout: trl-sft (traces) or trl-grpo (problems with verifier fields)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    formats: list[str] | None = typer.Option(None, "--formats", "-f", help="Only these trace formats."),
) -> None:
    """Export traces for a trainer or hub."""
    from tracekit.errors import unknown_name
    from tracekit.export import EXPORTERS
    from tracekit.store import Store
    from tracekit.store.manifest import recording
    from tracekit.store.views import view_runs

    if to not in EXPORTERS:
        raise unknown_name("export target", to, list(EXPORTERS))
    st = Store(store)
    chosen = split_values(formats) or None
    views = {t: view_runs(st, t) for t in ("problems", "traces")}  # which runs' rows are exported
    config = {"to": to, "out": str(out), "formats": chosen, "views": views}
    with recording(st, "export", config) as rec, rec.stage("export"):
        path = EXPORTERS[to](st, out, formats=chosen)
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


@app.command()
def schema(table: str = typer.Argument(..., help="problems, samples, reflections, traces or runs.")) -> None:
    """Print a table's columns and types."""
    from tracekit.schemas import polars_schema

    for name, dtype in polars_schema(table).items():
        typer.echo(f"{name:<20}{dtype}")
