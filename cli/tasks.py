"""``tracekit tasks`` and ``tracekit score``: the task registry and scoring outputs."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli.app import app

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
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output jsonl: each input line plus is_correct and reason."
    ),
) -> None:
    """Score any model's outputs with the task's exact verifier."""
    from tracekit.errors import InputFormatError
    from tracekit.store import atomic_write_text
    from tracekit.tasks import get_task
    from tracekit.verify import score_jsonl

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
    typer.echo(
        f"scored {scored} line(s) -> {out}" + (f"; {len(errors)} malformed line(s) skipped" if errors else "")
    )
    if errors:
        raise typer.Exit(1)
