import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from cli_contract import edited, listing, one_error, tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.errors import SchemaError, StoreError
from tracekit.store import Store


def problems(ids, questions=None):
    n = len(ids)
    return pl.DataFrame(
        {
            "problem_id": ids,
            "task": ["t"] * n,
            "question": questions or [f"q{i}" for i in range(n)],
            "answer": ["1"] * n,
            "split": ["train"] * n,
            "difficulty": [""] * n,
            "seed": [0] * n,
            "index": list(range(n)),
            "meta": ["{}"] * n,
        }
    )


def test_write_read_dedup(tmp_path):
    st = Store(tmp_path / "st", create=True)
    assert st.write("problems", problems(["p-1", "p-2"])) == 2
    assert st.write("problems", problems(["p-2", "p-3"])) == 1  # p-2 already there
    assert st.read("problems")["problem_id"].to_list() == ["p-1", "p-2", "p-3"]
    assert len(st.parts("problems")) == 2
    assert st.snapshot("problems").commit == 2
    assert st.write("problems", problems(["p-1"])) == 0  # nothing new: no part, no commit
    assert st.snapshot("problems").commit == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=20, unique=True))
def test_round_trip_property(tmp_path_factory, questions):
    st_ = Store(tmp_path_factory.mktemp("rt") / "st", create=True)
    frame = problems([f"p-{i}" for i in range(len(questions))], questions)
    st_.write("problems", frame)
    assert st_.read("problems").equals(frame)


def test_schema_violation_names_table_column_rows(tmp_path):
    st = Store(tmp_path / "st", create=True)
    bad = problems(["p-1", "p-2"]).with_columns(split=pl.Series(["train", "holdout"]))
    with pytest.raises(SchemaError) as err:
        st.write("problems", bad)
    msg = str(err.value)
    assert "'problems'" in msg and "'split'" in msg and "[1]" in msg and "holdout" in msg
    with pytest.raises(SchemaError, match="missing column"):
        st.write("problems", bad.drop("meta"))
    assert st.count("problems") == 0


def _crash_a_write(st, monkeypatch) -> None:
    """A write that dies half-way through its part (as a killed process would): nothing committed."""
    import tracekit.store.transaction as tx_mod

    st.write("problems", problems(["p-1"]))

    def crash(frame, path):  # write half a file, then die like a killed process would
        frame.write_parquet(path)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(tx_mod, "write_parquet", crash)
    with pytest.raises(KeyboardInterrupt):
        st.write("problems", problems(["p-2", "p-3"]))
    monkeypatch.undo()


def test_interrupted_write_leaves_readable_store(store_root, monkeypatch):
    from store_places import names

    st = Store(store_root, create=True)
    _crash_a_write(st, monkeypatch)
    assert Store(store_root).read("problems")["problem_id"].to_list() == ["p-1"]
    assert not [n for n in names(store_root, "problems") if n.startswith(".tmp-")], (
        "the writer removes its own temporary"
    )
    assert Store(store_root).check() == []  # and uploads nothing (object storage)


@pytest.mark.local_only("object storage has no temporaries, .writers/ locks or PIDs: orphans go by age")
def test_temporaries_of_a_hard_kill_are_removed_only_when_provably_dead(store_root, monkeypatch):
    """Temporaries of a hard kill: ignored by readers; removed by a later commit only when provably dead."""
    import os

    st = Store(store_root, create=True)
    _crash_a_write(st, monkeypatch)
    folder = st.root / "problems"
    alive = _temporary_of_other_writer(st.root, stay=True)  # another live process holds its lock
    dead = _temporary_of_other_writer(st.root, stay=False)  # its writer exited: its lock is free
    mine = st.fs._temporary(folder / "part-y.parquet")  # this process: alive
    pid_style = folder / f".tmp-part-x.parquet~{_dead_pid()}@{os.uname().nodename}~abcdef"  # old naming: kept
    old_style = folder / ".tmp-part-000002.parquet.999"  # format-1 name: its writer cannot be known
    for path in (mine, pid_style, old_style):
        path.write_bytes(b"PAR1garbage")
    assert st.count("problems") == 1 and st.check() == []
    st.write("problems", problems(["p-2"]))
    assert st.count("problems") == 2
    assert alive[0].exists() and mine.exists() and pid_style.exists() and old_style.exists()
    assert not dead[0].exists()
    alive[1].kill()
    alive[1].wait()
    st.write("problems", problems(["p-3"]))  # now that writer is gone too
    assert not alive[0].exists() and mine.exists()


_WRITER = """
import sys, time
from pathlib import Path
from tracekit.store.fs import LocalFS
fs = LocalFS(sys.argv[1])
tmp = fs._temporary(Path(sys.argv[1]) / "problems" / "part-z.parquet")
tmp.write_bytes(b"PAR1partial")
print(tmp, flush=True)
if sys.argv[2] == "stay":
    time.sleep(600)
"""


def _temporary_of_other_writer(root, *, stay: bool):
    """A temporary written by another process (which keeps running when ``stay``)."""
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), "stay" if stay else "go"],
        stdout=subprocess.PIPE,
        text=True,
    )
    path = Path(proc.stdout.readline().strip())
    if not stay:
        proc.wait()
    return path, proc


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_interrupted_write_in_subprocess_sigkill(store_root):
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    root = store_root
    st = Store(root, create=True)
    st.write("problems", problems(["p-0"]))
    script = textwrap.dedent(f"""
        import polars as pl, tracekit.store as s
        st = s.Store({str(root)!r})
        n = 200_000
        frame = pl.DataFrame({{"problem_id": [f"p-x{{i}}" for i in range(n)], "task": ["t"]*n,
            "question": ["q"*200]*n, "answer": ["1"]*n, "split": ["train"]*n, "difficulty": [""]*n,
            "seed": [0]*n, "index": list(range(n)), "meta": ["{{}}"]*n}})
        while True:
            stamp = str(__import__("time").time_ns())
            st.write("problems", frame.with_columns(problem_id=pl.col("problem_id") + stamp))
            print("wrote", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:  # kill it in the middle of its third write (two are complete)
        assert [proc.stdout.readline().strip() for _ in range(2)] == [b"wrote", b"wrote"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    after = Store(root)
    n = after.count("problems")
    assert n >= 1 + 2 * 200_000 and (n - 1) % 200_000 == 0
    assert after.read("problems", columns=["problem_id"]).height == n


def test_corrupt_truncated_foreign_files(store_root):
    from store_places import name, part_path, read_bytes, write_bytes, write_parquet

    st = Store(store_root, create=True)
    st.write("problems", problems(["p-1"]))
    part = part_path(st, "problems", 0)
    data = read_bytes(st.root, part)
    write_bytes(st.root, part, data[: len(data) - 20])
    with pytest.raises(
        StoreError, match=f"{name(part)} of table 'problems' has .* bytes, the commit log says"
    ):
        st.read("problems")
    write_bytes(st.root, part, data[:-20] + b"x" * 20)  # same size, broken footer
    with pytest.raises(StoreError, match=f"{name(part)}.*corrupt or truncated"):
        Store(st.root).read("problems")
    write_bytes(st.root, part, data)
    write_parquet(st.root, "problems/part-000002.parquet", pl.DataFrame({"a": [1]}))
    write_bytes(st.root, "problems/notes.txt", b"hi")
    assert st.read("problems")["problem_id"].to_list() == ["p-1"]  # files no commit names are not read
    assert sorted(name(p.path) for p in st.check()) == ["notes.txt", "part-000002.parquet"]


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="not a tracekit store"):
        Store(tmp_path)
    (tmp_path / "x").write_text("1")
    with pytest.raises(StoreError, match="not empty"):
        Store(tmp_path, create=True)


@pytest.mark.parametrize("form", ["file://{abs}", "file:{abs}", "file://{rel}"])
def test_a_file_url_is_the_local_folder_it_names(tmp_path, monkeypatch, tk, raw_frame, form):
    """``file:`` URLs name a local folder as fsspec reads them (``file:///abs``, ``file:/abs``, and
    ``file://rel`` relative to the working folder); nothing named ``file:`` is ever created."""
    import os

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    folder = work / "st"
    url = form.format(abs=folder, rel="st")
    st = Store(url, create=True)
    assert st.root.resolve() == folder and st.where("problems").resolve() == folder / "problems"
    st.write("problems", problems(["p-1"]))
    assert Store(folder).read("problems")["problem_id"].to_list() == ["p-1"]
    raw_frame.write_parquet(tmp_path / "raw.parquet")
    code, _, err = tk("import-skillfactory", tmp_path / "raw.parquet", "--store", url, "--quiet")
    assert code == 0, err
    code, out, err = tk("info", "--store", url)
    assert code == 0 and "integrity: ok" in out, out + err
    assert Store(folder).count("samples") == Store(url).count("samples") > 0
    assert os.listdir(work) == ["st"] and not list(tmp_path.rglob("file:*"))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=20), st.integers(0, 5))
def test_hash_strings_of_a_series_equals_the_list_path(values, start):
    import xxhash

    from tracekit.ids import hash_strings

    series = pl.Series(values, dtype=pl.Utf8).slice(start)  # a sliced series has an offset into its buffer
    expected = [xxhash.xxh3_128_hexdigest(v.encode("utf-8"))[:20] for v in values[start:]]
    assert hash_strings(series) == expected == hash_strings(values[start:])


def test_prefetch_keeps_order_raises_and_stops_early():
    import threading

    from tracekit.store.overlap import prefetch

    assert list(prefetch(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]

    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    for item in prefetch(endless()):
        if item == 3:
            break
    assert closed.wait(5), "stopping early closes the producer"


# -------------------------------- what `tracekit info` shows; a full disk leaves a store as it was
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
