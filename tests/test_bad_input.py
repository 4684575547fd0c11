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


def tree(root: Path) -> dict[str, tuple[int, int] | str]:
    """Every file under ``root`` with its size and modification time, and every folder (whose
    own times change when a writability probe creates and removes a file in it). A writer's lock
    file in ``.writers/`` is left out: it says a writer process is alive, not what the store holds
    (a process removes it when it exits; these tests run the command line in-process)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "folder"
        for p in root.rglob("*")
        if ".writers" not in p.relative_to(root).parts
    }


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


# ---------------------------------------------------------------------------------------- stores and exports
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small store with traces (a dry run) and a raw file in the reference layout."""
    from tracekit.configfile import from_mapping
    from tracekit.pipeline.config import RunConfig
    from tracekit.pipeline.run import run_pipeline
    from tracekit.reference import synthetic_raw

    root = tmp_path_factory.mktemp("built")
    cfg = from_mapping(RunConfig, edited(store=str(root / "st")), "base")
    run_pipeline(cfg, dry_run=True, progress=False, echo=lambda *_: None)
    synthetic_raw(6, response_chars=150, reflection_chars=90, seed=1).write_parquet(root / "raw.parquet")
    return root


@pytest.fixture
def store(built, tmp_path):
    import shutil

    shutil.copytree(built / "st", tmp_path / "st")
    return tmp_path / "st"


@pytest.fixture
def raw(built):
    return built / "raw.parquet"


@pytest.mark.parametrize(
    ("case", "out", "needles"),
    [
        ("existing file", "afile", ["afile is a file, not a folder"]),
        ("under a file", "afile/sub", ["afile is a file, so no folder can be made under it"]),
    ],
)
def test_export_out_that_cannot_be_a_folder(tk, tmp_path, store, case, out, needles):
    (tmp_path / "afile").write_text("keep me")
    before = tree(tmp_path)
    one_error(tk("export", "--store", store, "--to", "trl-sft", "--out", tmp_path / out), *needles)
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("case", "args", "needles"),
    [
        (
            "format in the wrong case",
            ["--formats", "*c_full"],
            ["unknown trace format '*c_full'", "'*C_full'"],
        ),
        (
            "format the store lacks",
            ["--formats", "*CC"],
            ["no traces of format(s) ['*CC']", "holds ['*C_full']"],
        ),
        ("grpo takes no formats", ["--to", "trl-grpo", "--formats", "*C_full"], ["does not take --formats"]),
        ("grpo split typo", ["--to", "trl-grpo", "--split", "dev"], ["--split must be one of"]),
        ("unknown target", ["--to", "trl"], ["unknown export target 'trl'"]),
    ],
)
def test_export_options_that_select_nothing(tk, tmp_path, store, case, args, needles):
    before = tree(tmp_path)
    to = [] if "--to" in args else ["--to", "trl-sft"]
    one_error(tk("export", "--store", store, *to, *args, "--out", tmp_path / "out"), *needles)
    assert tree(tmp_path) == before


def test_export_warns_about_formats_it_lacks_among_others(tk, tmp_path, store):
    code, out, err = tk(
        "export", "--store", store, "--to", "trl-sft", "--formats", "*C_full,*CC", "--out", tmp_path / "o"
    )
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        f"warning: no traces of format(s) ['*CC'] in {store} (it holds ['*C_full']); "
        "exporting ['*C_full', '*CC'] without them."
    ]
    assert (tmp_path / "o" / "train.parquet").exists()


def test_imported_problems_need_a_verifier_for_grpo(tk, tmp_path, raw):
    st = tmp_path / "imp"
    assert tk("import-skillfactory", raw, "--store", st, "-q")[0] == 0
    before = tree(tmp_path)
    one_error(
        tk("export", "--store", st, "--to", "trl-grpo", "--out", tmp_path / "g"),
        "task 'skillfactory' has no verifier",
        "--task countdown",
    )
    assert tree(tmp_path) == before
    code, out, err = tk("export", "--store", st, "--to", "hf", "--out", tmp_path / "hf")
    assert code == 0 and "warning: config 'grpo' left out" in err
    assert not (tmp_path / "hf" / "grpo").exists() and (tmp_path / "hf" / "samples").is_dir()


@pytest.mark.parametrize(
    ("command", "needles"),
    [
        (["info"], ["is a file, not a store folder"]),
        (["rearrange"], ["is a file, not a store folder"]),
        (["import-skillfactory", "{raw}"], ["is a file, not a store folder"]),
        (["export", "--to", "trl-sft", "--out", "{tmp}/out"], ["is a file, not a store folder"]),
    ],
)
def test_store_option_naming_a_file(tk, tmp_path, raw, command, needles):
    (tmp_path / "afile").write_text("not a store")
    before = tree(tmp_path)
    args = [a.replace("{raw}", str(raw)).replace("{tmp}", str(tmp_path)) for a in command]
    one_error(tk(*args, "--store", tmp_path / "afile"), *needles)
    assert tree(tmp_path) == before


# ---------------------------------------------------------------------------------------- imports
def raw_rows(raw: Path, n: int | None = None) -> list[dict]:
    import polars as pl

    rows = pl.read_parquet(raw).to_dicts()
    return rows[:n] if n else rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("case", "args", "needles"),
    [
        ("task typo", ["--task", "cuontdown"], ["unknown import task 'cuontdown'", "'countdown'"]),
        (
            "task without a question reader",
            ["--task", "multiplication"],
            ["cannot read its verifier's fields"],
        ),
    ],
)
def test_import_task_names(tk, tmp_path, raw, case, args, needles):
    one_error(tk("import-skillfactory", raw, "--store", tmp_path / "st", *args), *needles)
    assert not (tmp_path / "st").exists()


def test_import_input_files(tk, tmp_path, raw):
    rows = raw_rows(raw, 4)
    (tmp_path / "folder.jsonl").mkdir()
    cases = {
        "folder.jsonl": ["folder.jsonl is a folder, not a file"],
        "missing.jsonl": ["missing.jsonl does not exist"],
    }
    broken = [json.dumps(r) for r in rows]
    broken[2] = broken[2][:40]  # a line cut short
    (tmp_path / "broken.jsonl").write_text("\n".join(broken) + "\n", encoding="utf-8")
    cases["broken.jsonl"] = ["broken.jsonl: line 3: not valid JSON"]
    lines = [json.dumps(r).encode() for r in rows]
    lines[3] = lines[3].replace(b"Puzzle", b"Puzzl\xe9")  # Latin-1, not UTF-8, on line 4
    (tmp_path / "latin.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    cases["latin.jsonl"] = ["latin.jsonl: line 4: not UTF-8 text (byte 0xe9"]
    blank = [json.dumps(r) for r in rows]
    blank.insert(1, "")
    blank[3] = (
        blank[3]
        .replace('"question": "Puzzle', '"question": "', 1)
        .replace('"question": "', '"question": null, "x": "', 1)
    )
    (tmp_path / "blank.jsonl").write_text("\n".join(blank) + "\n", encoding="utf-8")
    cases["blank.jsonl"] = ["blank.jsonl: line 4: empty 'question'"]  # blank lines are counted
    nested = [dict(r) for r in rows]
    nested[2]["model_responses__mutated_prompts_reflection"] = [["one"], ["two"]]
    write_jsonl(tmp_path / "nested.jsonl", nested)
    cases["nested.jsonl"] = [
        "nested.jsonl: line 3: column 'model_responses__mutated_prompts_reflection' is a nested list"
    ]
    nulls = [dict(r) for r in rows]
    nulls[1]["answer"] = None
    write_jsonl(tmp_path / "null.jsonl", nulls)
    cases["null.jsonl"] = ["null.jsonl: line 2: empty 'answer'"]
    for name, needles in cases.items():
        st = tmp_path / f"st-{name}"
        one_error(tk("import-skillfactory", tmp_path / name, "--store", st, "-q"), *needles)
        assert not st.exists(), name


def test_import_answers_are_read_as_written(tk, tmp_path, raw):
    import polars as pl

    from tracekit.store import Store

    frame = pl.read_parquet(raw).head(8)
    answers = [416.0, 2.5, 416.0, 2.5, 17.0, 17.0, 3.0, 3.0]
    frame.with_columns(answer=pl.Series(answers)).write_parquet(tmp_path / "floats.parquet")
    assert tk("import-skillfactory", tmp_path / "floats.parquet", "--store", tmp_path / "a", "-q")[0] == 0
    assert sorted(set(Store(tmp_path / "a").read("problems")["answer"])) == ["17", "2.5", "3", "416"]
    rows = frame.to_dicts()
    for row, answer in zip(rows, [416, 2.5, "416", 2.5, 17, 17, 3, 3]):
        row["answer"] = answer
    write_jsonl(tmp_path / "numbers.jsonl", rows)
    assert tk("import-skillfactory", tmp_path / "numbers.jsonl", "--store", tmp_path / "b", "-q")[0] == 0
    assert sorted(set(Store(tmp_path / "b").read("problems")["answer"])) == ["17", "2.5", "3", "416"]


def test_reimport_under_another_model_name(tk, tmp_path, raw):
    st = tmp_path / "st"
    assert tk("import-skillfactory", raw, "--store", st, "--model", "m1", "-q")[0] == 0
    before = tree(st)
    one_error(
        tk("import-skillfactory", raw, "--store", st, "--model", "m2", "-q"),
        "row 1: this response is already in the store, imported as model 'm1', not 'm2'",
        "--model m1",
    )
    assert tree(st) == before
    assert (
        tk("import-skillfactory", raw, "--store", st, "--model", "m1", "-q")[0] == 0
    )  # the same name: nothing new


def test_a_failure_late_in_a_file_writes_nothing(tk, tmp_path, raw, monkeypatch):
    import polars as pl

    import tracekit.reference.raw as raw_module

    monkeypatch.setattr(raw_module, "BATCH_ROWS", 4)  # several batches before the bad row
    frame = pl.read_parquet(raw)
    bad_row = frame.height - 2
    frame.with_columns(
        question=pl.when(pl.int_range(pl.len()) == bad_row).then(pl.lit("")).otherwise(pl.col("question"))
    ).write_parquet(tmp_path / "late.parquet")
    frame.head(8).write_parquet(tmp_path / "head.parquet")
    st = tmp_path / "st"
    assert tk("import-skillfactory", tmp_path / "head.parquet", "--store", st, "-q")[0] == 0
    before = tree(st)
    one_error(  # the batches before the bad row hold new rows: none of them is written
        tk("import-skillfactory", tmp_path / "late.parquet", "--store", st, "-q"),
        f"row {bad_row + 1}: empty 'question'",
    )
    assert tree(st) == before


def test_countdown_import_reads_numbers_and_target(tk, tmp_path, raw):
    import polars as pl

    from tracekit.store import Store
    from trainers.rewards import correctness_reward

    st = tmp_path / "st"
    assert tk("import-skillfactory", raw, "--store", st, "--task", "countdown", "-q")[0] == 0
    problems = Store(st).read("problems")
    assert set(problems["task"]) == {"countdown"}
    first = problems.row(0, named=True)
    meta = json.loads(first["meta"])
    assert str(meta["target"]) == first["answer"] and len(meta["numbers"]) == 3
    code, _, err = tk("export", "--store", st, "--to", "trl-grpo", "--out", tmp_path / "g")
    assert code == 0, err
    grpo = pl.read_parquet(tmp_path / "g" / "train.parquet")
    a, b, c = json.loads(grpo["meta"][0])["numbers"]
    right = f"<answer>({a} + {b}) * {c}</answer>"  # synthetic puzzles are (a + b) * c
    assert correctness_reward([right], task=grpo["task"][:1].to_list(), meta=grpo["meta"][:1].to_list()) == [
        1.0
    ]


def test_countdown_import_rejects_questions_it_cannot_read(tk, tmp_path, raw):
    rows = raw_rows(raw, 8)
    rows[2]["question"] = "What is 12 * 3?"
    rows[5]["answer"] = "999"  # the question names another target
    write_jsonl(tmp_path / "odd.jsonl", rows)
    one_error(
        tk(
            "import-skillfactory",
            tmp_path / "odd.jsonl",
            "--store",
            tmp_path / "st",
            "--task",
            "countdown",
            "-q",
        ),
        "cannot read the countdown fields from the question of 2 row(s): line 3; line 6",
        "--task skillfactory",
    )
    assert not (tmp_path / "st").exists()


# ---------------------------------------------------------------------------------------- read-only places
def _can_mount_read_only() -> bool:
    """A private mount namespace with a read-only bind mount (``unshare -m``, as root), where the
    machine allows it; otherwise the tests stand in for the file system (see ``read_only``)."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        probe = f'mount --bind "{d}" "{d}" && mount -o remount,bind,ro "{d}" && ! touch "{d}/x" 2>/dev/null'
        return subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True).returncode == 0


READ_ONLY_MOUNT = _can_mount_read_only()


@pytest.fixture
def read_only(tk, monkeypatch):
    """``run(folder, *args)``: run ``tracekit ARGS`` with ``folder`` read-only. With a real read-only
    bind mount in a private mount namespace where possible (a subprocess); else in this process,
    with every file creation under ``folder`` failing as on a read-only file system (EROFS)."""
    import errno
    import os
    import subprocess

    def run(folder: Path, *args: str) -> tuple[int, str, str]:
        folder = Path(folder).resolve()
        if READ_ONLY_MOUNT:
            script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
            cmd = [
                "unshare",
                "-m",
                "sh",
                "-c",
                script,
                "sh",
                str(folder),
                sys.executable,
                "-m",
                "tracekit.cli",
            ]
            r = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True)
            return r.returncode, r.stdout, r.stderr
        real_open = os.open

        def refusing_open(path, flags, *rest, **kw):
            if flags & os.O_CREAT and Path(path).resolve().is_relative_to(folder):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *rest, **kw)

        monkeypatch.setattr(os, "open", refusing_open)
        try:
            return tk(*args)
        finally:
            monkeypatch.setattr(os, "open", real_open)

    return run


@pytest.mark.parametrize(
    ("case", "command"),
    [
        ("import", ["import-skillfactory", "{raw}", "--store", "{st}", "-q"]),
        ("rearrange", ["rearrange", "--store", "{st}", "--n-max", "2", "--min-samples", "1", "--replace"]),
        ("dry run", ["run", "{config}", "--dry-run", "--store", "{st}", "-q"]),
    ],
)
def test_a_read_only_store(read_only, tmp_path, store, raw, case, command):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(BASE), encoding="utf-8")
    args = [a.format(raw=raw, st=store, config=tmp_path / "run.yaml") for a in command]
    before = tree(store)
    one_error(
        read_only(store, *args), f"store {store}: cannot create files in {store}", "Read-only file system"
    )
    assert tree(store) == before


def test_read_only_outputs(read_only, tmp_path, store):
    out = tmp_path / "ro"
    out.mkdir()
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    one_error(
        read_only(out, "export", "--store", store, "--to", "trl-sft", "--out", out / "sft"),
        "export --out",
        "Read-only file system",
    )
    one_error(
        read_only(out, "score", "--task", "countdown", jsonl, "--out", out / "s.jsonl"),
        "score --out",
        "Read-only file system",
    )
    assert list(out.iterdir()) == []


def test_a_read_only_store_can_still_be_exported(read_only, tmp_path, store):
    before = tree(store)
    code, out, err = read_only(
        store, "export", "--store", store, "--to", "trl-sft", "--out", tmp_path / "sft"
    )
    assert code == 0, err
    assert "warning: the export is not recorded in the store's runs table" in err
    assert (tmp_path / "sft" / "train.parquet").exists() and tree(store) == before


# ---------------------------------------------------------------------------------------- repeats
@pytest.mark.parametrize("repeats", ["0", "1001", "100000"])
def test_repeats_are_bounded(tk, store, repeats):
    before = tree(store)
    one_error(tk("rearrange", "--store", store, "--repeats", repeats), "repeats must be from 1 to 1000")
    assert tree(store) == before


def test_many_repeats_of_a_small_pool_give_only_its_distinct_traces(tk, store):
    from tracekit.store import Store

    code, out, err = tk(
        "rearrange",
        "--store",
        store,
        "--repeats",
        "1000",
        "--n-max",
        "2",
        "--min-samples",
        "1",
        "--replace",
        "-q",
    )
    assert code == 0, err
    traces = Store(store).read("traces")
    shown = traces.select("problem_id", "sample_ids", "reflection_ids")
    assert shown.height == shown.unique().height  # no trace repeats another's samples and reflections
    assert traces.group_by("problem_id").len()["len"].max() <= 4  # a pool of 2 samples has few traces
    assert "repeat_duplicate" in out and " 0\n" not in out + "\n"  # no zero counters in the summary


# ---------------------------------------------------------------------------------------- showing the work
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


def test_a_run_without_traces_says_so_and_suggests_no_export(tk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(yaml.safe_dump(edited(rearrange={"min_samples": 50})), encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err
    assert "traces per format: none" in out and "tracekit export" not in out
    assert "no traces were built" in out and "Hint:" in out


def test_reflection_parts_are_compacted_and_resume_still_works(tmp_path, monkeypatch):
    from tracekit.configfile import from_mapping
    from tracekit.pipeline.config import RunConfig
    from tracekit.pipeline.run import run_pipeline
    from tracekit.store import Store

    data = edited(store=str(tmp_path / "st"), chunk_problems=1, reflection={"per_sample": 2, "call_size": 1})
    data["tasks"][0]["n"] = 6
    cfg = from_mapping(RunConfig, data, "test")
    import tracekit.store.transaction as txn

    merged = []
    real = txn.compact
    monkeypatch.setattr(
        txn, "compact", lambda store, table, **kw: merged.append((table, real(store, table, **kw)))
    )
    run_pipeline(cfg, dry_run=True, progress=False, echo=lambda *_: None)
    st = Store(tmp_path / "st")
    assert dict(merged)["reflections"] >= 6  # one part per backend call, then merged
    assert len(st.parts("reflections")) == 1 and len(st.parts("samples")) == 1
    before = st.read("reflections").sort("reflection_id")
    again = run_pipeline(cfg, dry_run=True, progress=False, echo=lambda *_: None)
    assert again["new_samples"] == again["new_reflections"] == 0  # resume reuses every row
    assert Store(tmp_path / "st").read("reflections").sort("reflection_id").equals(before)
    assert not Store(tmp_path / "st").check()


def test_few_shot_demonstrations_do_not_grow_with_n(tk, tmp_path, monkeypatch):
    """The demo config's task with many more problems than the validation split holds."""
    monkeypatch.chdir(tmp_path)
    data = edited(sampling={"few_shot": 2, "samples_per_variant": 1}, reflection={"few_shot": 2})
    data["tasks"][0]["n"] = 200  # 2-digit x 1-digit: about 80 validation problems in all
    Path("run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err
    assert "problems 200" in out


def test_info_shows_what_a_store_holds(tk, tmp_path, store, raw):
    from tracekit.store import Store

    assert (
        tk("import-skillfactory", raw, "--store", store, "--task", "countdown", "--model", "m7", "-q")[0] == 0
    )
    assert tk("rearrange", "--store", store, "--n-max", "2", "--min-samples", "1", "-q")[0] == 0
    assert (
        tk(
            "rearrange",
            "--store",
            store,
            "--n-max",
            "3",
            "--min-samples",
            "1",
            "--formats",
            "*C_full,*CC",
            "-q",
        )[0]
        == 0
    )
    code, out, err = tk("info", "--store", store)
    assert code == 0, err
    for needle in (
        "current view",
        "multiplication  train",
        "countdown  train",
        "m7  import",
        "scripted-dry-run  scripted",
        "traces by format:",
        "*CC",
        "traces by rearrangement configuration:",
        "runs (4 of 4",
        '"n_max":3',
        "row(s) are history, not in the current view",
    ):
        assert needle in out, (needle, out)
    assert " MB in " in out or " KB in " in out
    data = json.loads(tk("info", "--store", store, "--json")[1])
    assert [r["command"] for r in data["runs"]] == ["run", "import-skillfactory", "rearrange", "rearrange"]
    assert data["runs"][0]["config"]["sampling"]["variants"] == ["plain"]
    Store(store).parts("samples")[0].unlink()  # damage: a part the log names is gone
    code, out, err = tk("info", "--store", store)
    assert code == 0, err  # a damaged store is reported, not refused
    assert "integrity: 1 problem(s)" in out and "missing" in out and "contents not read" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--seed", str(2**63)], ["seed must be an integer from 0 to 9223372036854775807"]),
        (["--seed", "-1"], ["seed must be an integer"]),
        (["--n-max", "0"], ["n_max must be >= 1"]),
        (["--formats", "*c_full"], ["unknown trace format '*c_full'", "'*C_full'"]),
        (["--variants", "plian"], ["unknown prompt variant 'plian'", "'plain'"]),
    ],
)
def test_rearrange_options_fail_before_writing(tk, store, args, needles):
    before = tree(store)
    one_error(tk("rearrange", "--store", store, "--replace", *args), *needles)
    assert tree(store) == before
