"""Shared fixtures: temporary stores filled from small synthetic raw tables (no network)."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _cuda_devices() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: they run where torch sees a GPU (a lent GPU machine) and are skipped,
    with the reason, everywhere else, so `make test-all` and `.ci/run` can always run every test."""
    for item in items:  # `slow_on_s3`: over ~20 s on S3, so in the fast tier on a local folder only
        params = getattr(item, "callspec", None)
        if item.get_closest_marker("slow_on_s3") and params and params.params.get("place") == "s3":
            item.add_marker(pytest.mark.slow)
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_tests and not _cuda_devices():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (torch sees none here)")
        for item in gpu_tests:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "hf"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))


@pytest.fixture
def raw_frame():
    from tracekit.reference import synthetic_raw

    return synthetic_raw(30, response_chars=160, reflection_chars=90, seed=3)


@pytest.fixture
def filled_store(tmp_path, raw_frame):
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    raw = tmp_path / "raw.parquet"
    raw_frame.write_parquet(raw)
    store = Store(tmp_path / "st", create=True)
    import_skillfactory(raw, store)
    return store


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny local chat model folder (see tests/tiny_model.py)."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tk(capsys, monkeypatch):
    """Run ``tracekit ARGS...`` as the console script does (``tracekit.cli.main`` in this process);
    return (status, stdout, stderr)."""

    from tracekit.cli import main

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


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto) with the AWS_* variables pointing at it."""
    import os

    pytest.importorskip("moto")
    from s3_server import S3Server

    server = S3Server()
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture
def s3_store_url(s3_server, request):
    """A fresh ``s3://bucket/prefix`` URL for one test."""
    import re
    import secrets

    bucket = s3_server.bucket("tk-" + secrets.token_hex(4))
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40]
    return f"s3://{bucket}/{name}/st"


@pytest.fixture(scope="session")
def s3_bucket(s3_server):
    """One bucket on the session's S3 server for the ``place`` fixture (each test its own prefix)."""
    import secrets

    return s3_server.bucket("tk-places-" + secrets.token_hex(4))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def place(request, tmp_path):
    """Where a store test keeps its stores (see tests/store_places.py): a local folder, and a fresh
    prefix of one bucket on the session's S3 server (moto). A test marked ``local_only("why")``
    is skipped on S3 with that reason."""
    import re
    import secrets

    from store_places import Place

    if request.param == "local":
        return Place("local", tmp_path / "stores")
    marker = request.node.get_closest_marker("local_only")
    if marker is not None:
        pytest.skip("local only: " + marker.args[0])
    bucket = request.getfixturevalue("s3_bucket")
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:48]
    return Place("s3", f"s3://{bucket}/{name}-{secrets.token_hex(3)}")


@pytest.fixture
def store_root(place):
    """A fresh store location (nothing there yet): a local folder or an ``s3://`` URL."""
    return place.root("st")


# ------------------------------------------------------------------ stores for command-line tests
@pytest.fixture(scope="session")
def cli_built(tmp_path_factory):
    """A small store with traces (a dry run of ``cli_contract.BASE``) and a raw file in the reference layout."""
    from cli_contract import edited

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
def store(cli_built, tmp_path):
    """A fresh copy of the small dry-run store at ``tmp_path/st`` (files may define their own ``store``)."""
    import shutil

    shutil.copytree(cli_built / "st", tmp_path / "st")
    return tmp_path / "st"


@pytest.fixture
def raw(cli_built):
    """A raw file in the SkillFactory reference layout (6 problems); read it, never change it."""
    return cli_built / "raw.parquet"
