"""Several writers on one store: real processes started together, and threads, on a local folder
and on S3 (the ``place`` fixture: a local S3 server).

Each process waits for a start file, so they all write at the same time; their imports and
rearrangements are cut into many small parts, so their commits interleave. Every test
compares the store with the same work done by one writer: no row lost, none written twice,
and the store stays readable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from store_places import copy_tree, raw_rows

from tracekit.rearrange import RearrangeConfig, rearrange_store
from tracekit.reference import import_skillfactory, synthetic_raw
from tracekit.schemas import ID_COLUMNS
from tracekit.store import Store

CHILD = """
import json, sys, time
from pathlib import Path
import tracekit.reference.raw as ref_raw
from tracekit.reference import import_skillfactory
from tracekit.store import Store
from tracekit.rearrange import RearrangeConfig, rearrange_store
job, store_dir, go, arg = sys.argv[1:5]
ref_raw.BATCH_ROWS = 16  # many small parts: the writers' commits interleave
store = Store(store_dir, create=True)
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.005)
if job == "import":
    out = dict(import_skillfactory(arg, store))
else:
    cfg = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3)
    out = dict(rearrange_store(store, cfg, replace=(job == "replace"), target_bytes=15_000))
print(json.dumps(out), flush=True)
"""


def run_together(jobs: list[tuple[str, Path | str, str]], tmp_path: Path) -> list[dict]:
    """Start one process per ``(job, store, arg)``, release them at once, return their outputs."""
    go = tmp_path / f"go-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, job, str(store), str(go), arg],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job, store, arg in jobs
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"a writer crashed:\n{err[-3000:]}"
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


def assert_same_tables(store: Store, reference: Store, tables) -> None:
    for table in tables:
        ids = sorted(store.ids(table).to_list())
        assert ids == sorted(reference.ids(table).to_list()), f"{table}: rows lost or added"
        assert raw_rows(store, table) == len(ids), f"{table}: an id was written twice"
        assert store.snapshot(table).all_checked
        key = ID_COLUMNS[table]
        assert store.read(table).sort(key).equals(reference.read(table).sort(key))
    assert store.check() == []


def make_raw(tmp_path: Path, seed: int, questions: int = 16) -> Path:
    path = tmp_path / f"raw-{seed}.parquet"
    synthetic_raw(questions, response_chars=120, reflection_chars=60, seed=seed).write_parquet(path)
    return path


DATA = ("problems", "samples", "reflections")


@pytest.mark.slow_on_s3
def test_six_concurrent_imports_of_different_files(tmp_path, store_root):
    raws = [make_raw(tmp_path, seed) for seed in range(6)]
    store = store_root
    Store(store, create=True)
    outs = run_together([("import", store, str(raw)) for raw in raws], tmp_path)
    reference = Store(tmp_path / "one", create=True)
    for raw in raws:
        import_skillfactory(raw, reference)
    assert_same_tables(Store(store), reference, DATA)
    for table in DATA:  # every row was counted by the process that committed it
        assert sum(out.get(table, 0) for out in outs) == reference.count(table)


@pytest.mark.slow_on_s3
def test_two_imports_of_the_same_file(tmp_path, store_root):
    raw = make_raw(tmp_path, 7, questions=60)
    store = store_root
    Store(store, create=True)
    outs = run_together([("import", store, str(raw)), ("import", store, str(raw))], tmp_path)
    reference = Store(tmp_path / "one", create=True)
    import_skillfactory(raw, reference)
    assert_same_tables(Store(store), reference, DATA)
    for table in DATA:
        assert sum(out.get(table, 0) for out in outs) == reference.count(table)
    # the store is still usable: rearrangement works on it
    stats = rearrange_store(Store(store), RearrangeConfig(formats=("*C_full",), n_max=3))
    assert stats["traces/written"] > 0


@pytest.mark.parametrize("jobs", [("append", "append"), ("replace", "replace"), ("append", "replace")])
def test_two_concurrent_rearranges(tmp_path, store_root, jobs):
    import tracekit.reference.raw as ref_raw

    raw = make_raw(tmp_path, 11, questions=24)
    one = Store(tmp_path / "one", create=True)
    old_rows = ref_raw.BATCH_ROWS
    ref_raw.BATCH_ROWS = 16  # many parts, so rearrangement runs over many buckets
    try:
        import_skillfactory(raw, one)
    finally:
        ref_raw.BATCH_ROWS = old_rows
    copy_tree(one.root, store_root)
    cfg = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3)
    rearrange_store(one, cfg, target_bytes=15_000)
    assert one.count("traces") > 0
    run_together([(job, store_root, "") for job in jobs], tmp_path)
    assert_same_tables(Store(store_root), one, ("traces",))


@pytest.mark.parametrize("shared", [True, False])
def test_threads_writing_overlapping_rows(store_root, shared):
    from test_store import problems

    root = store_root
    first = Store(root, create=True)
    n_threads, per_thread, step = 6, 12, 40
    errors = []
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        st = first if shared else Store(root)
        barrier.wait()
        try:
            for i in range(per_thread):  # thread t writes ids overlapping those of thread t+1
                start = t * step + i * 5
                st.write("problems", problems([f"p-{k:05d}" for k in range(start, start + 30)]))
        except Exception as exc:  # handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    expected = sorted(
        {
            f"p-{k:05d}"
            for t in range(n_threads)
            for i in range(per_thread)
            for k in range(t * step + i * 5, t * step + i * 5 + 30)
        }
    )
    store = Store(root)
    assert sorted(store.ids("problems").to_list()) == expected
    assert raw_rows(store, "problems") == len(expected)
    assert store.check() == []


@pytest.mark.parametrize("collide", [False, True])
def test_writer_checks_ids_at_commit_time(store_root, monkeypatch, collide):
    """Rows another writer committed after this one read the table are dropped at commit (ids
    are compared by hash first: with every hash equal, the strings alone decide)."""
    import numpy as np
    from test_store import problems

    if collide:
        monkeypatch.setattr(
            pl.Series, "hash", lambda self, seed=0: pl.Series(np.zeros(self.len(), np.uint64))
        )
    a = Store(store_root, create=True)
    b = Store(store_root)
    assert a.ids("problems").len() == 0 and b.ids("problems").len() == 0  # both read an empty table
    with a.transaction("problems") as tx:
        assert tx.write("problems", problems(["p-1", "p-2", "p-3"])) == 3  # staged, not yet committed
        assert b.write("problems", problems(["p-2", "p-4"])) == 2  # b commits first
    assert tx.rows == 2  # p-2 was dropped from a's part when it committed
    assert sorted(a.ids("problems").to_list()) == ["p-1", "p-2", "p-3", "p-4"]
    assert raw_rows(a, "problems") == 4


@pytest.mark.parametrize("collide", [False, True])
def test_a_transaction_stages_each_id_once(store_root, monkeypatch, collide):
    """Ids a transaction staged already are dropped from its later writes; the 64-bit hashes
    only pick candidates, so even if every hash collided no new row would be dropped."""
    import numpy as np
    from test_store import problems

    from tracekit.ids import HashSet

    if collide:  # every staged hash "matches": the exact string check alone decides
        monkeypatch.setattr(HashSet, "contains", lambda self, values: np.ones(len(values), dtype=bool))
    store = Store(store_root, create=True)
    with store.transaction("problems") as tx:
        staged = [
            tx.write("problems", problems(["p-1", "p-2"])),
            tx.write("problems", problems(["p-2", "p-3"])),
            tx.write("problems", problems(["p-3", "p-4", "p-1"])),
            tx.write("problems", problems(["p-5"])),
        ]
    assert staged == [2, 1, 1, 1] and tx.rows == 5
    assert sorted(store.ids("problems").to_list()) == ["p-1", "p-2", "p-3", "p-4", "p-5"]
    assert raw_rows(store, "problems") == 5


def test_a_hash_collision_with_another_writer_drops_nothing(store_root, monkeypatch):
    import numpy as np
    from test_store import problems

    monkeypatch.setattr(pl.Series, "hash", lambda self, seed=0: pl.Series(np.zeros(self.len(), np.uint64)))
    a = Store(store_root, create=True)
    b = Store(store_root)
    with a.transaction("problems") as tx:
        assert tx.write("problems", problems(["p-1", "p-2"])) == 2
        assert b.write("problems", problems(["p-3"])) == 1  # every hash "matches", no id does
    assert tx.rows == 2 and sorted(a.ids("problems").to_list()) == ["p-1", "p-2", "p-3"]
