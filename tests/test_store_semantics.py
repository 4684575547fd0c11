"""What readers see while commands change a store (issue 17, items 2-6), with real processes.

* a ``rearrange --replace`` that builds nothing changes nothing;
* a reader sees the traces before a replacement or after it, never a mix, and a killed
  command changes no view;
* of a plain ``rearrange`` racing ``--replace``, the view never names a trace the store lacks;
* rows no finished command named (a first command killed half-way) are not current;
* copied-in parts and foreign log records never make a row appear twice;
* a live writer's temporaries survive another writer's clean-up, whatever PID namespace it is in.

The store-level tests run on a local folder and on S3 (the ``place`` fixture: a local S3 server);
the stores they start from are built once, locally, and copied there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
from store_places import (
    copy_file,
    copy_tree,
    delete,
    delete_tree,
    make_folder,
    names,
    read_bytes,
    write_bytes,
)

from tracekit.rearrange import RearrangeConfig, rearrange_store
from tracekit.store import Store
from tracekit.store.views import view, view_ids

OLD = RearrangeConfig(formats=("*C_full",), n_max=3, seed=0)
NEW = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3, seed=1)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A store with the OLD traces (its root), and the trace ids of OLD and NEW."""
    from tracekit.reference import import_skillfactory, synthetic_raw

    root = tmp_path_factory.mktemp("semantics")
    raw = root / "raw.parquet"
    synthetic_raw(40, response_chars=120, reflection_chars=60, seed=5).write_parquet(raw)
    store = Store(root / "st", create=True)
    import_skillfactory(raw, store)
    rearrange_store(store, OLD, target_bytes=15_000)
    old = current(store.root)
    other = root / "other"
    shutil.copytree(store.root, other)
    rearrange_store(Store(other), NEW, replace=True, target_bytes=15_000)
    new = current(other)
    assert old and new and not (old >= new) and not (new >= old)
    return store.root, old, new


def current(root) -> frozenset[str]:
    return frozenset(view(Store(root), "traces").select("trace_id").collect()["trace_id"].to_list())


def stored(root) -> frozenset[str]:
    return frozenset(Store(root).scan("traces").select("trace_id").collect()["trace_id"].to_list())


def copy(base, place):
    """A copy of the base store at ``place`` (a local folder or an S3 prefix)."""
    root = place.root("st")
    copy_tree(base[0], root)
    return root


CHILD = """
import sys
from tracekit.errors import StoreError
from tracekit.store import Store
from tracekit.rearrange import RearrangeConfig, rearrange_store
root, mode, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
OLD = RearrangeConfig(formats=("*C_full",), n_max=3, seed=0)
NEW = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3, seed=1)
refused = 0
for i in range(rounds):
    try:
        if mode == "replace":
            rearrange_store(Store(root), NEW if i % 2 == 0 else OLD, replace=True, target_bytes=15_000)
        else:
            rearrange_store(Store(root), OLD, target_bytes=15_000)
    except StoreError as exc:
        assert "removed by a command that finished while it ran" in str(exc), exc
        refused += 1
print("refused", refused, flush=True)
"""


def spawn(root, mode: str, rounds: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), mode, str(rounds)], stdout=subprocess.PIPE, text=True
    )


def test_replace_that_builds_nothing_changes_nothing(base, place, tk):
    """Item 2: the refusal comes before anything is committed."""
    root = copy(base, place)
    before, log = current(root), names(root, "_log")
    code, out, err = tk("rearrange", "--store", str(root), "--replace", "--min-samples", "1000", "--quiet")
    assert code == 2 and "built no traces" in err and "left as they were" in err
    assert current(root) == before and stored(root) == before
    assert names(root, "_log") == log  # not one commit
    assert not [n for n in names(root, "traces") if n.startswith(".tmp-")]


@pytest.mark.slow_on_s3
def test_a_reader_sees_the_old_traces_or_the_new_never_a_mix(base, place):
    """Item 3: replacements in another process; every read is one whole set."""
    root = copy(base, place)
    _, old, new = base
    child = spawn(root, "replace", 6)
    seen = []
    while child.poll() is None:
        got = current(root)
        assert got in (old, new), f"a reader saw {len(got)} traces: neither set ({len(old)}, {len(new)})"
        seen.append(got)
    assert child.returncode == 0
    assert current(root) == old  # rounds alternate NEW, OLD, ...: the sixth is OLD
    assert len(seen) > 3 and set(seen) <= {old, new}


@pytest.mark.slow_on_s3
def test_a_killed_command_changes_no_view(base, place):
    """Item 3: SIGKILL a replacement at several moments: the view is the old set or the new one."""
    root = copy(base, place)
    _, old, new = base
    for delay in (0.3, 0.8, 1.5, 2.5, 4.0):
        child = spawn(root, "replace", 1)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        got = current(root)
        assert got in (old, new), f"after a kill at {delay}s the view holds {len(got)} traces"
        assert got <= stored(root)
        # what a killed writer leaves is only parts no commit names (on S3, uploads; one may be a
        # byte-for-byte copy of a committed part when the replace wrote the same rows): never read
        problems = Store(root).check()
        assert all("not read" in p.problem for p in problems), problems


@pytest.mark.slow_on_s3
def test_plain_rearrange_racing_a_replace_never_names_missing_traces(base, place):
    """Item 3: the rule for two racing rearrangements. The one that commits last defines the view;
    one whose rows a concurrent --replace removed refuses (nothing recorded) and says to rerun."""
    root = copy(base, place)
    _, old, new = base
    replacer, plain = spawn(root, "replace", 5), spawn(root, "plain", 8)
    while replacer.poll() is None or plain.poll() is None:
        snap = Store(root).snapshot()
        ids = view_ids(Store(root), "traces", snapshot=snap)
        if ids is not None:
            have = Store(root).ids("traces", snapshot=snap)
            assert ids.is_in(have.implode()).all(), "the view names traces the store lacks"
    assert replacer.returncode == 0 and plain.returncode == 0
    final = current(root)
    assert final in (old, new) and final <= stored(root)


@pytest.mark.slow_on_s3
def test_a_first_command_killed_half_way_publishes_nothing(tmp_path, store_root, tk):
    """Item 4: a run killed after some of its chunks were committed: none of its rows is current,
    `info` says so, an export finds nothing; the rerun reuses them."""
    import yaml

    cfg = tmp_path / "run.yaml"
    store = store_root
    config = {
        "store": str(store),
        "seed": 0,
        "chunk_problems": 2,
        "model": {"backend": "scripted"},
        "tasks": [{"name": "multiplication", "n": 40, "split": "train", "options": {"digits": 2}}],
        "sampling": {"variants": ["plain"], "samples_per_variant": 4},
        "reflection": {"per_sample": 2, "call_size": 2},
        "rearrange": {"formats": ["*C_full"], "n_max": 2, "min_samples": 1},
    }
    cfg.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracekit.cli",
            "run",
            str(cfg),
            "--dry-run",
            "--store",
            str(store),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len([n for n in names(store, "_log") if n.endswith(".json")]) >= 6:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    st = Store(store)
    assert st.count("samples") > 0, "the kill came too late to test anything"
    assert view(st, "samples").collect().height == 0 and view(st, "problems").collect().height == 0
    code, out, _ = tk("info", "--store", str(store))
    assert code == 0 and "are in no view" in out
    code, _, err = tk("export", "--store", str(store), "--to", "trl-sft", "--out", str(tmp_path / "out"))
    assert code == 2 and "nothing to export" in err
    samples_before = st.count("samples")
    code, _, _ = tk("run", str(cfg), "--dry-run", "--store", str(store), "--quiet")
    assert code == 0
    st = Store(store)
    assert view(st, "samples").collect().height == 40 * 4
    assert st.count("samples") == 40 * 4 >= samples_before  # the killed run's rows were reused
    code, out, _ = tk("info", "--store", str(store))
    assert "in no view" not in out


def test_copied_in_table_folder_is_never_read_twice(base, tmp_path, place, tk):
    """Item 5: a table folder copied over from another store (with its parts and old logs)."""
    root = copy(base, place)
    other = tmp_path / "other"
    shutil.copytree(base[0], other)
    rearrange_store(Store(other), NEW, replace=True, target_bytes=15_000)
    before = view(Store(root), "samples").collect().height
    copy_tree(other, root, "traces")
    copy_tree(other, root, "samples")
    st = Store(root)
    assert view(st, "samples").collect().height == before
    assert st.scan("samples").select("sample_id").collect()["sample_id"].is_unique().all()
    assert st.check() and all("not read" in p.problem for p in st.check())


def test_foreign_log_records_make_readers_drop_repeats(base, tmp_path, place, tk):
    """Item 5: log records pasted in from another store (ids may then repeat): readers drop the
    repeats and `info` warns."""
    root = copy(base, place)
    st = Store(root)
    n = st.snapshot().commit
    # another store's record that adds an existing part again under a second entry
    other = tmp_path / "other"
    shutil.copytree(base[0], other)  # the same store as root
    part = Store(other).snapshot("samples").parts[0]
    shutil.copy(other / "samples" / part.name, other / "samples" / ("part-ffffffff" + part.name[13:]))
    record = {
        "commit": n + 1,
        "store": "another-store",
        "prev": "",
        "op": "append",
        "time": time.time(),
        "writer": "x",
        "tables": {
            "samples": {"add": [{**_entry(part), "name": "part-ffffffff" + part.name[13:]}], "remove": []}
        },
    }
    pasted = f"samples/part-ffffffff{part.name[13:]}"
    copy_file(other, pasted, root, pasted)
    write_bytes(root, f"_log/{n + 1:010d}.json", json.dumps(record).encode())
    st = Store(root)
    ids = st.scan("samples").select("sample_id").collect()["sample_id"]
    assert ids.is_unique().all() and ids.len() == st.count("samples")
    code, out, _ = tk("info", "--store", str(root))
    assert code == 0 and "do not continue this store's log" in out


def _entry(part) -> dict:
    return part.to_json()


def test_format2_table_folder_copied_over_is_read_without_repeats(tmp_path):
    """Item 5, in a store of the previous format: a table whose later parts were checked against
    another store's earlier parts. The migration finds the repeats; readers drop them."""
    root = tmp_path / "st2"
    (root / "problems" / "_log").mkdir(parents=True)
    (root / "tracekit-store.json").write_text(json.dumps({"format": 2}))
    from test_store import problems

    for number, ids in enumerate((["p-1", "p-2"], ["p-2", "p-3"]), start=1):
        name = f"part-{number:020x}.parquet"
        problems(ids).write_parquet(root / "problems" / name)
        from tracekit.store.fs import file_digest

        entry = {"name": name, "rows": 2, "bytes": (root / "problems" / name).stat().st_size}
        entry |= {"xxh3": file_digest(root / "problems" / name), "checked": True}
        record = {"commit": number, "op": "append", "time": 1.0, "add": [entry], "remove": []}
        (root / "problems" / "_log" / f"{number:010d}.json").write_text(json.dumps(record))
    st = Store(root)
    assert st.format == 2
    assert sorted(view(st, "problems").collect()["problem_id"].to_list()) == ["p-1", "p-2", "p-3"]
    st.write("problems", problems(["p-4"]))  # migrates
    st = Store(root)
    assert st.format == 3
    assert [p.checked for p in st.snapshot("problems").parts] == [True, False, True]
    assert sorted(st.read("problems")["problem_id"].to_list()) == ["p-1", "p-2", "p-3", "p-4"]
    # no command recorded a view of it: viewed whole, as the old format did
    assert sorted(view(st, "problems").collect()["problem_id"].to_list()) == ["p-1", "p-2", "p-3", "p-4"]


WRITER = """
import sys, time
from pathlib import Path
from tracekit.store.fs import LocalFS
fs = LocalFS(sys.argv[1])
tmp = fs._temporary(Path(sys.argv[1]) / "problems" / "part-z.parquet")
tmp.write_bytes(b"PAR1partial")
print(tmp, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
@pytest.mark.local_only("object storage has no temporaries and no flock: orphans are collected by age")
def test_a_live_writer_in_another_pid_namespace_keeps_its_temporaries(store_root):
    """Item 6: a writer in its own PID namespace (as in a container on the same host): its PID
    means nothing here, its lock does. Alive: kept; killed: removed by the next commit."""
    from test_store import problems

    st = Store(store_root, create=True)
    st.write("problems", problems(["p-1"]))
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", WRITER, str(st.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    from pathlib import Path

    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists()
    st.write("problems", problems(["p-2"]))  # a commit cleans up what dead writers left
    assert tmp.exists(), "a live writer's temporary was deleted"
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and tmp.exists():
        st.write("problems", problems([f"p-{time.time_ns()}"]))
        time.sleep(0.2)
    assert not tmp.exists()
    assert st.read("problems").height >= 3 and pl.Series(st.ids("problems")).is_unique().all()


DAMAGE = {
    "record of another shape": lambda r: write_bytes(r, "_log/0000000002.json", b'{"commit": 2}'),
    "record that is a list": lambda r: write_bytes(r, "_log/0000000002.json", b"[]"),
    "entry without rows": lambda r: _edit_entry(r, lambda e: e.pop("rows")),
    "rows not an integer": lambda r: _edit_entry(r, lambda e: e.update(rows="12")),
    "marker that is a folder": lambda r: (
        delete(r, "tracekit-store.json"),
        make_folder(r, "tracekit-store.json"),
    ),
    "log that is a file": lambda r: (delete_tree(r, "_log"), write_bytes(r, "_log", b"x")),
}


def _edit_entry(root, change) -> None:
    path = "_log/0000000002.json"
    record = json.loads(read_bytes(root, path))
    entry = next(c["add"][0] for c in record["tables"].values() if c["add"])
    change(entry)
    write_bytes(root, path, json.dumps(record).encode())


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_store_is_one_error_line_naming_the_file(base, tmp_path, place, tk, damage):
    """Every command reports the damaged file in one line; `info` reports it without crashing."""
    root = copy(base, place)
    DAMAGE[damage](root)
    code, out, err = tk("info", "--store", str(root))
    assert "Traceback" not in err + out
    named = "tracekit-store.json" if "marker" in damage else "_log"
    if code == 0:
        assert "integrity:" in out and named in out and "integrity: ok" not in out
    else:
        assert code == 2 and err.count("error:") == 1 and named in err
    for args in (
        ("export", "--store", str(root), "--to", "trl-sft", "--out", str(tmp_path / "out")),
        ("rearrange", "--store", str(root), "--formats", "*C_full", "--quiet"),
        ("skills", "--store", str(root), "--source", "traces"),
    ):
        code, out, err = tk(*args)
        assert code == 2 and err.count("error:") == 1 and "Traceback" not in err, (args, err)
        assert named in err, (args, err)
    assert not (tmp_path / "out").exists()


def test_info_while_another_command_writes_never_crashes(base, place):
    """`info` lists files while a writer creates and removes temporaries: a name that vanishes
    between the listing and its size is left out, never a crash."""
    from tracekit.store.info import store_info

    root = copy(base, place)
    child = spawn(root, "replace", 4)
    calls = 0
    while child.poll() is None:
        info = store_info(Store(root))
        assert info["integrity"] == [] or all("no commit names" in p for p in info["integrity"]), info
        calls += 1
    assert child.returncode == 0 and calls >= 3
