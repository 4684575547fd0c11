"""`rearrange --replace` is all or nothing: a SIGKILL at any point leaves the old traces or the new ones.

The child process rebuilds the traces with another configuration and blocks at a chosen
point (after its k-th part, with its parts renamed into place but no commit record, right
after the commit record); the test then kills it with SIGKILL. No sleeps: the child says
when it got there. Each test runs on a local folder and on S3 (the ``place`` fixture: a local S3
server); the stores they start from are built once, locally, and copied there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from store_places import copy_tree, exists, names

from tracekit.rearrange import RearrangeConfig, rearrange_store
from tracekit.store import Store

OLD = RearrangeConfig(formats=("*C_full",), n_max=3, seed=0)
NEW = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3, seed=1)

CHILD = """
import sys, time
import tracekit.store.overlap as overlap
from tracekit.store import Store
from tracekit.rearrange import RearrangeConfig, rearrange_store
store_dir, point = sys.argv[1:3]

def block():
    print("reached", flush=True)
    time.sleep(600)

if point.startswith("part"):  # after the k-th part was written
    k, real, n = int(point[4:]), overlap.BackgroundWriter._write, [0]
    def _write(self, table, frame):
        out = real(self, table, frame)
        n[0] += 1
        if n[0] == k:
            block()
        return out
    overlap.BackgroundWriter._write = _write
else:
    import tracekit.store.log as log
    real_commit = log.CommitLog.commit
    def commit(self, *args, **kwargs):
        if point == "before-record":  # the parts are renamed into place, the record is not written
            block()
        out = real_commit(self, *args, **kwargs)
        block()
        return out
    log.CommitLog.commit = commit
cfg = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3, seed=1)
rearrange_store(Store(store_dir), cfg, replace=True, target_bytes=15_000)
print("finished", flush=True)
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A store with the OLD traces, and the NEW traces a complete replacement gives."""
    import tracekit.reference.raw as ref_raw
    from tracekit.reference import import_skillfactory, synthetic_raw

    base = tmp_path_factory.mktemp("replace")
    raw = base / "raw.parquet"
    synthetic_raw(40, response_chars=120, reflection_chars=60, seed=5).write_parquet(raw)
    old = Store(base / "old", create=True)
    rows, ref_raw.BATCH_ROWS = ref_raw.BATCH_ROWS, 16  # many parts, many buckets
    try:
        import_skillfactory(raw, old)
    finally:
        ref_raw.BATCH_ROWS = rows
    rearrange_store(old, OLD, target_bytes=15_000)
    new = Store(base / "new", create=True)
    shutil.rmtree(new.root)
    shutil.copytree(old.root, new.root)
    rearrange_store(Store(new.root), NEW, replace=True, target_bytes=15_000)
    return old.root, new.root


def traces(root) -> list:
    return sorted(Store(root).read("traces").rows())


@pytest.mark.parametrize(
    "point", ["part1", "part3", pytest.param("before-record", marks=pytest.mark.slow_on_s3), "after-record"]
)
def test_kill_during_replace_leaves_old_or_new(place, store_root, stores, point, monkeypatch):
    old_root, new_root = stores
    old, new = traces(old_root), traces(new_root)
    assert old and new and old != new
    root = store_root
    copy_tree(old_root, root)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), point], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "reached"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    after = traces(root)
    assert after == (new if point == "after-record" else old)
    store = Store(root)
    # parts no commit names (renamed into place; on S3 every part is uploaded under its final name
    # as soon as it is written): reported, never read
    if point == "before-record" or (place.s3 and point != "after-record"):
        assert store.check() and all("no commit names" in p.problem for p in store.check())
    else:
        assert store.check() == []
    # the next replacement completes, and removes the killed writer's temporaries
    rearrange_store(store, NEW, replace=True, target_bytes=15_000)
    assert traces(root) == new
    assert not [n for n in names(root, "traces") if n.startswith(".tmp-")]
    if place.s3:  # and on S3 its orphans, once they are older than ORPHAN_AGE_S
        import tracekit.store.log as log
        import tracekit.store.remote as remote

        monkeypatch.setattr(remote, "ORPHAN_AGE_S", 0.0)  # (no writer is running now)
        monkeypatch.setattr(log, "CHECKPOINT_EVERY", 1)  # orphans are looked for every 64th commit
        store.collect_garbage()
        assert Store(root).check() == [] and traces(root) == new


def test_replace_keeps_old_parts_for_readers_then_deletes_them(store_root, stores, monkeypatch):
    import tracekit.store.log as log

    old_root, _ = stores
    root = store_root
    copy_tree(old_root, root)
    store = Store(root)
    old_parts = [f"traces/{p.name}" for p in store.snapshot("traces").parts]
    lazy_old = store.scan("traces")  # a reader that started before the replacement
    rearrange_store(store, NEW, replace=True, target_bytes=15_000)
    assert all(exists(root, p) for p in old_parts) and store.check() == []
    assert lazy_old.collect().height == sum(e.rows for e in Store(old_root).snapshot("traces").parts)
    monkeypatch.setattr(log, "GRACE_S", 0.0)
    store.clear("traces")  # the first commit to the table after the grace period deletes them
    assert not any(exists(root, p) for p in old_parts)
    assert store.count("traces") == 0 and store.check() == []
