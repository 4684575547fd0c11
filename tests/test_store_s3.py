"""Stores on object storage (issue 18): every command on ``s3://`` against a real S3-compatible
server started on 127.0.0.1 (moto), with the store's guarantees: one-commit views, concurrent
writers, kills, integrity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import polars as pl
import pytest

from tracekit.rearrange import RearrangeConfig, rearrange_store
from tracekit.store import Store
from tracekit.store.views import view

pytest.importorskip("boto3")
pytest.importorskip("moto")

OLD = RearrangeConfig(formats=("*C_full",), n_max=3, seed=0)
NEW = RearrangeConfig(formats=("*C_full", "*CC"), n_max=3, seed=1)


@pytest.fixture
def raw(tmp_path):
    from tracekit.reference import synthetic_raw

    path = tmp_path / "raw.parquet"
    synthetic_raw(30, response_chars=120, reflection_chars=60, seed=4).write_parquet(path)
    return path


def cli(*args, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", *map(str, args)], capture_output=True, text=True
    )
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_every_command_works_on_s3(s3_store_url, raw, tmp_path, s3_server):
    url = s3_store_url
    cli("import-skillfactory", raw, "--store", url, "--quiet")
    cli("import-skillfactory", raw, "--store", url, "--quiet")  # again: adds nothing
    cli("rearrange", "--store", url, "--formats", "*C_full", "--n-max", "3", "--quiet")
    cli(
        "rearrange",
        "--store",
        url,
        "--formats",
        "*C_full,*CC",
        "--n-max",
        "3",
        "--seed",
        "1",
        "--replace",
        "--quiet",
    )
    info = json.loads(cli("info", "--store", url, "--json").stdout)
    assert info["integrity"] == [] and info["warnings"] == []
    assert info["rows"]["samples"] == {"all": 240, "current_view": 240, "parts": 1}
    assert {r["format"] for r in info["traces_per_format"]} == {"*C_full", "*CC"}
    cli("export", "--store", url, "--to", "trl-sft", "--out", tmp_path / "sft")
    assert (
        pl.read_parquet(tmp_path / "sft" / "train.parquet").height == info["rows"]["traces"]["current_view"]
    )
    cli("export", "--store", url, "--to", "hf", "--out", tmp_path / "hf")
    cli("report", "--store", url, "--out", tmp_path / "report.html")
    assert "s3://" in (tmp_path / "report.html").read_text()
    cli("skills", "--store", url, "--source", "traces")
    # a run (dry) into a new store on S3, then an eval of it
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "store: unused\nmodel: {backend: scripted}\n"
        "tasks: [{name: multiplication, n: 6, split: train, options: {digits: 2, digits_b: 1}}]\n"
        "sampling: {variants: [plain], samples_per_variant: 3}\nreflection: {per_sample: 2}\n"
        "rearrange: {formats: ['*C_full'], n_max: 2, min_samples: 1}\n"
    )
    run_url = url + "-run"
    cli("run", cfg, "--dry-run", "--store", run_url, "--quiet")
    st = Store(run_url)
    assert view(st, "samples").collect().height == 18 and st.check() == []
    out = cli("info", "--store", run_url)
    assert "integrity: ok" in out.stdout
    # nothing holds a credential
    for folder in (tmp_path / "sft", tmp_path / "hf"):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".md"):
                assert s3_server.env["AWS_SECRET_ACCESS_KEY"] not in path.read_text()
    runs = Store(url).read("runs")
    assert not runs["config_json"].str.contains(s3_server.env["AWS_SECRET_ACCESS_KEY"]).any()


def test_concurrent_imports_on_s3_write_every_row_once(s3_store_url, tmp_path):
    """Four processes import four files into one store at once: no row lost, none twice."""
    from tracekit.reference import synthetic_raw

    files = []
    for i in range(4):
        path = tmp_path / f"raw{i}.parquet"
        synthetic_raw(12, response_chars=80, reflection_chars=40, seed=10 + i).write_parquet(path)
        files.append(path)
    Store(s3_store_url, create=True)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tracekit.cli",
                "import-skillfactory",
                str(f),
                "--store",
                s3_store_url,
                "--quiet",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    for proc in procs:
        assert proc.wait() == 0, proc.stderr.read()[-2000:]
    st = Store(s3_store_url)
    for table in ("problems", "samples", "reflections"):
        ids = st.scan(table).select(pl.first()).collect().to_series()
        assert ids.is_unique().all() and st.snapshot(table).all_checked
        assert view(st, table).collect().height == ids.len()
    assert view(st, "problems").collect().height == 48


def test_writers_racing_one_commit_on_s3(s3_store_url):
    """Eight threads (each its own Store object) commit at once: every commit number has exactly one
    winner, the losers re-check and take the next, and every row lands once."""
    from test_store import problems

    Store(s3_store_url, create=True)
    errors = []

    def writer(i):
        try:
            st = Store(s3_store_url)
            for j in range(3):
                st.write("problems", problems([f"p-{i}-{j}", "p-shared"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    st = Store(s3_store_url)
    ids = st.read("problems")["problem_id"]
    assert ids.is_unique().all() and ids.len() == 8 * 3 + 1
    records = [e.name for e in st.fs.list("_log") if e.name.endswith(".json") and "checkpoint" not in e.name]
    assert len(records) == st.snapshot().commit  # numbers 1..N, each written once


UPLOADER = """
import sys, time
import tracekit.store.remote as remote
from tracekit.store import Store
from tracekit.rearrange import RearrangeConfig, rearrange_store
real = remote.S3FS.stage
n = [0]
def stage(self, path, fill):
    n[0] += 1
    if n[0] == 2:  # the second part's upload: die in the middle of it
        print("uploading", flush=True)
        time.sleep(600)
    return real(self, path, fill)
remote.S3FS.stage = stage
rearrange_store(Store(sys.argv[1]), RearrangeConfig(formats=("*C_full", "*CC"), n_max=3, seed=1),
                replace=True, target_bytes=15_000)
"""


def test_upload_killed_mid_way_leaves_the_store_as_it_was(s3_store_url, raw):
    from tracekit.reference import import_skillfactory

    st = Store(s3_store_url, create=True)
    import_skillfactory(raw, st)
    rearrange_store(st, OLD, target_bytes=15_000)
    before = sorted(view(Store(s3_store_url), "traces").collect()["trace_id"].to_list())
    proc = subprocess.Popen([sys.executable, "-c", UPLOADER, s3_store_url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "uploading"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    fresh = Store(s3_store_url)
    assert sorted(view(fresh, "traces").collect()["trace_id"].to_list()) == before
    problems = fresh.check()
    assert all("no commit names" in p.problem for p in problems), problems  # the uploaded orphan, not read
    rearrange_store(fresh, NEW, replace=True, target_bytes=15_000)
    assert view(Store(s3_store_url), "traces").collect().height > 0


def test_integrity_on_s3(s3_store_url, raw, s3_server):
    import boto3

    from tracekit.reference import import_skillfactory

    st = Store(s3_store_url, create=True)
    import_skillfactory(raw, st)
    part = st.snapshot("samples").parts[0]
    client = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1")
    client.delete_object(Bucket=st.fs.bucket, Key=st.fs.key(f"samples/{part.name}"))
    out = cli("info", "--store", s3_store_url)
    assert f"samples/{part.name}: missing" in out.stdout
    out = cli("rearrange", "--store", s3_store_url, "--formats", "*C_full", "--quiet", check=False)
    assert out.returncode == 2 and "is missing" in out.stderr and "Traceback" not in out.stderr
    assert st.forget_missing("samples") and Store(s3_store_url).check() == []


def test_s3_errors_are_one_line(s3_server, tmp_path):
    out = cli("info", "--store", "s3://no-such-bucket-here/st", check=False)
    assert out.returncode == 2 and out.stderr.count("error:") == 1 and "Traceback" not in out.stderr
    out = cli("info", "--store", "gs://bucket/st", check=False)
    assert out.returncode == 2 and "s3://bucket/prefix" in out.stderr
    env = {**os.environ, "TRACEKIT_STORAGE_OPTIONS": "{nope"}
    bad = subprocess.run(
        [sys.executable, "-m", "tracekit.cli", "info", "--store", "s3://b/st"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and "TRACEKIT_STORAGE_OPTIONS" in bad.stderr
    assert s3_server.env["AWS_SECRET_ACCESS_KEY"] not in out.stderr + bad.stderr


def test_a_commit_costs_a_few_requests(s3_store_url):
    """A commit costs a handful of requests (no listing of the bucket on the way)."""
    from test_store import problems

    st = Store(s3_store_url, create=True)
    st.write("problems", problems(["p-0"]))
    calls = []
    st.fs.client.meta.events.register("before-call.s3", lambda **kw: calls.append(kw["model"].name))
    st.write("problems", problems(["p-1"]))
    assert calls.count("ListObjectsV2") == 0 and calls.count("PutObject") <= 3, calls
