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
    executor: str | None = typer.Option(
        None, "--executor", help="Where the model calls run: local or ray (overrides executor.backend)."
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="I/N: only shard I of N of the problems (several drivers of one config on one store, "
        "e.g. a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Build a silver-trace dataset end to end: tasks, sample, verify, reflect, filter, rearrange."""
    from tracekit.pipeline.config import load_config, with_executor
    from tracekit.pipeline.run import run_pipeline
    from tracekit.pipeline.shard import Shard

    part = Shard.parse(shard) if shard is not None else None
    cfg = with_executor(load_config(config, store=str(store) if store else None), executor)
    if dry_run and store is None:  # canned data never mixes with real data: a store of its own
        import dataclasses

        cfg = dataclasses.replace(cfg, store=cfg.store.rstrip("/") + "-dry-run")
    run_pipeline(cfg, shard=part, dry_run=dry_run, progress=not quiet, echo=typer.echo)
