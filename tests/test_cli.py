import polars as pl
from typer.testing import CliRunner

from tracekit.cli import app

runner = CliRunner()


def test_three_commands_from_the_issue(tmp_path, raw_frame):
    raw = tmp_path / "raw.parquet"
    raw_frame.write_parquet(raw)
    st, out = str(tmp_path / "st"), str(tmp_path / "sft")
    r = runner.invoke(app, ["import-skillfactory", str(raw), "--store", st])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["rearrange", "--store", st, "--formats", "*C_full", "--n-max", "5", "--seed", "0"]
    )
    assert r.exit_code == 0, r.output
    assert "verdict_mismatch" in r.output
    r = runner.invoke(app, ["export", "--store", st, "--to", "trl-sft", "--out", out])
    assert r.exit_code == 0, r.output
    df = pl.read_parquet(tmp_path / "sft" / "train.parquet")
    assert {"prompt", "completion", "format", "trace_id"} <= set(df.columns)
    first = df.row(0, named=True)
    assert first["prompt"][0]["role"] == "user" and set(first["prompt"][0]) == {"role", "content"}
    assert first["completion"][0]["role"] == "assistant"
    assert set(df["format"].unique()) == {"*C_full"}
    from tracekit.store import Store

    # every command that changed the store recorded itself through the one runs helper
    runs = Store(st).read("runs").sort("finished_at")
    assert runs["command"].to_list() == ["import-skillfactory", "rearrange", "export"]

    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(tmp_path / "sft" / "train.parquet"), split="train")
    assert ds.num_rows == df.height and ds[0]["prompt"][0]["role"] == "user"


def test_errors_are_clean(tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", "rearrange", "--store", str(tmp_path), "--formats", "*c"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = runner.invoke(app, ["schema", "traces"])
    assert "completion" in r.output


def test_help_is_plain_text_and_keeps_brackets():
    r = runner.invoke(app, ["train", "--help"])
    assert r.exit_code == 0 and "tracekit[train]" in r.output  # rich markup ate "[train]"


# ------------------------------------------------------------------------------- help and progress
def test_help_shows_no_type_after_flags(tk, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    for command in ("rearrange", "import-skillfactory", "run", "export"):
        code, out, _ = tk(command, "--help")
        assert code == 0 and "--help" in out and "<bool>" not in out, command
    assert "<int>" in tk("rearrange", "--help")[1]  # options that take a value still show its type


def test_import_and_rearrange_show_progress(tk, tmp_path, raw):
    st = tmp_path / "st"
    code, _, err = tk("import-skillfactory", raw, "--store", st)
    assert code == 0 and "import: 100%" in err and "row/s" in err
    code, _, err = tk("rearrange", "--store", st, "--n-max", "2")
    assert code == 0 and "rearrange: 100%" in err and "problem/s" in err
    code, _, err = tk("rearrange", "--store", st, "--n-max", "2", "--quiet")
    assert code == 0 and "rearrange:" not in err
