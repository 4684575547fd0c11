"""Delivery commands: ``push`` (a store to a Hub dataset repo with its card) and ``train`` (TRL SFT/GRPO)."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli.app import StoreOpt, app, at_least, listed


@app.command()
def push(
    repo: str = typer.Argument(..., help="Dataset repo: ORG/NAME (or datasets/ORG/NAME, or its URL)."),
    store: str = StoreOpt,
    private: bool = typer.Option(
        False, "--private", help="Create the repo private (an existing repo keeps its own)."
    ),
    tables: list[str] | None = typer.Option(
        None, "--tables", help="Configs to push: problems, samples, reflections, sft, grpo (default: all)."
    ),
    revision: str | None = typer.Option(
        None, help="Branch to push to (created when missing; default: main)."
    ),
    formats: list[str] | None = typer.Option(
        None, "--formats", "-f", help="sft config: only these trace formats."
    ),
    max_length: int = typer.Option(8192, "--max-length", help="The card's trace-length line (tokens)."),
    tokenizer: str | None = typer.Option(
        None,
        help="Tokenizer counting trace lengths for the card (a folder or cached id; default: approximation).",
    ),
) -> None:
    """Push every config of a store to the Hub, with a generated dataset card. The token comes from
    HF_TOKEN or `hf auth login` and is never printed or stored."""
    import time

    from tracekit.export import record_run
    from tracekit.export.hub import push as push_store
    from tracekit.store import Store

    st = Store(store)
    options = {
        "private": private,
        "tables": listed(tables, "--tables"),
        "revision": revision,
        "formats": listed(formats, "--formats"),
        "max_length": at_least(max_length, "--max-length", 1, "8192 (tokens)"),
        "tokenizer": tokenizer,
    }
    started = time.perf_counter()
    result = push_store(st, repo, echo=typer.echo, **options)
    counts = {f"{c}/{s}": n for c, splits in result["counts"].items() for s, n in splits.items()}
    config = {"repo_id": result["repo_id"], "endpoint": result["endpoint"], **options}
    record_run(st, "push", config, counts, seconds=time.perf_counter() - started)
    typer.echo(f"pushed {len(result['counts'])} configs to datasets/{result['repo_id']}")


@app.command()
def train(
    kind: str = typer.Argument(..., help="sft or grpo."),
    config: Path = typer.Argument(..., help="YAML: TRL's SFTConfig/GRPOConfig fields plus model and data."),
    drop_no_signal: bool = typer.Option(
        False,
        "--drop-no-signal",
        help="grpo: leave out problems whose base-model samples were all right or all wrong.",
    ),
) -> None:
    """Train with TRL's own trainers on exported data (`pip install 'tracekit[train]'`)."""
    from tracekit.trainers.run import run_training

    run_training(kind, config, drop_no_signal=drop_no_signal, echo=typer.echo)
