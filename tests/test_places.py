"""Where commands may write (tracekit/places.py), through the real command line.

No output may be a store, lie inside one or hold one (issue 17 item 1: `export --to hf --out STORE`
replaced the store's table folders); the hf exporter's folder swap removes only folders it made
or an earlier export's saved datasets folders; a name-like option is one plain file name, so
nothing is written outside ``--out`` (item 9: `--name ..` overwrote a file outside it).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from cli_contract import BASE, GOOD, one_error, tree
from deliver_stores import build_split_store

from tracekit.export import EXPORTERS
from tracekit.places import check_name_component, check_outside_stores
from tracekit.store import Store

TABLES = ("problems", "samples", "reflections", "traces", "runs")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """``root/split-store`` (every exporter has rows to write) inside a folder of its own."""
    from tracekit.reference import synthetic_raw

    root = tmp_path_factory.mktemp("places")
    build_split_store(root, synthetic_raw(16, response_chars=120, reflection_chars=80, seed=4))
    return root


def counts(root: Path) -> dict[str, int]:
    st = Store(root)
    return {t: st.read(t).height for t in TABLES}


def assert_refused(result, store: Path, before_tree, before_counts, *needles):
    one_error(result, *needles)
    assert tree(store) == before_tree
    assert counts(store) == before_counts


@pytest.mark.parametrize("to", sorted(EXPORTERS))
@pytest.mark.parametrize("where", ["store", "inside", "parent"])
def test_no_exporter_writes_into_a_store(tk, sandbox, to, where):
    store = sandbox / "split-store"
    out = {"store": store, "inside": store / "samples" / "export", "parent": sandbox}[where]
    needle = {"store": "is the tracekit store", "inside": "lies inside the tracekit store", "parent": "holds"}
    before_tree, before_counts = tree(store), counts(store)
    outside = sorted(p.name for p in sandbox.iterdir())
    result = tk("export", "--store", store, "--to", to, "--out", out)
    assert_refused(result, store, before_tree, before_counts, "export --out", needle[where], str(store))
    assert sorted(p.name for p in sandbox.iterdir()) == outside


def test_a_store_deep_below_the_output_is_found(tk, sandbox, tmp_path):
    import shutil

    deep = tmp_path / "a" / "b" / "c"
    shutil.copytree(sandbox / "split-store", deep / "copy")
    before = tree(deep / "copy")
    one_error(tk("export", "--store", deep / "copy", "--to", "trl-sft", "--out", tmp_path), "holds")
    assert tree(deep / "copy") == before


def test_a_symlink_to_a_store_is_the_store(tk, sandbox, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(sandbox / "split-store")
    one_error(
        tk("export", "--store", sandbox / "split-store", "--to", "hf", "--out", link / "x"),
        "lies inside the tracekit store",
    )


def test_file_outputs_refuse_a_store(tk, sandbox, tmp_path):
    store = sandbox / "split-store"
    before_tree, before_counts = tree(store), counts(store)
    src = tmp_path / "in.jsonl"
    src.write_text('{"question": "2*3", "answer": "6", "response": "<answer>6</answer>"}\n')
    for args in (
        ("score", src, "--task", "multiplication", "--out", store / "scored.jsonl"),
        ("report", "--store", store, "--out", store / "report.html"),
        ("report", "--store", store, "--out", store / "traces" / "r.html"),
        ("skills", "--store", store, "--json", store / "skills.json"),
    ):
        assert_refused(tk(*args), store, before_tree, before_counts, "lies inside the tracekit store")


def test_train_output_dir_in_a_store_is_refused_before_loading(tk, sandbox, tmp_path):
    store = sandbox / "split-store"
    before_tree, before_counts = tree(store), counts(store)
    (tmp_path / "data").mkdir()
    config = tmp_path / "t.yaml"
    config.write_text(
        f"model: {tmp_path / 'data'}\ndata: {tmp_path / 'data'}\noutput_dir: {store / 'ckpt'}\n"
    )
    assert_refused(tk("train", "sft", config), store, before_tree, before_counts, "train: output_dir")


def test_push_staging_inside_a_store_is_refused(tk, sandbox, monkeypatch):
    store = sandbox / "split-store"
    before_tree, before_counts = tree(store), counts(store)
    monkeypatch.setenv("HF_TOKEN", "hf_not_used_here")
    monkeypatch.setattr(tempfile, "tempdir", str(store / "problems"))
    result = tk("push", "me/data", "--store", store)
    assert_refused(result, store, before_tree, before_counts, "TMPDIR", "lies inside the tracekit store")


def test_outputs_beside_a_store_still_work(tk, sandbox, tmp_path):
    store = sandbox / "split-store"
    code, out, err = tk("export", "--store", store, "--to", "trl-sft", "--out", tmp_path / "sft")
    assert code == 0, err
    assert (tmp_path / "sft" / "train.parquet").is_file()
    assert check_outside_stores(tmp_path / "not-yet" / "deeper", "x") == tmp_path / "not-yet" / "deeper"


# ------------------------------------------------------------------ the hf exporter's folder swap
def test_hf_keeps_a_folder_it_did_not_write(tk, sandbox, tmp_path):
    store = sandbox / "split-store"
    out = tmp_path / "hf"
    mine = out / "samples"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("the user's own file")
    result = tk("export", "--store", store, "--to", "hf", "--out", out)
    one_error(result, str(mine), "not a datasets folder")
    assert (mine / "notes.txt").read_text() == "the user's own file"
    assert sorted(p.name for p in out.iterdir()) == ["samples"]  # nothing written before the refusal


@pytest.mark.parametrize("name", ["README.md", "tracekit_trace_lengths.png"])
def test_hf_refuses_a_folder_where_the_card_goes(tk, sandbox, tmp_path, name):
    (tmp_path / "hf" / name).mkdir(parents=True)
    before = tree(tmp_path / "hf")
    one_error(
        tk("export", "--store", sandbox / "split-store", "--to", "hf", "--out", tmp_path / "hf"),
        "is not a file",
    )
    assert tree(tmp_path / "hf") == before


def test_hf_replaces_its_own_earlier_export(tk, sandbox, tmp_path):
    import datasets

    store = sandbox / "split-store"
    out = tmp_path / "hf"
    for _ in range(2):
        code, _, err = tk("export", "--store", store, "--to", "hf", "--out", out, "--tables", "problems")
        assert code == 0, err
    assert datasets.load_from_disk(str(out / "problems"))["train"].num_rows > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left behind


# ------------------------------------------------------------------ names: nothing outside --out
BAD_NAMES = ["..", ".", "../escape", "ABS", "a/b", ".hidden", "", "x\ny"]  # ABS: an absolute path in tmp_path


@pytest.mark.parametrize("name", BAD_NAMES)
def test_llamafactory_name_must_be_a_plain_file_name(tk, sandbox, tmp_path, name):
    box = tmp_path / "box"
    (box / "out").mkdir(parents=True)
    (box / "dataset_info.json").write_text("{}")  # what `--name ..` used to overwrite
    name = str(box / "abs-escape") if name == "ABS" else name
    before = tree(box)
    result = tk(
        "export",
        "--store",
        sandbox / "split-store",
        "--to",
        "llamafactory",
        "--out",
        box / "out",
        "--name",
        name,
    )
    one_error(result, "--name", "not a plain file name")
    assert tree(box) == before


@pytest.mark.parametrize(
    ("to", "option"),
    [(to, "--formats") for to in ("trl-sft", "hf", "verl", "llamafactory", "skillfactory")]
    + [("hf", "--tables"), ("trl-grpo", "--split")],
)
@pytest.mark.parametrize("value", ["../escape", "ABS"])
def test_no_name_like_option_writes_outside_out(tk, sandbox, tmp_path, to, option, value):
    box = tmp_path / "box"
    (box / "out").mkdir(parents=True)
    value = str(box / "abs-escape") if value == "ABS" else value
    before = tree(box)
    tk("export", "--store", sandbox / "split-store", "--to", to, "--out", box / "out", option, value)
    after = {k: v for k, v in tree(box).items() if not k.startswith("out")}
    assert after == {k: v for k, v in before.items() if not k.startswith("out")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]


def test_name_rule_examples():
    assert check_name_component("tracekit_sft.v2", "--name") == "tracekit_sft.v2"
    for bad in [n for n in BAD_NAMES if n != "ABS"] + ["/abs/name", "a\\b", "x" * 201]:
        with pytest.raises(Exception, match="not a plain file name"):
            check_name_component(bad, "--name")


# ------------------------ read-only places: refused before any work, with the file system's reason
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
