"""Shards of one config on one store (``tracekit run CFG --shard i/n``): a split by content whose union is
the whole run, one config hash for all shards, and a finished shard that reruns for free."""

import json
import subprocess
import sys

import polars as pl
import pytest
from test_pipeline import answerer, config, settings

from tracekit.errors import ConfigError
from tracekit.pipeline import run_pipeline
from tracekit.pipeline.run import make_problems
from tracekit.pipeline.shard import Shard
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.store import Store
from tracekit.store.views import view

quiet = {"progress": False, "echo": lambda *a: None}


@pytest.mark.parametrize("text", ["1", "a/b", "-1/2", "2/2", "0/0", "1/2/3"])
def test_a_bad_shard_is_one_clear_error(text):
    with pytest.raises(ConfigError, match=r"--shard .*\nHint: .*SLURM_ARRAY_TASK_ID"):
        Shard.parse(text)


def test_shards_split_the_problems_by_content(tmp_path):
    problems = make_problems(config(tmp_path, tasks=[{"name": "multiplication", "n": 40}]))
    parts = [Shard(i, 3).take(problems) for i in range(3)]
    ids = [p["problem_id"].to_list() for p in parts]
    assert sorted(sum(ids, [])) == sorted(problems["problem_id"].to_list())  # disjoint, complete
    assert all(len(i) > 0 for i in ids)
    shuffled = problems.sample(fraction=1.0, shuffle=True, seed=1)
    assert set(Shard(1, 3).take(shuffled)["problem_id"]) == set(ids[1])  # content decides, not order


def test_a_shard_makes_the_whole_runs_rows_for_its_problems(tmp_path):
    whole = config(tmp_path, store="whole")
    run_pipeline(whole, sampler=ScriptedSampler(answerer), **quiet)
    part = config(tmp_path, store="part")
    first = run_pipeline(part, sampler=ScriptedSampler(answerer), shard=Shard(0, 2), **quiet)
    mine = Shard(0, 2).take(make_problems(whole))["problem_id"]
    assert 0 < first["problems"] < 6
    for table in ("samples", "reflections"):
        got = Store(tmp_path / "part").read(table).sort(pl.first())
        want = Store(tmp_path / "whole").read(table).filter(pl.col("problem_id").is_in(mine.implode()))
        assert got.equals(want.sort(pl.first())), table
    again = run_pipeline(part, sampler=ScriptedSampler(answerer), shard=Shard(0, 2), **quiet)
    assert again["new_samples"] == 0 and again["new_reflections"] == 0 and again["new_traces"] == 0
    runs = Store(tmp_path / "part").read("runs")
    assert [json.loads(c)["shard"] for c in runs["config_json"]] == ["0/2", "0/2"]
    whole_hash = Store(tmp_path / "whole").read("runs")["config_hash"][0]
    assert set(runs["config_hash"]) == {whole_hash}  # the shard is not in the hash


def test_the_current_view_is_the_union_of_the_shards(tmp_path):
    """Two drivers (real processes) of one config on one store, one after the other: the current view
    holds both shards' rows."""
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(settings(tmp_path / "st")))
    for shard in ("0/2", "1/2"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tracekit.cli",
                "run",
                str(path),
                "--dry-run",
                "--store",
                str(tmp_path / "st"),
                "--shard",
                shard,
                "-q",
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    st = Store(tmp_path / "st")
    assert st.count("runs") == 2 and st.count("samples") == 36  # both shards wrote their rows
    assert view(st, "samples").select(pl.len()).collect().item() == 36
    assert view(st, "problems").select(pl.len()).collect().item() == 6
