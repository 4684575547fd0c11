"""Measuring commands: ``eval`` (models on held-out problems), ``skills`` (skill analytics)
and ``report`` (one self-contained HTML page)."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli.app import StoreOpt, app


@app.command("eval")
def eval_cmd(
    config: Path = typer.Argument(..., help="Evaluation configuration (YAML); see configs/eval/."),
    store: str | None = typer.Option(
        None, "--store", "-s", help="Override the config's store (a folder or s3://bucket/prefix)."
    ),
    executor: str | None = typer.Option(
        None, "--executor", help="Where the model calls run: local or ray (overrides executor.backend)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Sample models on held-out problems, score them, store the rows and print Table-1-style results."""
    from tracekit.evaluate import load_eval_config, run_eval
    from tracekit.pipeline.config import with_executor

    cfg = with_executor(load_eval_config(config, store=str(store) if store else None), executor)
    run_eval(cfg, progress=not quiet, echo=typer.echo)


@app.command()
def skills(
    store: str = StoreOpt,
    source: str = typer.Option("traces", "--source", help="traces (silver traces) or evals (model outputs)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write every figure to this JSON file."),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", help="Tokenizer (folder or Hub id) for trace lengths; default: whitespace words."
    ),
) -> None:
    """Skill analytics: answer attempts, samples, reflections, verdict F1, retries, lengths."""
    import json

    from tracekit.evaluate.skills import format_skills, skill_tables
    from tracekit.places import check_output_file
    from tracekit.store import Store, atomic_write_text

    if json_out:
        check_output_file(json_out, "skills --json")  # before the work
    tables = skill_tables(Store(store), source=source, tokenizer=tokenizer)
    typer.echo(format_skills(tables))
    if json_out:
        atomic_write_text(json_out, json.dumps(tables, indent=2, default=str))
        typer.echo(f"wrote {json_out}")


@app.command()
def report(
    store: str = StoreOpt,
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write."),
    examples: int = typer.Option(3, help="Example traces shown with their tags highlighted."),
) -> None:
    """Write one self-contained HTML page about a store (plots embedded as PNG)."""
    from tracekit.evaluate.report import write_report
    from tracekit.store import Store

    path = write_report(Store(store), out, examples=examples)
    typer.echo(f"wrote {path}")
