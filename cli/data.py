"""Store commands: import, rearrange, export, info, schema."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit import counters
from tracekit.cli.app import StoreOpt, app, at_least, listed
from tracekit.cli.config_options import config_options, given
from tracekit.rearrange.config import RearrangeConfig


@app.command("import-skillfactory")
def import_skillfactory_cmd(
    raw: Path = typer.Argument(
        ..., help="Raw file in the SkillFactory reference layout (.parquet or .jsonl)."
    ),
    store: str = StoreOpt,
    task: str = typer.Option(
        "skillfactory",
        help="skillfactory (a label: no verifier) or countdown (numbers and target read from each question, "
        "so GRPO rewards and evaluation can score the problems).",
    ),
    model: str = typer.Option("unknown", help="Model name recorded on the imported samples."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Import existing raw samples and reflections (reference layout) into a store."""
    from tracekit.reference import import_skillfactory
    from tracekit.store.tables import created_store

    with created_store(store) as st:  # a failed import into a new store leaves no store behind
        counts = import_skillfactory(raw, st, task=task, model=model, progress=not quiet)
    typer.echo(
        f"imported {counts['raw_rows']} raw rows: {counts['problems']} new problems, "
        f"{counts['samples']} new samples, {counts['reflections']} new reflections -> {store}"
    )


@app.command()
@config_options(
    RearrangeConfig, short={"formats": "-f"}, panel="Rearrangement (the rearrange: section of a run config)"
)
def rearrange(
    store: str = StoreOpt,
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Replace the existing traces (in one commit, when the new ones are complete).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    **fields,
) -> None:
    """Filter reflections and rearrange kept samples into traces.

    The options are the fields of the run config's rearrange: section, with the same names.
    """
    from tracekit.pipeline.summary import format_counters
    from tracekit.rearrange import rearrange_store
    from tracekit.store import Store

    cfg = RearrangeConfig(**given(RearrangeConfig, fields))
    stats = rearrange_store(Store(store), cfg, replace=replace, progress=not quiet)
    typer.echo(format_counters(stats))
    typer.echo(f"{stats[counters.WRITTEN]} new traces in {store}/traces")


@app.command()
def export(
    store: str = StoreOpt,
    to: str = typer.Option(
        ...,
        "--to",
        help="Target: trl-sft, trl-grpo, hf (datasets folders + card), verl, llamafactory, skillfactory.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    formats: list[str] | None = typer.Option(None, "--formats", "-f", help="Only these trace formats."),
    split: str | None = typer.Option(None, help="trl-grpo: only this split of the problems."),
    tables: list[str] | None = typer.Option(None, "--tables", help="hf: only these configs."),
    max_length: int | None = typer.Option(None, "--max-length", help="hf: the card's length line (8192)."),
    tokenizer: str | None = typer.Option(
        None, help="hf: tokenizer counting trace lengths (default: approx.)."
    ),
    name: str | None = typer.Option(None, help="llamafactory: dataset name (tracekit_sft)."),
) -> None:
    """Export a store for a trainer or hub: one file per split, a manifest beside the data."""
    from tracekit.export import run_export
    from tracekit.store import Store

    given = {
        "formats": listed(formats, "--formats"),
        "split": split,
        "tables": listed(tables, "--tables"),
        "max_length": at_least(max_length, "--max-length", 1, "8192 (tokens)"),
        "tokenizer": tokenizer,
        "name": name,
    }
    options = {k: v for k, v in given.items() if v is not None}
    written = run_export(Store(store), to, out, **options)
    for name_, path in written.files.items():
        typer.echo(f"wrote {path}" + (f"  ({written.counts[name_]} rows)" if name_ in written.counts else ""))


@app.command()
def info(
    store: str = StoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Everything as JSON (every run's config in full)."),
    runs: int = typer.Option(10, "--runs", help="How many of the last runs to list."),
) -> None:
    """What a store holds: rows (all and current view), tasks, splits, models, traces per format and
    configuration, size, the runs with their configs, and warnings (integrity, history, orphans)."""
    import json

    from tracekit.store import Store
    from tracekit.store.info import format_info, store_info

    at_least(runs, "--runs", 1, "10 (the last 10 runs; --json lists every run)")
    data = store_info(Store(store))
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else format_info(data, runs=runs))


@app.command()
def schema(table: str = typer.Argument(..., help="problems, samples, reflections, traces or runs.")) -> None:
    """Print a table's columns and types."""
    from tracekit.schemas import polars_schema

    for name, dtype in polars_schema(table).items():
        typer.echo(f"{name:<20}{dtype}")
