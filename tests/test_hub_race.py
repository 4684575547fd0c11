"""Two pushes to one repo at once (issue 17): the Hub takes one commit, refuses the other with
412 (its parent is no longer the branch head), and the loser says so and to retry, not to
check the Hub's status page. Real ``tracekit push`` processes against tests/hub_server.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from deliver_stores import build_split_store
from hub_server import WRITE_TOKEN, HubStandIn, _Handler
from test_hub import run

REPO = "me/raced"


@pytest.fixture
def hub():
    server = HubStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tracekit.reference import synthetic_raw

    return build_split_store(tmp_path_factory.mktemp("racestore"), synthetic_raw(12, seed=6))


def concurrent_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert "refused a concurrent commit" in lines[0] and "412" in lines[0], stderr[-3000:]
    assert "Hint: retry the push" in stderr and "status page" not in stderr
    return lines[0]


def test_a_commit_that_lost_the_race_says_retry(hub, store, tmp_path, monkeypatch):
    original = _Handler._commit
    raced = []

    def commit_after_another_writer(self, repo, revision, sha, files):
        if not raced:  # another writer's commit lands between this push's read and its commit
            sha = repo._commit(dict(files), "another writer", "main")
            raced.append(sha)
        return original(self, repo, revision, sha, repo.commits[sha])

    monkeypatch.setattr(_Handler, "_commit", commit_after_another_writer)
    hub.add_repo("dataset", REPO)
    result = run(
        ["push", REPO, "--store", str(store.root), "--tables", "problems"], hub.url, tmp_path, check=False
    )
    assert result.returncode == 2
    concurrent_line(result.stderr)
    assert raced


def test_two_real_pushes_at_once(hub, store, tmp_path):
    hub.add_repo("dataset", REPO)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    script = "import sys; from tracekit.cli import main; sys.argv = ['tracekit'] + sys.argv[1:]; main()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, "push", REPO, "--store", str(store.root)],
            env=dict(
                env,
                HF_ENDPOINT=hub.url,
                HF_HUB_DISABLE_XET="1",
                HF_HOME=str(tmp_path / f"h{i}"),
                HF_TOKEN=WRITE_TOKEN,
                HF_HUB_DISABLE_TELEMETRY="1",
            ),  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    assert any(code == 0 for code, _, _ in results), results  # one push always lands
    for code, _, err in results:
        if code:
            assert code == 2
            concurrent_line(err)
    # whatever the interleaving, a retry of either finishes the job
    again = run(["push", REPO, "--store", str(store.root)], hub.url, tmp_path / "h3")
    assert "pushed 5 configs" in again.stdout
