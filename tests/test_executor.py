"""Executors: the local loop and Ray actors give the same tables; actors and drivers that die lose nothing.

The Ray tests start a small local cluster themselves (2 CPUs, a 150 MiB object store, no
dashboard) with its files, and Ray's auth token, under a temporary folder.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from test_pipeline import answerer, config, settings

from tracekit.configfile import from_mapping
from tracekit.errors import ConfigError, TracekitError
from tracekit.evaluate import run_eval
from tracekit.evaluate.config import EvalConfig
from tracekit.executor import Build, ExecutorConfig, Feed, Job, LocalExecutor, make_executor
from tracekit.pipeline import run_pipeline
from tracekit.sampling.scripted import ScriptedSampler
from tracekit.store import Store

try:
    import ray
except ImportError:  # the Ray tests skip (the cluster fixture says why); the others run
    ray = None

TESTS = Path(__file__).resolve().parent
TABLES = ("problems", "samples", "reflections", "traces")
quiet = {"progress": False, "echo": lambda *a: None}


class Armed(ScriptedSampler):
    """A scripted sampler that, once, blocks inside a call until its process is killed: the first
    actor to take the flag file (an atomic rename) writes its pid beside it and waits."""

    def __init__(self, flag: str, after: int = 0) -> None:
        super().__init__(answerer)
        self.flag, self.after, self.calls = flag, after, 0

    def generate(self, requests):
        self.calls += 1
        if self.calls > self.after:
            try:
                os.rename(self.flag, self.flag + ".taken")
            except FileNotFoundError:
                pass
            else:
                Path(self.flag + ".tmp").write_text(str(os.getpid()))
                os.rename(self.flag + ".tmp", self.flag + ".pid")
                threading.Event().wait()  # until the process is killed
        return super().generate(requests)


def wait_for(path: Path, seconds: float = 120) -> str:
    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.05)
    return path.read_text()


def tables(store_path) -> dict[str, pl.DataFrame]:
    st = Store(store_path)
    return {t: (f := st.read(t)).sort(f.columns[0]) for t in TABLES}


def assert_same(got: dict, want: dict) -> None:
    for table in want:
        assert got[table].equals(want[table]), table


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for this module; HOME (Ray's token) and its files in a short temp dir."""
    pytest.importorskip("ray", reason="the ray extra (pip install -e '.[ray]'; make test installs it)")
    temp = tempfile.mkdtemp(prefix="tkray", dir="/tmp")  # Unix socket paths: at most 107 bytes
    saved = {k: os.environ.get(k) for k in ("HOME", "PYTHONPATH")}
    os.environ["HOME"] = temp
    # actors unpickle the test's samplers by module name
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), saved["PYTHONPATH"]) if p)
    ctx = ray.init(
        num_cpus=2,
        object_store_memory=150 * 2**20,
        include_dashboard=False,
        _temp_dir=os.path.join(temp, "r"),
        log_to_driver=False,
    )
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp, ignore_errors=True)


def small(tmp_path, store="st"):
    """The pipeline tests' config on 4 problems: 2 chunks, 24 samples, 48 reflections."""
    return config(
        tmp_path, store, tasks=[{"name": "multiplication", "n": 4, "options": {"digits": 2, "digits_b": 1}}]
    )


@pytest.fixture(scope="module")
def want(tmp_path_factory) -> dict[str, pl.DataFrame]:
    """The tables of ``small`` with the local executor (a run never interrupted)."""
    path = tmp_path_factory.mktemp("want")
    run_pipeline(small(path), sampler=ScriptedSampler(answerer), **quiet)
    return tables(path / "st")


def ray_cfg(**over) -> ExecutorConfig:
    return ExecutorConfig(**{"backend": "ray", "replicas": 2, "max_in_flight": 2, **over})


def test_executor_config_is_checked():
    with pytest.raises(TracekitError, match="unknown executor backend 'rey'. Did you mean 'ray'"):
        ExecutorConfig(backend="rey")
    with pytest.raises(ConfigError, match="executor.max_in_flight must be an integer >= 1, got 0"):
        ExecutorConfig(backend="ray", max_in_flight=0)
    with pytest.raises(ConfigError, match="need executor.backend: ray"):
        ExecutorConfig(replicas=4)
    assert ExecutorConfig().gpus("vllm") == 1 and ExecutorConfig().gpus("http") == 0
    assert ExecutorConfig(backend="ray", gpus_per_replica=2).gpus("http") == 2


def test_local_executor_runs_follow_ups_before_the_next_job():
    """A job pushed while a result is committed runs before the next job of the source."""
    ex = LocalExecutor()
    sampler = ScriptedSampler()
    assert ex.start(Build(ready=sampler)).source == "scripted"
    feed = Feed(Job(lambda plan, s: plan, plan) for plan in ("s0", "s1"))
    order = []
    for _job, result in ex.map(feed):
        order.append(result)
        if result.startswith("s"):
            feed.push(Job(lambda plan, s: plan, "r" + result[1]))
    ex.close()
    assert order == ["s0", "r0", "s1", "r1"]


class Shuffled(ScriptedSampler):
    """A scripted sampler taking calls from several threads, each finishing after a random delay
    (so results come back out of order); logs S or R for each call as it starts."""

    concurrent_calls = True

    def __init__(self, log: list) -> None:
        super().__init__(answerer)
        self.log, self.rng, self.lock = log, __import__("random").Random(7), threading.Lock()

    def generate(self, requests):
        with self.lock:
            self.log.append("R" if "Proposed solution" in requests[0].messages[-1]["content"] else "S")
            delay = self.rng.uniform(0, 0.05)
        time.sleep(delay)
        return super().generate(requests)


@pytest.mark.parametrize("in_flight", [2, 3])
def test_local_jobs_in_flight_give_the_local_tables(tmp_path, want, in_flight):
    """A sampler that takes concurrent calls runs max_in_flight jobs at once in this process: the
    next chunk is sampled before the first chunk's reflections, results commit as they come, and
    the tables are those of one job at a time."""
    log: list[str] = []
    ex = LocalExecutor(in_flight)
    run_pipeline(small(tmp_path), sampler=Shuffled(log), executor=ex, **quiet)
    assert log[:2] == ["S", "S"] and sorted(log) == ["R", "R", "S", "S"]
    assert_same(tables(tmp_path / "st"), want)


def test_local_executor_raises_the_first_error_of_jobs_in_flight():
    class Failing(ScriptedSampler):
        concurrent_calls = True

    def work(plan, sampler):
        time.sleep(plan)
        if plan == 0:
            raise TracekitError("job failed")
        return plan

    ex = LocalExecutor(2)
    ex.start(Build(ready=Failing()))
    with pytest.raises(TracekitError, match="job failed"):
        list(ex.map(Job(work, p) for p in (0.2, 0)))
    assert [r for _, r in LocalExecutor(1).map([])] == []


class Logging(ScriptedSampler):
    """Appends S (a sampling call) or R (a reflection call) to ``log`` for every call."""

    def __init__(self, log: str) -> None:
        super().__init__(answerer)
        self.log = log

    def generate(self, requests):
        kind = "R" if "Proposed solution" in requests[0].messages[-1]["content"] else "S"
        with open(self.log, "a") as fh:
            fh.write(kind)
        return super().generate(requests)


class Closing(ScriptedSampler):
    closed = 0

    def close(self) -> None:
        Closing.closed += 1


def test_every_backend_can_be_closed_and_the_local_executor_closes_what_it_built(monkeypatch):
    from tracekit.sampling.registry import BACKENDS, backend_class

    assert all(callable(getattr(backend_class(name), "close", None)) for name in BACKENDS)
    ex = LocalExecutor()
    ex.start(Build(ready=Closing()))
    ex.close()
    assert Closing.closed == 0  # a ready sampler is its maker's to close
    monkeypatch.setattr("tracekit.sampling.registry.make_sampler", lambda backend, **kw: Closing())
    ex.start(Build("scripted"))
    ex.close()
    ex.close()
    assert Closing.closed == 1  # once


def test_sampling_of_the_next_chunk_overlaps_reflection(cluster, tmp_path):
    """Locally a chunk's reflections run before the next chunk's samples; on one Ray actor with two
    batches in flight, the next chunk is sampled while the driver writes the first and plans its reflections."""
    run_pipeline(small(tmp_path, "local"), sampler=Logging(str(tmp_path / "local.log")), **quiet)
    assert (tmp_path / "local.log").read_text() == "SRSR"
    ex = make_executor(ray_cfg(replicas=1))
    run_pipeline(small(tmp_path), sampler=Logging(str(tmp_path / "ray.log")), executor=ex, **quiet)
    assert (tmp_path / "ray.log").read_text() == "SSRR"


def test_ray_gives_the_local_tables(cluster, tmp_path, want):
    """Same config and seed: the Ray executor (2 replicas, results out of order) writes the local tables;
    so does an eval with budget forcing."""
    ex = make_executor(ray_cfg())
    summary = run_pipeline(small(tmp_path), sampler=ScriptedSampler(answerer), executor=ex, **quiet)
    assert summary["samples"] == 24 and summary["reflections"] == 48
    assert_same(tables(tmp_path / "st"), want)
    assert ex.actors == []  # closed: the actors are gone

    def eval_cfg(executor):
        return from_mapping(
            EvalConfig,
            {
                "store": str(tmp_path / "ev"),
                "models": [{"label": "m", "backend": "scripted"}],
                "tasks": [{"name": "multiplication", "n": 4}],
                "k": 2,
                "chunk_problems": 2,
                "params": {"max_tokens": 16},
                "budget_forcing": {"trigger": "Wait", "total_tokens": 40},
                "decontaminate": {"enabled": False},
                "executor": executor,
            },
            "eval.yaml",
        )

    local = run_eval(eval_cfg({"backend": "local"}), samplers={"m": ScriptedSampler()}, **quiet)
    evals = Store(tmp_path / "ev").read("evals").sort("eval_id")
    shutil.rmtree(tmp_path / "ev")
    out = run_eval(
        eval_cfg({"backend": "ray", "replicas": 2}), **quiet
    )  # each actor builds `scripted` itself
    assert out["new_rows"] == local["new_rows"] == {"base": 8, "forced": 8}
    assert Store(tmp_path / "ev").read("evals").sort("eval_id").equals(evals)


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "gone"])
def test_a_killed_actor_is_restarted_and_its_batches_sent_again(cluster, tmp_path, want, restart):
    """``ray.kill`` an actor inside a call: its batch goes to another actor, Ray restarts it (or, killed
    for good, the other actor does the rest), and the run ends with the local tables."""
    flag = tmp_path / "flag"
    flag.write_text("")
    ex = make_executor(ray_cfg(max_in_flight=1, max_restarts=3 if restart else 0))
    failed = []

    def drive():
        try:
            run_pipeline(small(tmp_path), sampler=Armed(str(flag), after=1), executor=ex, **quiet)
        except BaseException as exc:  # reported to the test below
            failed.append(exc)

    thread = threading.Thread(target=drive)
    thread.start()
    pid = int(wait_for(Path(str(flag) + ".pid")))
    victim = ex.actors[ex.pids.index(pid)]
    ray.kill(victim, no_restart=not restart)
    thread.join(timeout=180)
    assert not thread.is_alive() and not failed, failed
    assert ex.requeued >= 1
    assert_same(tables(tmp_path / "st"), want)
    samples = Store(tmp_path / "st").scan("samples").select("sample_id").collect()
    assert samples["sample_id"].is_unique().all()


DRIVER = """
import sys
from test_executor import Armed
from test_executor import small
from pathlib import Path
from tracekit.executor import ExecutorConfig, make_executor
from tracekit.pipeline import run_pipeline

tmp, address, flag = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
ex = make_executor(ExecutorConfig(backend="ray", address=address, replicas=2, max_in_flight=2))
run_pipeline(small(tmp), sampler=Armed(flag), executor=ex, progress=False, echo=lambda s: None)
"""


def test_sigkill_the_driver_then_rerun(cluster, tmp_path, want):
    """SIGKILL a Ray driver (a real process) while an actor is inside a call; run again: nothing lost,
    nothing finished regenerated, no id twice, the tables of a run never interrupted."""
    flag = tmp_path / "flag"
    flag.write_text("")
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path), cluster, str(flag)], cwd=TESTS)
    try:
        wait_for(Path(str(flag) + ".pid"))  # one actor is stuck in its first call
        end = time.monotonic() + 120
        while Store(tmp_path / "st").count("samples") == 0:  # the other actor's chunk is written
            assert time.monotonic() < end, "the driver wrote nothing"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    st = Store(tmp_path / "st")
    before = {t: st.count(t) for t in ("samples", "reflections")}
    assert st.count("runs") == 0 and 0 < before["samples"] < 24 and before["reflections"] < 48  # cut mid-run
    ex = make_executor(ray_cfg())
    summary = run_pipeline(small(tmp_path), sampler=ScriptedSampler(answerer), executor=ex, **quiet)
    assert summary["new_samples"] == 24 - before["samples"]
    assert summary["new_reflections"] == 48 - before["reflections"]
    for table in ("samples", "reflections"):
        ids = st.scan(table).select(pl.first()).collect().to_series()
        assert ids.is_unique().all(), table
    assert_same(tables(tmp_path / "st"), want)


def test_cli_runs_on_ray_and_bad_executor_is_one_error(cluster, tmp_path, tk):
    path = tmp_path / "run.yaml"
    data = settings(tmp_path / "st", tasks=[{"name": "multiplication", "n": 4}])
    data["executor"] = {"replicas": 2}
    path.write_text(json.dumps(data))
    status, _, err = tk("run", path, "--dry-run", "-q")
    assert status == 2 and err.count("error:") == 1 and "need executor.backend: ray" in err
    data["executor"] = {"backend": "ray", "replicas": 2}
    path.write_text(json.dumps(data))
    status, out, err = tk("run", path, "--dry-run", "-q")
    assert status == 0, err
    status, out2, err = tk("run", path, "--dry-run", "-q", "--executor", "local")  # rerun: nothing new
    assert status == 0 and Store(tmp_path / "st-dry-run").count("runs") == 2
    status, _, err = tk("run", path, "--dry-run", "--executor", "rey")
    assert status == 2 and "Did you mean 'ray'" in err


class Refusing(ScriptedSampler):
    def generate(self, requests):
        raise TracekitError("HTTP 400 from http://127.0.0.1:1/v1: bad request")


def test_a_replicas_error_reaches_the_driver_as_itself(cluster, tmp_path):
    """An error inside an actor (building its sampler, or a call) is the same tracekit error on the
    driver (one `error:` line in the CLI), and the run records nothing."""
    ex = make_executor(ray_cfg(replicas=1))
    with pytest.raises(ConfigError, match="backend 'scripted' has no option 'bogus'"):
        ex.start(Build("scripted", {"bogus": 1}))
    assert ex.actors == []
    with pytest.raises(TracekitError, match="HTTP 400 from"):
        run_pipeline(
            small(tmp_path), sampler=Refusing(), executor=make_executor(ray_cfg(replicas=1)), **quiet
        )
    assert Store(tmp_path / "st").count("runs") == 0


def test_eval_takes_executor_on_the_command_line(tmp_path, tk):
    path = tmp_path / "eval.yaml"
    data = {
        "store": str(tmp_path / "ev"),
        "models": [{"label": "m", "backend": "scripted"}],
        "tasks": [{"name": "multiplication", "n": 2}],
        "k": 1,
        "decontaminate": {"enabled": False},
        "executor": {"backend": "ray", "replicas": 2},
    }
    path.write_text(json.dumps(data))
    status, _, err = tk("eval", path, "--executor", "rey")
    assert status == 2 and err.count("error:") == 1 and "Did you mean 'ray'" in err
    status, out, err = tk("eval", path, "--executor", "local", "-q")  # the Ray settings are dropped
    assert status == 0, err
    assert Store(tmp_path / "ev").count("evals") == 2
