"""``tracekit run``: build a silver-trace dataset from a run configuration."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli.app import app


@app.command()
def run(
    config: Path = typer.Argument(..., help="Run configuration (YAML); see configs/."),
    store: str | None = typer.Option(
        None, "--store", "-s", help="Override the config's store (a folder or s3://bucket/prefix)."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Walk every stage with canned, well-formed scripted data instead of a model "
        "(store STORE-dry-run; refuses a store holding real data).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Build a silver-trace dataset end to end: tasks, sample, verify, reflect, filter, rearrange."""
    from tracekit.pipeline.config import load_config
    from tracekit.pipeline.run import run_pipeline

    cfg = load_config(config, store=str(store) if store else None)
    if dry_run and store is None:  # canned data never mixes with real data: a store of its own
        import dataclasses

        cfg = dataclasses.replace(cfg, store=cfg.store.rstrip("/") + "-dry-run")
    run_pipeline(cfg, dry_run=dry_run, progress=not quiet, echo=typer.echo)
