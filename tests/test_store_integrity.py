"""The store knows its own parts: missing, changed, copied-in and unknown files are reported with
their paths and never read; dotfiles are ignored; format-1 stores are read and migrated. Each
test runs on a local folder and on S3 (the ``place`` fixture: a local S3 server)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from store_places import (
    copy_file,
    delete,
    exists,
    make_folder,
    name,
    names,
    part_path,
    read_bytes,
    write_bytes,
    write_parquet,
)
from test_store import problems
from typer.testing import CliRunner

from tracekit.errors import StoreError
from tracekit.store import Store


@pytest.fixture
def st(store_root):
    store = Store(store_root, create=True)
    store.write("problems", problems(["p-1", "p-2"]))
    store.write("problems", problems(["p-3"]))
    return store


def test_deleted_part_is_reported_and_never_silently_skipped(st):
    path = part_path(st, "problems", 0)
    gone = st.where(path)
    delete(st.root, path)
    assert [(p.path, p.problem.split(":")[0]) for p in st.check()] == [(gone, "missing")]
    with pytest.raises(StoreError, match=f"part {gone} of table 'problems' is missing"):
        Store(st.root).read("problems")
    with pytest.raises(StoreError, match="is missing"):
        Store(st.root).ids("problems")
    assert st.forget_missing("problems") == [gone]  # the way back when there is no backup
    assert st.read("problems")["problem_id"].to_list() == ["p-3"] and st.check() == []
    assert st.write("problems", problems(["p-1", "p-2"])) == 2  # re-running the writer restores the rows


def test_copied_in_part_is_not_counted_and_is_reported(st):
    part = part_path(st, "problems", 0)
    for copy in ("part-copy.parquet", "part-000009.parquet", "backup.parquet"):
        copy_file(st.root, part, st.root, f"problems/{copy}")
    fresh = Store(st.root)
    assert fresh.count("problems") == 3 and fresh.read("problems").height == 3
    found = {name(p.path): p.problem for p in fresh.check()}
    assert set(found) == {"part-copy.parquet", "part-000009.parquet", "backup.parquet"}
    assert all(f"a copy of part {name(part)}" in problem for problem in found.values())


def test_unknown_and_orphan_files_are_reported(st):
    write_parquet(st.root, "problems/part-6b0000000000000000ff.parquet", pl.DataFrame({"a": [1]}))
    write_bytes(st.root, "problems/notes.txt", b"mine")
    make_folder(st.root, "scratch")
    found = {name(p.path): p.problem for p in st.check()}
    assert found == {
        "part-6b0000000000000000ff.parquet": "a part no commit names (an interrupted commit, or copied in): not read",
        "notes.txt": "not a part of the table (not read)",
        "scratch": "not part of a tracekit store (ignored)",
    }
    assert st.count("problems") == 3


def test_dotfiles_are_ignored(st):
    for folder in ("", "problems", "_log"):
        if not names(st.root, folder):
            continue
        write_bytes(st.root, f"{folder}/.DS_Store".lstrip("/"), b"\x00\x00\x00\x01Bud1")
        write_bytes(st.root, f"{folder}/.part.swp".lstrip("/"), b"b0VIM")
    assert Store(st.root).read("problems").height == 3
    assert Store(st.root).check() == []
    st.write("problems", problems(["p-4"]))
    assert st.count("problems") == 4


def test_changed_part_is_reported(st):
    path = part_path(st, "problems", 1)
    part = st.where(path)
    data = bytearray(read_bytes(st.root, path))
    data[10] ^= 0xFF  # same size, other bytes
    write_bytes(st.root, path, bytes(data))
    assert Store(st.root).check() == []  # sizes only by default
    [problem] = Store(st.root).check(checksums=True)
    assert problem.path == part and "checksum" in problem.problem
    write_bytes(st.root, path, bytes(data) + b"extra")
    [problem] = Store(st.root).check()
    assert problem.path == part and problem.problem.startswith("changed:")


def test_damaged_log_is_reported(st):
    delete(st.root, "_log/0000000001.json")
    assert [p.path for p in Store(st.root).check()] == [st.where("_log/0000000001.json")]
    with pytest.raises(StoreError, match=r"commit\(s\) \[1\] are missing"):
        Store(st.root).read("problems")


def test_checkpoints_shortcut_the_log(store_root):
    import tracekit.store.log as log

    store = Store(store_root, create=True)
    for i in range(log.CHECKPOINT_EVERY + 3):
        store.write("problems", problems([f"p-{i}"]))
    assert exists(store_root, f"_log/{log.CHECKPOINT_EVERY:010d}.checkpoint.json")
    fresh = Store(store_root)
    assert fresh.snapshot("problems") == store.snapshot("problems")
    assert fresh.count("problems") == log.CHECKPOINT_EVERY + 3


def test_reads_drop_nothing_when_every_part_was_checked(st):
    assert st.snapshot("problems").all_checked
    assert "UNIQUE" not in st.scan("problems").explain()  # no deduplication work on the read path


def make_format1_store(root, tables: dict[str, list[pl.DataFrame]]) -> None:
    """A store as tracekit wrote it before the commit log (format 1), at ``root`` (a new folder or URL)."""
    write_bytes(root, "tracekit-store.json", json.dumps({"format": 1}).encode())
    for table, frames in tables.items():
        for i, frame in enumerate(frames, 1):
            write_parquet(root, f"{table}/part-{i:06d}.parquet", frame, row_group_size=16)


def test_format1_store_is_read_as_it_is_then_migrated_by_the_first_write(place):
    root = place.root("old")
    # part 2 repeats p-2 (as concurrent writers of format 1 could leave it); part 3 is a copy of part 1
    make_format1_store(root, {"problems": [problems(["p-1", "p-2"]), problems(["p-2", "p-3"])]})
    copy_file(root, "problems/part-000001.parquet", root, "problems/part-000003.parquet")
    write_bytes(root, "problems/.DS_Store", b"x")
    st = Store(root)
    assert st.format == 1
    assert sorted(st.ids("problems").to_list()) == ["p-1", "p-2", "p-3"]
    assert st.count("problems") == 3 and st.read("problems").height == 3
    assert st.write("problems", problems(["p-3", "p-4"])) == 1  # migrates, then appends
    assert json.loads(read_bytes(root, "tracekit-store.json"))["format"] == 3
    adopt = json.loads(read_bytes(root, "_log/0000000001.json"))
    assert adopt["op"] == "adopt"
    assert [(p["name"], p["checked"]) for p in adopt["tables"]["problems"]["add"]] == [
        ("part-000001.parquet", True),
        ("part-000002.parquet", False),  # repeats an id: readers keep dropping the repeat
    ]
    fresh = Store(root)
    assert fresh.format == 3
    assert fresh.read("problems")["problem_id"].to_list() == ["p-1", "p-2", "p-3", "p-4"]
    assert [(name(p.path), p.problem) for p in fresh.check()] == [
        ("part-000003.parquet", "a copy of part part-000001.parquet, not in the commit log (not read)")
    ]


@pytest.mark.parametrize("scattered", [False, True])
def test_rearrangement_of_a_store_with_repeated_rows(place, filled_store, scattered, monkeypatch):
    """Repeated samples (what two concurrent imports of format 1 left) are dropped on read, bucket by bucket."""
    import tracekit.store.buckets as buckets
    from tracekit.rearrange import RearrangeConfig, rearrange_store

    cfg = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3)
    rearrange_store(filled_store, cfg)
    expected = filled_store.read("traces").sort("trace_id")
    tables = {t: [filled_store.read(t).sort("problem_id")] for t in ("problems", "samples", "reflections")}
    samples = tables["samples"][0]
    repeats = samples.sample(fraction=1.0, shuffle=True, seed=2) if scattered else samples.slice(40, 80)
    tables["samples"] += [repeats, samples.head(50)]
    hashed = []
    real = buckets._hash_buckets
    monkeypatch.setattr(buckets, "_hash_buckets", lambda *a: hashed.append(1) or real(*a))
    for target_bytes in (10**9, 20_000 if scattered else 40_000):  # read whole, and bucket by bucket
        root = place.root(f"old-{target_bytes}")
        make_format1_store(root, tables)
        st = Store(root)
        assert st.count("samples") == samples.height
        rearrange_store(st, cfg, target_bytes=target_bytes)  # migrates the store: its first write
        assert not st.snapshot("samples").all_checked
        assert st.read("traces").sort("trace_id").equals(expected)
    assert bool(hashed) == scattered  # both ways of cutting buckets drop the repeats


def test_info_lists_problems(st):
    from tracekit.cli import app

    path = part_path(st, "problems", 0)
    gone = st.where(path)
    runner = CliRunner()
    result = runner.invoke(app, ["info", "--store", str(st.root)])
    assert result.exit_code == 0 and "integrity: ok" in result.output
    delete(st.root, path)
    result = runner.invoke(app, ["info", "--store", str(st.root)])
    assert result.exit_code == 0, result.output
    assert "integrity: 1 problem(s)" in result.output and f"{gone}: missing" in result.output
