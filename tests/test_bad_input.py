"""Bad input ends in one ``error:`` line (what, where, a hint), exit status 2 and nothing written.

Every case of issue 10 runs through the real command line: ``tracekit.cli.main``, the console
script's entry point, in this process (so a test can stand in for an operating-system failure),
with its exit status, stdout and stderr; a few run as a subprocess too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tracekit.cli import main


@pytest.fixture
def tk(capsys, monkeypatch):
    """Run ``tracekit ARGS...`` as the console script does; return (status, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["tracekit", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def one_error(result, *needles: str) -> str:
    """Check a clean failure: status 2, exactly one ``error:`` line, a hint, no traceback; return it."""
    code, out, err = result
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, (code, out, err)
    assert len(errors) == 1, err
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "Hint:" in err or "Known:" in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


# ---------------------------------------------------------------------------------------- run configs
BASE = {
    "store": "st",
    "seed": 0,
    "chunk_problems": 4,
    "model": {"backend": "scripted"},
    "tasks": [{"name": "multiplication", "n": 4, "options": {"digits": 2, "digits_b": 1}}],
    "sampling": {"variants": ["plain"], "samples_per_variant": 2},
    "reflection": {"per_sample": 1},
    "rearrange": {"formats": ["*C_full"], "n_max": 2, "min_samples": 1},
}


def edited(**sections) -> dict:
    """BASE with the given top-level keys replaced (a dict value updates that section)."""
    data = json.loads(json.dumps(BASE))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


# (case, config, words the error names); each also runs under --dry-run
CONFIG_CASES = [
    ("call_size 0", edited(reflection={"call_size": 0}), ["reflection", "call_size must be >= 1"]),
    ("seed 2^63", edited(seed=2**63), ["seed must be an integer from 0 to 9223372036854775807"]),
    ("seed negative", edited(seed=-1), ["seed must be"]),
    ("rearrange seed 2^63", edited(rearrange={"seed": 2**64}), ["rearrange", "seed must be"]),
    ("task n 0", edited(tasks=[{"name": "multiplication", "n": 0}]), ["tasks[0]", "n must be >= 1"]),
    ("task n negative", edited(tasks=[{"name": "multiplication", "n": -3}]), ["tasks[0]", "n must be >= 1"]),
    (
        "samples_per_variant 0",
        edited(sampling={"samples_per_variant": 0}),
        ["samples_per_variant must be >= 1"],
    ),
    (
        "samples_per_variant <0",
        edited(sampling={"samples_per_variant": -2}),
        ["samples_per_variant must be >= 1"],
    ),
    ("per_sample negative", edited(reflection={"per_sample": -1}), ["per_sample must be >= 0"]),
    ("variants empty", edited(sampling={"variants": []}), ["variants: at least one prompt variant"]),
    ("variants repeated", edited(sampling={"variants": ["plain", "plain"]}), ["listed more than once"]),
    ("few_shot -1", edited(sampling={"few_shot": -1}), ["few_shot must be >= 0"]),
    ("reflection few_shot -1", edited(reflection={"few_shot": -1}), ["reflection", "few_shot must be >= 0"]),
    ("top_k -5", edited(sampling={"params": {"top_k": -5}}), ["sampling.params", "top_k must be >= 0"]),
    (
        "repetition_penalty -1",
        edited(sampling={"params": {"repetition_penalty": -1}}),
        ["repetition_penalty must be > 0"],
    ),
    ("top_p 0", edited(reflection={"params": {"top_p": 0}}), ["reflection.params", "top_p"]),
    ("stop empty", edited(sampling={"params": {"stop": [""]}}), ["stop must be a list of non-empty strings"]),
    (
        "tasks mapping",
        edited(tasks={"name": "multiplication", "n": 4}),
        ["tasks: expected a list, got a mapping"],
    ),
    (
        "backend typo",
        edited(model={"backend": "transformer"}),
        ["unknown sampling backend", "'transformers'"],
    ),
    (
        "backend option typo",
        edited(model={"backend": "transformers", "options": {"batchsize": 4}}),
        ["backend 'transformers' has no option 'batchsize'", "'batch_size'"],
    ),
    (
        "backend option missing",
        edited(model={"backend": "http", "options": {"model": "m"}}),
        ["backend 'http' needs the option(s) ['base_url']"],
    ),
    ("variant typo", edited(sampling={"variants": ["plian"]}), ["unknown prompt variant 'plian'", "'plain'"]),
    (
        "variants file missing",
        edited(sampling={"variants_file": "no-such-variants.yaml"}),
        ["cannot read prompt variants file no-such-variants.yaml"],
    ),
    ("task typo", edited(tasks=[{"name": "multiplcation"}]), ["unknown task 'multiplcation'"]),
    ("task knob typo", edited(tasks=[{"name": "multiplication", "options": {"digitz": 2}}]), ["['digitz']"]),
    ("task knob value", edited(tasks=[{"name": "multiplication", "options": {"digits": 12}}]), ["digits"]),
    ("task split", edited(tasks=[{"name": "multiplication", "split": "dev"}]), ["split must be one of"]),
    ("dataset task without path", edited(tasks=[{"name": "gsm8k"}]), ["needs 'path'"]),
    ("generated task with path", edited(tasks=[{"name": "countdown", "path": "x.jsonl"}]), ["is generated"]),
    ("chunk_problems 0", edited(chunk_problems=0), ["chunk_problems must be >= 1"]),
    ("unknown key", edited(sampling={"samples": 3}), ["unknown key(s) ['samples']"]),
    ("rearrange n_max 0", edited(rearrange={"n_max": 0}), ["n_max must be >= 1"]),
    ("missing tasks", {k: v for k, v in BASE.items() if k != "tasks"}, ["missing key(s) ['tasks']"]),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("case", "data", "needles"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_run_config_fails_before_writing(tk, tmp_path, monkeypatch, case, data, needles, dry_run):
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    one_error(tk("run", "run.yaml", *(["--dry-run"] if dry_run else []), "-q"), "run.yaml", *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]  # no store, nothing else


@pytest.mark.parametrize(
    ("case", "content", "needles"),
    [
        ("top level is a list", b"- store: st\n", ["expected a mapping", "got a list"]),
        ("not UTF-8", b"store: st\nseed: 0\n# caf\xe9\n", ["line 3: not UTF-8 text (byte 0xe9)"]),
        ("empty", b"", ["is empty", "'store' and 'tasks'"]),
        ("only a comment", b"# nothing yet\n", ["is empty"]),
        ("not YAML", b"store: [st\n", ["not valid YAML"]),
    ],
)
def test_a_bad_config_file_fails_cleanly(tk, tmp_path, monkeypatch, case, content, needles):
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_bytes(content)
    one_error(tk("run", "run.yaml", "--dry-run", "-q"), "run.yaml", *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]


def test_a_config_that_is_a_folder_or_missing(tk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("conf").mkdir()
    one_error(tk("run", "conf"), "conf is a directory")
    one_error(tk("run", "nope.yaml"), "cannot read run config nope.yaml", "No such file")


def test_the_good_base_config_runs(tk, tmp_path, monkeypatch):
    """The cases above differ from a config that works."""
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(yaml.safe_dump(BASE), encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err
    assert "traces per format" in out


# ---------------------------------------------------------------------------------------- score
GOOD = {"numbers": [1, 2, 3], "target": 9, "response": "<answer>(1 + 2) * 3</answer>"}


def test_score_reports_malformed_lines_and_keeps_the_others(tk, tmp_path):
    lines = [
        json.dumps(GOOD),
        "[" * 100_000,  # nested too deep for Python's JSON reader
        '{"numbers": [1, 2, 3], "target": 9, "response": "\\ud800"}',  # a lone surrogate
        json.dumps({**GOOD, "numbers": ["1", "2", "3"]}),  # string numbers
        json.dumps({**GOOD, "target": "9"}),  # a string target: the same rule as the numbers
        json.dumps({**GOOD, "numbers": [True, 2, 3], "response": "<answer>(2 + 1) * 3</answer>"}),
        json.dumps({**GOOD, "response": 42}),
        json.dumps([1, 2]),
        "{not json",
        json.dumps({"numbers": [1, 2, 3], "response": "x"}),
        json.dumps({**GOOD, "response": GOOD["response"] + "." * 1_100_000}),  # answer, then > 1 MB
        json.dumps({**GOOD, "response": "<answer>1 + 2</answer>"}),
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, stdout, err = tk("score", "--task", "countdown", src, "--out", out)
    assert code == 1 and "Traceback" not in err
    reported = {int(line.split("line ")[1].split(":")[0]): line for line in err.splitlines()}
    assert sorted(reported) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "nested too deeply" in reported[2] and "lone surrogate" in reported[3]
    assert "field 'numbers' must be a list of integers" in reported[4] and "field 'target'" in reported[5]
    assert "True" in reported[6] and "'response' must be a string" in reported[7]
    assert "missing field(s) ['target']" in reported[10]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["reason"] for r in rows] == ["ok", "too_long", "wrong_value"]
    assert "3 line(s)" in stdout and "9 malformed" in stdout


@pytest.mark.parametrize(
    ("case", "args", "needles"),
    [
        ("out is a folder", ["--out", "{tmp}"], ["is a folder, not a file"]),
        ("out under a file", ["--out", "{tmp}/in.jsonl/x.jsonl"], ["in.jsonl is a file, not a folder"]),
        ("out in a missing folder", ["--out", "{tmp}/no/x.jsonl"], ["the folder", "does not exist"]),
        ("input is a folder", ["--out", "{tmp}/o.jsonl", "--", "{tmp}"], ["is a folder, not a file"]),
        ("input missing", ["--out", "{tmp}/o.jsonl", "--", "{tmp}/none.jsonl"], ["does not exist"]),
        ("task typo", ["--out", "{tmp}/o.jsonl", "--task", "cuontdown"], ["unknown task", "'countdown'"]),
    ],
)
def test_score_refuses_bad_paths_before_reading(tk, tmp_path, case, args, needles):
    (tmp_path / "in.jsonl").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    before = tree(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    src = [args.pop()] if "--" in args else [str(tmp_path / "in.jsonl")]
    args = [a for a in args if a != "--"]
    task = [] if "--task" in args else ["--task", "countdown"]
    one_error(tk("score", *task, *args, *src), *needles)
    assert tree(tmp_path) == before
