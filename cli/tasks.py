"""``tracekit tasks`` and ``tracekit score``: the task registry and scoring outputs."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli.app import app

tasks_app = typer.Typer(
    help="The task registry: generators and exact verifiers.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(tasks_app, name="tasks")


@tasks_app.command("list")
def tasks_list(
    task: list[str] = typer.Option(
        [],
        "--task",
        "-t",
        help="Show only these tasks: a name, path/to/file.py:ClassName or package.module:ClassName "
        "(loaded and contract-checked). Repeatable.",
    ),
) -> None:
    """Show every task (built-in and installed through the tracekit.tasks entry points): name,
    difficulty knobs and an example question."""
    from tracekit.tasks import listed_tasks

    for name, found in listed_tasks(task).items():
        source = f"  [{found.source}]" if found.source else ""
        found = found.task
        typer.echo(f"{name}: {found.description}{source}")
        for knob, doc in found.knobs.items():
            typer.echo(f"    {knob}: {doc}")
        try:
            example = found.example()
        except (TypeError, ValueError) as exc:  # a task whose options have no defaults
            example = f"(none without options: {exc})"
        typer.echo(f"    example: {example}\n")


@app.command()
def score(
    src: Path = typer.Argument(..., help="jsonl: the task's problem fields plus 'response' on each line."),
    task: str = typer.Option(
        ...,
        "--task",
        "-t",
        help="Task name (see `tracekit tasks list`), path/to/file.py:ClassName or package.module:ClassName.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output jsonl: each input line plus is_correct and reason."
    ),
) -> None:
    """Score any model's outputs with the task's exact verifier.

    A malformed line is reported with its number and skipped; the exit status is then 1.
    """
    from tracekit.score_files import score_file

    scored, errors = score_file(task, src, out)
    for err in errors:
        typer.echo(f"{src}: {err}", err=True)
    typer.echo(
        f"scored {scored} line(s) -> {out}" + (f"; {len(errors)} malformed line(s) skipped" if errors else "")
    )
    if errors:
        raise typer.Exit(1)
