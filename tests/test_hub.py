"""``tracekit push`` end to end through the real huggingface_hub and datasets clients, against a local
stand-in for the Hub's HTTP API (tests/hub_server.py; no network)."""

import os
import subprocess
import sys

import polars as pl
import pytest
import yaml
from deliver_stores import build_split_store
from hub_server import READ_TOKEN, WRITE_TOKEN, HubStandIn

from tracekit.export.card import HISTOGRAM, split_card

REPO = "me/silver-traces"
USER_CARD = "---\nlicense: mit\nlanguage:\n- en\ntags:\n- math\n---\n# My dataset\n\nNotes the user wrote.\n"


@pytest.fixture
def hub():
    server = HubStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tracekit.reference import synthetic_raw

    return build_split_store(tmp_path_factory.mktemp("hubstore"), synthetic_raw(20, seed=5))


def run(args, hub_url, home, token=WRITE_TOKEN, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=hub_url, HF_HUB_DISABLE_XET="1", HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
    if token:
        env["HF_TOKEN"] = token
    script = "import sys; from tracekit.cli import main; sys.argv = ['tracekit'] + sys.argv[1:]; main()"
    r = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_push_commits_configs_card_and_histogram_and_loads_back(hub, store, tmp_path):
    hub.add_repo("dataset", REPO, {"README.md": USER_CARD.encode()})
    first = run(["push", REPO, "--store", str(store.root), "--max-length", "100"], hub.url, tmp_path / "home")
    files = hub.repo_files(REPO)
    configs = ("problems", "samples", "reflections", "sft", "grpo")
    expected = {"README.md", HISTOGRAM} | {
        f"{c}/{s}-00000-of-00001.parquet" for c in configs for s in ("train", "test")
    }
    assert set(files) == expected
    # every upload of data went through the LFS batch API, the card inline in the commit
    posts = [p for m, p, s in hub.requests if m == "POST" and s == 200]
    assert any(p.endswith(".git/info/lfs/objects/batch") for p in posts)
    assert files[HISTOGRAM][:4] == b"\x89PNG"
    sft = pl.concat([pl.read_parquet(files[f"sft/{s}-00000-of-00001.parquet"]) for s in ("train", "test")])
    assert sft.height == store.count("traces") and sft["prompt"][0][0]["role"] == "user"
    meta, body = split_card(files["README.md"].decode())
    assert sorted(c["config_name"] for c in meta["configs"]) == sorted(configs)
    sft_entry = next(c for c in meta["configs"] if c["config_name"] == "sft")
    assert {d["split"] for d in sft_entry["data_files"]} == {"train", "test"}
    assert meta["license"] == "mit" and meta["language"] == ["en"]  # the user's metadata is kept
    assert meta["tags"][0] == "math" and "tracekit" in meta["tags"] and meta["size_categories"] == ["n<1K"]
    assert "Notes the user wrote." in body and "## Recipe" in body and "verdict agreement" in body
    assert "reward.custom_reward_function.path" in body and "template: qwen" in body
    assert f"![trace lengths]({HISTOGRAM})" in body

    load = (
        "import datasets, sys; d = datasets.load_dataset(sys.argv[1], 'sft');"
        "print({s: v.num_rows for s, v in sorted(d.items())})"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "home2"))
    r = subprocess.run(
        [sys.executable, "-c", load, REPO], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    counts = store.read("traces", columns=["problem_id"]).join(store.read("problems"), on="problem_id")
    assert r.stdout.strip() == str(dict(sorted(counts.group_by("split").len().iter_rows())))

    second = run(
        ["push", REPO, "--store", str(store.root), "--max-length", "100"], hub.url, tmp_path / "home"
    )
    assert hub.repo_files(REPO) == files  # pushing again changes nothing
    assert "unchanged dataset card" in second.stdout

    runs = store.read("runs").filter(pl.col("command") == "push")
    assert runs.height == 2
    # the token appears in no output, log, store file, cache file or committed file
    texts = [first.stdout, first.stderr, second.stdout, second.stderr, r.stdout, r.stderr]
    blobs = [p.read_bytes() for root in (store.root, tmp_path) for p in root.rglob("*") if p.is_file()]
    blobs += list(hub.repo_files(REPO).values())
    assert not any(WRITE_TOKEN in t for t in texts) and not any(WRITE_TOKEN.encode() in b for b in blobs)


def one_error_line(r) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr and lines[-1].startswith("Hint:"), r.stderr
    assert WRITE_TOKEN not in r.stderr + r.stdout and READ_TOKEN not in r.stderr + r.stdout
    return errors[0]


def test_hub_errors_are_one_clear_line(hub, store, tmp_path):
    args = ["push", REPO, "--store", str(store.root), "--tables", "problems"]
    assert "no Hugging Face token" in one_error_line(
        run(args, hub.url, tmp_path / "h1", token=None, check=False)
    )
    hub.add_repo("dataset", REPO)
    line = one_error_line(run(args, hub.url, tmp_path / "h2", token=READ_TOKEN, check=False))
    assert "may not write" in line and "403" in line
    hub.add_repo("model", "me/a-model")
    model_args = ["push", "me/a-model", "--store", str(store.root)]
    assert "is a model repository" in one_error_line(run(model_args, hub.url, tmp_path / "h3", check=False))
    down = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert "cannot reach the Hub" in one_error_line(run(args, down, tmp_path / "h5", check=False))


def test_repo_ids():
    from tracekit.export.hub import HubError, parse_repo_id

    assert parse_repo_id("datasets/me/x") == parse_repo_id("https://hf.co/datasets/me/x/") == "me/x"
    for bad in ("https://huggingface.co/me/a-model", "spaces/me/app", "me", "me/x/y"):
        with pytest.raises(HubError):
            parse_repo_id(bad)


def test_card_merge_keeps_user_text_and_replaces_our_section():
    from tracekit.export.card import END, START, merge_card

    once = merge_card(USER_CARD, {"tags": ["tracekit"], "size_categories": ["n<1K"]}, f"{START}\nv1\n{END}\n")
    twice = merge_card(once, {"tags": ["tracekit"], "size_categories": ["1K<n<10K"]}, f"{START}\nv2\n{END}\n")
    meta, body = split_card(twice)
    assert meta["tags"] == ["math", "tracekit"] and meta["size_categories"] == ["1K<n<10K"]
    assert "v2" in body and "v1" not in body and body.count(START) == 1 and "Notes the user wrote." in body
    assert yaml.safe_load(twice.split("---")[1])["license"] == "mit"
