"""``tracekit run``: build a silver-trace dataset from a run configuration."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli.app import app


@app.command()
def run(
    config: Path = typer.Argument(..., help="Run configuration (YAML); see configs/."),
    store: Path | None = typer.Option(None, "--store", "-s", help="Override the config's store directory."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Use the scripted sampler instead of a model (no real data; store STORE-dry-run).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Build a silver-trace dataset end to end: tasks, sample, verify, reflect, filter, rearrange."""
    from tracekit.pipeline.config import load_config
    from tracekit.pipeline.run import run_pipeline

    cfg = load_config(config, store=str(store) if store else None)
    sampler = None
    if dry_run:  # canned responses must never mix with real ones: a separate store unless one is named
        import dataclasses

        from tracekit.sampling.scripted import ScriptedSampler

        sampler = ScriptedSampler(model_id="scripted-dry-run")
        if store is None:
            cfg = dataclasses.replace(cfg, store=cfg.store.rstrip("/") + "-dry-run")
    run_pipeline(cfg, sampler=sampler, progress=not quiet, echo=typer.echo)
