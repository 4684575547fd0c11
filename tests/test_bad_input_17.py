"""Issue 17, "tracebacks and silent acceptance": one ``error:`` line, exit 2, nothing written.

Each case runs through the real command line (``tracekit.cli.main`` in this process; the
full-disk cases as a subprocess on a small tmpfs): a full disk, files that are not UTF-8 or
are folders, YAML and JSON that repeat a key, numbers that are not finite, alias bombs, sizes
that cannot finish, empty lists and negative counts given as options, empty imports, and
strings JSON allows but Unicode text cannot hold.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from test_bad_input import BASE, GOOD, built, edited, one_error, raw, raw_rows, store, tree

__all__ = ["built", "raw", "store"]  # fixtures shared with test_bad_input


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------- run configs
BASE_YAML = yaml.safe_dump(BASE, sort_keys=False)
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10) if prev else ', '.join(['x'] * 10)}]\n"
    for prev, name in zip([None, "a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e", "f"])
)


def with_lines(*lines: str) -> str:
    return BASE_YAML + "".join(line + "\n" for line in lines)


def section(name: str, body: str) -> str:
    """BASE without section ``name``, then ``name:`` with ``body`` (indented YAML lines)."""
    data = {k: v for k, v in BASE.items() if k != name}
    return (
        yaml.safe_dump(data, sort_keys=False) + f"{name}:\n" + "".join(f"  {b}\n" for b in body.splitlines())
    )


SAMPLING = "variants: [plain]\nsamples_per_variant: 2\n"
YAML_CASES = [
    ("key twice at the top", with_lines("seed: 1"), ["the key 'seed' is given twice (first at line"]),
    (
        "key twice in a section",
        section("sampling", SAMPLING + "params:\n  temperature: 0.7\n  top_p: 0.9\n  temperature: 1.0"),
        ["the key 'temperature' is given twice"],
    ),
    (
        "temperature .inf",
        section("sampling", SAMPLING + "params: {temperature: .inf}"),
        ["'.inf' is not a finite"],
    ),
    (
        "top_p .nan",
        section("sampling", SAMPLING + "params: {top_p: .NaN}"),
        ["'.NaN' is not a finite number"],
    ),
    (
        "max_tokens -.inf",
        section("reflection", "per_sample: 1\nparams: {max_tokens: -.inf}"),
        ["not a finite"],
    ),
    ("alias bomb", BASE_YAML + BOMB, ["more than 100,000 values once its aliases", "Hint:"]),
    ("alias of itself", with_lines("loop: &l [*l]"), ["an alias refers to the value that contains it"]),
    ("over 4 MiB", BASE_YAML + "#" + "x" * (4 * 2**20) + "\n", ["is larger than 4 MiB"]),
    (
        "samples that cannot finish",
        section("sampling", "variants: [plain]\nsamples_per_variant: 1000000000"),
        ["plans 4,000,000,000 samples, more than the bound of 100,000,000", "samples_per_variant"],
    ),
    (
        "reflections that cannot finish",
        section("reflection", "per_sample: 20000000"),
        ["plans 160,000,000 reflections", "per_sample"],
    ),
    (
        "1e9 is text in YAML",
        section("sampling", "samples_per_variant: 1e9"),
        ["expected int, got '1e9'", "1000000000"],
    ),
    (
        "transformers batch_size 0",
        section("model", "backend: transformers\noptions: {batch_size: 0}"),
        ["option 'batch_size' must be >= 1, got 0"],
    ),
    (
        "transformers model not a string",
        section("model", "backend: transformers\noptions: {model: 5}"),
        ["option 'model' must be a string, got 5"],
    ),
    (
        "transformers model a list",
        section("model", "backend: transformers\noptions: {model: [a, b]}"),
        ["option 'model' must be a string"],
    ),
    (
        "variants file not UTF-8",
        section("sampling", SAMPLING + "variants_file: latin.yaml"),
        ["line 2: not UTF-8"],
    ),
    (
        "variants file repeats a key",
        section("sampling", SAMPLING + "variants_file: twice.yaml"),
        ["prompt variants file twice.yaml: line 3", "the key 'instruction' is given twice"],
    ),
    (
        "variants file a folder",
        section("sampling", SAMPLING + "variants_file: afolder"),
        ["afolder is a directory"],
    ),
    (
        "phrases a folder",
        section("rearrange", "formats: ['*C_full']\nn_max: 2\nmin_samples: 1\nphrases: afolder"),
        ["phrase bank afolder is a directory"],
    ),
    (
        "phrases repeat a key",
        section("rearrange", "formats: ['*C_full']\nn_max: 2\nmin_samples: 1\nphrases: phrases.yaml"),
        ["phrase bank phrases.yaml: line", "the key 'ending' is given twice"],
    ),
]


def _side_files(folder: Path) -> None:
    (folder / "latin.yaml").write_bytes(b"- name: mine\n  instruction: r\xe9sous\n")
    (folder / "twice.yaml").write_text("- name: mine\n  instruction: a\n  instruction: b\n", encoding="utf-8")
    (folder / "afolder").mkdir()
    from tracekit.rearrange.phrases import DEFAULT_BANK

    bank = DEFAULT_BANK.read_text(encoding="utf-8")
    (folder / "phrases.yaml").write_text(bank + "ending: [again]\n", encoding="utf-8")


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(("case", "text", "needles"), YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_a_run_config_is_read_strictly(tk, tmp_path, monkeypatch, case, text, needles, dry_run):
    monkeypatch.chdir(tmp_path)
    _side_files(tmp_path)
    Path("run.yaml").write_text(text, encoding="utf-8")
    before = listing(tmp_path)
    one_error(tk("run", "run.yaml", *(["--dry-run"] if dry_run else []), "-q"), *needles)
    assert listing(tmp_path) == before  # no store


def test_well_formed_side_files_and_merge_keys_still_work(tk, tmp_path, monkeypatch):
    """The cases above differ from files that work: a ``<<`` merge may override the keys it brings."""
    from tracekit.yamlfile import load_yaml

    assert load_yaml("a: &d {x: 1, y: 2}\nb: {<<: *d, x: 3}\n", "t")["b"] == {"x": 3, "y": 2}
    monkeypatch.chdir(tmp_path)
    Path("v.yaml").write_text("- name: mine\n  instruction: Solve it.\n", encoding="utf-8")
    text = section("sampling", "variants: [plain, mine]\nsamples_per_variant: 2\nvariants_file: v.yaml")
    Path("run.yaml").write_text(text, encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err


def test_the_planned_bound_counts_every_variant_and_task(tk, tmp_path, monkeypatch):
    from tracekit.pipeline.config import MAX_PLANNED_ROWS, load_config

    monkeypatch.chdir(tmp_path)
    data = edited(sampling={"variants": ["plain", "plan"], "samples_per_variant": MAX_PLANNED_ROWS // 8})
    Path("run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    load_config(
        "run.yaml"
    )  # 4 problems x 2 variants x MAX/8: exactly the bound (not run: it would not finish)
    data["tasks"][0]["n"] = 5
    Path("run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    one_error(tk("run", "run.yaml", "--dry-run", "-q"), f"plans {5 * 2 * (MAX_PLANNED_ROWS // 8):,} samples")
    assert listing(tmp_path) == ["run.yaml"]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("store: ev\nk: 1\nk: 2\n", ["eval config", "the key 'k' is given twice"]),
        ("store: ev\nparams: {temperature: -.inf}\n", ["'-.inf' is not a finite number"]),
        (
            "store: ev\nk: 100000000\n",
            ["plans 200,000,000 responses", "lower tasks[].n, the difficulties or k"],
        ),
    ],
)
def test_an_eval_config_is_read_strictly(tk, tmp_path, monkeypatch, text, needles):
    monkeypatch.chdir(tmp_path)
    models = "models: [{label: base, backend: scripted}]\ntasks: [{name: multiplication, n: 2}]\n"
    Path("e.yaml").write_text(text + models, encoding="utf-8")
    one_error(tk("eval", "e.yaml"), *needles)
    assert listing(tmp_path) == ["e.yaml"]


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        (
            "learning_rate: 1.0e-5\nlearning_rate: 2.0e-5\n",
            ["train config", "the key 'learning_rate' is given twice"],
        ),
        ("learning_rate: .inf\n", ["'.inf' is not a finite number"]),
        ("max_length: -5\n", ["max_length must be a whole number of tokens >= 1, got -5"]),
        ("max_length: 0\n", ["max_length must be", "got 0"]),
    ],
)
def test_a_train_config_is_read_strictly(tk, tmp_path, lines, needles):
    (tmp_path / "data").mkdir()
    config = tmp_path / "t.yaml"
    config.write_text(f"model: {tmp_path / 'data'}\ndata: {tmp_path / 'data'}\n{lines}", encoding="utf-8")
    before = tree(tmp_path)
    one_error(tk("train", "sft", config), *needles)
    assert tree(tmp_path) == before


# ---------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--formats", ""], ["--formats was given '', which names nothing"]),
        (["--formats", ","], ["--formats was given ','"]),
        (["--variants", ","], ["--variants was given ',', which names nothing"]),
        (["--variants", " "], ["--variants was given ' '"]),
        (["--phrases", "{tmp}"], ["is a directory"]),
        (["--phrases", "{tmp}/latin.yaml"], ["line 1: not UTF-8 text (byte 0xe9)"]),
    ],
)
def test_rearrange_options_that_name_nothing(tk, tmp_path, store, args, needles):
    (tmp_path / "latin.yaml").write_bytes(b"ending: [caf\xe9]\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = tree(tmp_path)
    one_error(tk("rearrange", "--store", store, "--replace", *args), *needles)
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("to", "args", "needles"),
    [
        ("trl-sft", ["--formats", ""], ["--formats was given ''"]),
        ("hf", ["--tables", ","], ["--tables was given ','"]),
        ("hf", ["--max-length", "-5"], ["--max-length must be >= 1, got -5"]),
        ("hf", ["--max-length", "0"], ["--max-length must be >= 1, got 0"]),
    ],
)
def test_export_options_that_name_nothing(tk, tmp_path, store, to, args, needles):
    before = tree(tmp_path)
    one_error(tk("export", "--store", store, "--to", to, "--out", tmp_path / "out", *args), *needles)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("runs", ["-1", "0"])
def test_info_runs_is_at_least_one(tk, store, runs):
    one_error(tk("info", "--store", store, "--runs", runs), f"--runs must be >= 1, got {runs}")


def test_push_max_length_is_checked_before_the_hub(tk, store, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the check comes first
    before = tree(store)
    one_error(tk("push", "org/name", "--store", store, "--max-length", "-5"), "--max-length must be >= 1")
    one_error(tk("push", "org/name", "--store", store, "--tables", ""), "--tables was given ''")
    assert tree(store) == before


@pytest.mark.parametrize(
    ("to", "folder"),
    [("trl-sft", "train.parquet"), ("trl-grpo", "train.parquet"), ("trl-sft", "tracekit-export.json")],
)
def test_export_where_a_folder_holds_a_file_name(tk, tmp_path, store, to, folder):
    out = tmp_path / "out"
    (out / folder).mkdir(parents=True)
    (out / folder / "keep.txt").write_text("mine")
    before = tree(tmp_path)
    one_error(
        tk("export", "--store", store, "--to", to, "--out", out),
        f"cannot write the file {out / folder}: a folder of that name is in the way",
    )
    assert tree(tmp_path) == before  # nothing written, the folder and its file kept


# ---------------------------------------------------------------------------------------- imports
def test_a_parquet_file_without_rows(tk, tmp_path, raw):
    pl.read_parquet(raw).head(0).write_parquet(tmp_path / "none.parquet")
    one_error(
        tk("import-skillfactory", tmp_path / "none.parquet", "--store", tmp_path / "st", "-q"),
        "none.parquet holds no rows",
    )
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"], ids=["empty", "blank lines"])
def test_a_jsonl_file_without_rows(tk, tmp_path, content):
    (tmp_path / "none.jsonl").write_bytes(content)
    err = one_error(
        tk("import-skillfactory", tmp_path / "none.jsonl", "--store", tmp_path / "st", "-q"),
        f"{tmp_path / 'none.jsonl'} holds no rows",
    )
    assert "NDJSON" not in err and "infer" not in err  # not polars' wording
    assert not (tmp_path / "st").exists()


def _lines_with(raw: Path, line: int, edit) -> list[str]:
    lines = [json.dumps(r) for r in raw_rows(raw, 4)]
    lines[line - 1] = edit(lines[line - 1])
    return lines


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda s: s[:-1] + ', "answer": "12"}', ["line 3: the key 'answer' appears twice in one object"]),
        (lambda s: s[:-1] + ', "x": {"a": 1, "a": 2}}', ["line 3: the key 'a' appears twice"]),
        (
            lambda s: s.replace('"question": "', '"question": "\\ud800', 1),
            ["line 3: a string holds a lone surrogate"],
        ),
        (
            lambda s: s.replace('"question": "', '"question": "\\udfff!', 1),
            ["line 3", "lone surrogate ('\\udfff')"],
        ),
        (lambda s: "[" + s + "]", ["line 3: expected a JSON object, got list"]),
    ],
    ids=["key twice", "nested key twice", "lone high surrogate", "lone low surrogate", "not an object"],
)
def test_jsonl_lines_that_are_valid_json_but_not_a_row(tk, tmp_path, raw, edit, needles):
    (tmp_path / "in.jsonl").write_text("\n".join(_lines_with(raw, 3, edit)) + "\n", encoding="utf-8")
    err = one_error(
        tk("import-skillfactory", tmp_path / "in.jsonl", "--store", tmp_path / "st", "-q"), *needles
    )
    assert len(err.strip().splitlines()) == 2  # the error and its hint: no expression dump
    assert not (tmp_path / "st").exists()


def test_nul_and_surrogate_pairs_import_as_from_parquet(tk, tmp_path, raw):
    from tracekit.store import Store

    def edit(s: str) -> str:
        return s.replace('"question": "', '"question": "nul\\u0000 pair\\ud83d\\ude00 ', 1)

    (tmp_path / "in.jsonl").write_text("\n".join(_lines_with(raw, 2, edit)) + "\n", encoding="utf-8")
    rows = [json.loads(line) for line in _lines_with(raw, 2, edit)]
    pl.DataFrame(rows).select(pl.read_parquet(raw).columns).write_parquet(tmp_path / "in.parquet")
    questions = {}
    for name in ("in.jsonl", "in.parquet"):
        code, _, err = tk("import-skillfactory", tmp_path / name, "--store", tmp_path / f"st-{name}", "-q")
        assert code == 0, err
        got = Store(tmp_path / f"st-{name}").read("problems")["question"].to_list()
        questions[name] = sorted(got)
    assert questions["in.jsonl"] == questions["in.parquet"]
    assert any("nul\x00 pair\U0001f600 " in q for q in questions["in.jsonl"])


# ---------------------------------------------------------------------------------------- score
def test_score_reports_a_line_that_is_not_utf8(tk, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = json.dumps(GOOD).encode()
    src.write_bytes(good + b"\n" + good.replace(b"(1 + 2)", b"(1 + 2)\xff") + b"\n" + good + b"\n")
    code, stdout, err = tk("score", "--task", "countdown", src, "--out", out)
    # a file of the wrong encoding is bad input (exit status 2, one error line, no output), not a line to skip
    assert code == 2 and "Traceback" not in err and err.startswith("error: ")
    offset = len(good) + 1 + good.index(b"(1 + 2)") + 7
    assert (
        f"{src}: line 2: not UTF-8 text (byte 0xff at column {offset - len(good)}; byte offset {offset}"
        in err
    )
    assert "Hint: save the file as UTF-8" in err
    assert not out.exists() and stdout == ""


# ---------------------------------------------------------------------------------------- a full disk
def _can_mount_tmpfs() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], capture_output=True)
        if ok.returncode != 0:
            return False
        subprocess.run(["umount", d], check=True)
    return True


TMPFS = _can_mount_tmpfs()
needs_tmpfs = pytest.mark.skipif(not TMPFS, reason="needs root and tmpfs mounts (mount -t tmpfs)")


@pytest.fixture
def small_disk(tmp_path):
    """``make(kib, *copy)``: a tmpfs of ``kib`` KiB at ``tmp_path/disk`` holding copies of ``copy``
    (folders); ``fill(leave)`` then fills it up to ``leave`` bytes. Unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = []

    def make(kib: int, *copy: Path) -> Path:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(disk)], check=True)
        mounted.append(disk)
        for folder in copy:
            shutil.copytree(folder, disk / folder.name)
        return disk

    yield make
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], check=False)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill ``disk`` until at most ``leave`` bytes are free."""
    with open(disk / "filler", "wb") as fh:
        free = shutil.disk_usage(disk).free - leave
        try:
            while free > 0:
                fh.write(b"\0" * min(free, 1 << 16))
                fh.flush()
                free = shutil.disk_usage(disk).free - leave
        except OSError:
            pass


def cli(*args) -> tuple[int, str, str]:
    r = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", *map(str, args)], capture_output=True, text=True
    )
    return r.returncode, r.stdout, r.stderr


def intact(st: Path, before: dict) -> None:
    from tracekit.store import Store

    assert tree(st) == before
    assert not Store(st).check()


@needs_tmpfs
def test_import_into_a_new_store_on_a_full_disk(tmp_path, small_disk):
    from tracekit.reference import synthetic_raw

    synthetic_raw(400, response_chars=2000, reflection_chars=500, seed=1).write_parquet(
        tmp_path / "big.parquet"
    )
    disk = small_disk(200)  # holds the first tables' parts, not the reflections
    one_error(
        cli("import-skillfactory", tmp_path / "big.parquet", "--store", disk / "st", "-q"),
        f"no space left on the device holding {disk / 'st'}",
        "Hint: free some space",
    )
    assert listing(disk) == []  # no store, no temporaries


@needs_tmpfs
@pytest.mark.parametrize(
    ("case", "args"),
    [
        ("import", ["import-skillfactory", "{raw}", "--store", "{st}", "--task", "countdown", "-q"]),
        (
            "rearrange",
            ["rearrange", "--store", "{st}", "--n-max", "2", "--min-samples", "1", "--replace", "-q"],
        ),
        ("run", ["run", "{config}", "--dry-run", "--store", "{st}", "-q"]),
    ],
)
def test_a_store_on_a_full_disk_is_left_as_it_was(tmp_path, store, raw, small_disk, case, args):
    data = edited()
    data["tasks"][0]["n"] = 12  # 8 problems more than the store holds
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    disk = small_disk(8 * 1024, store)
    st = disk / store.name
    fill(disk)
    before = tree(st)
    args = [a.format(raw=raw, st=st, config=tmp_path / "run.yaml") for a in args]
    one_error(cli(*args), f"no space left on the device holding {st}", "so it was not written")
    intact(st, before)
    (disk / "filler").unlink()  # with room again, the same command works
    code, _, err = cli(*args)
    assert code == 0, err


@needs_tmpfs
@pytest.mark.parametrize("to", ["trl-sft", "hf", "verl"])
def test_an_export_to_a_full_disk(tmp_path, store, small_disk, to):
    disk = small_disk(1024)
    fill(disk)
    before = tree(store)
    one_error(
        cli("export", "--store", store, "--to", to, "--out", disk / "out"), "no space left on the device"
    )
    assert [p.name for p in disk.rglob("*") if p.is_file()] == ["filler"]  # no file, no temporary
    assert tree(store) == before
