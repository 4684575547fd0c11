"""Tasks from outside the package: a file, a module, an installed entry point; their contract check;
verifier timeouts; and the task source that exports carry to rewards in another process."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from tracekit.errors import ConfigError, UnknownNameError
from tracekit.tasks import base, custom, get_task, listed_tasks, task_problems, task_source

ROOT = Path(__file__).resolve().parents[1]
TRACEKIT = Path(sys.executable).parent / "tracekit"

SUMS = """
from tracekit.tasks import Check, Task


class Sums(Task):
    name = "{name}"
    description = "Add two numbers."
    knobs = {{"high": "largest operand (default 9)"}}
    fields = ("a", "b")
    field_types = {{"a": "int", "b": "int"}}

    def make_item(self, rng, high=9):
        a, b = rng.randint(1, int(high)), rng.randint(1, int(high))
        return {{"question": f"What is {{a}} + {{b}}?", "answer": str(a + b), "a": a, "b": b}}

    def check(self, answer, meta):
        ok = answer.strip() == str(meta["a"] + meta["b"])
        return Check(ok, "ok" if ok else "wrong_value", answer)
"""


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test starts with no task loaded from outside the package."""
    monkeypatch.setattr(custom, "_LOADED", {})
    monkeypatch.setattr(custom, "_BY_SPEC", {})
    monkeypatch.setattr(base, "_HUNG", [])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def one_error(result, *needles: str) -> str:
    code, out, err = result
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, (code, out, err)
    assert len(errors) == 1 and "Traceback" not in err + out, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_a_task_from_a_file_is_checked_then_known_by_name(tmp_path, monkeypatch):
    path = write(tmp_path / "my_tasks.py", SUMS.format(name="sums"))
    task = get_task(f"{path}:Sums")
    assert get_task("sums") is task and task_source("sums") == f"{path.resolve()}:Sums"
    monkeypatch.chdir(tmp_path)  # a relative path names the same file: the same task
    assert get_task("my_tasks.py:Sums") is task
    problems = task_problems("my_tasks.py:Sums", 5, seed=0, split="train", difficulties=[{"high": 50}])
    assert problems["task"].unique().to_list() == ["sums"] and problems.height == 5
    for answer, meta in problems.select("answer", "meta").iter_rows():
        assert task.score(f"<think>...</think><answer>{answer}</answer>", json.loads(meta)).reason == "ok"
    assert task.generate(5, seed=0, high=50).equals(task.generate(5, seed=0, high=50))


def test_a_task_from_a_module(tmp_path, monkeypatch):
    write(tmp_path / "lab_tasks" / "__init__.py", "")
    write(tmp_path / "lab_tasks" / "arith.py", SUMS.format(name="lab_sums"))
    monkeypatch.syspath_prepend(str(tmp_path))
    task = get_task("lab_tasks.arith:Sums")
    assert task.name == "lab_sums" and task_source("lab_sums") == "lab_tasks.arith:Sums"


def test_an_installed_entry_point_is_listed_and_found_by_name(tmp_path, monkeypatch, tk):
    """A real distribution on sys.path: a package plus its ``.dist-info`` with ``entry_points.txt``."""
    site = tmp_path / "site"
    write(site / "plugtasks" / "__init__.py", SUMS.format(name="plug_sums"))
    write(
        site / "plugtasks-0.1.dist-info" / "METADATA",
        "Metadata-Version: 2.1\nName: plugtasks\nVersion: 0.1\n",
    )
    write(
        site / "plugtasks-0.1.dist-info" / "entry_points.txt",
        "[tracekit.tasks]\nplug_sums = plugtasks:Sums\nplug_broken = plugtasks:Missing\n",
    )
    monkeypatch.syspath_prepend(str(site))
    assert get_task("plug_sums").name == "plug_sums"
    with pytest.raises(UnknownNameError, match="Did you mean 'plug_sums'"):
        get_task("plug_sum")
    code, out, err = tk("tasks", "list")
    assert code == 0 and "plug_sums: Add two numbers.  [plugtasks:Sums]" in out
    assert "countdown:" in out  # built-in tasks too
    assert "warning:" in err and "plug_broken" in err  # a broken plugin does not hide the others
    # a fresh process discovers it the same way (nothing cached from this one)
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run([TRACEKIT, "tasks", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0 and "plug_sums: Add two numbers." in listed.stdout, listed.stderr


def test_an_entry_point_must_use_its_task_name(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site / "othertasks" / "__init__.py", SUMS.format(name="real_name"))
    write(
        site / "othertasks-0.1.dist-info" / "METADATA",
        "Metadata-Version: 2.1\nName: othertasks\nVersion: 0.1\n",
    )
    write(
        site / "othertasks-0.1.dist-info" / "entry_points.txt", "[tracekit.tasks]\nalias = othertasks:Sums\n"
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigError, match="whose task is named 'real_name'"):
        get_task("alias")


GOOD_HEAD = """
import random
from tracekit.tasks import Check, Task

class T(Task):
    name = "t_task"
    description = "d"
    fields = ("a",)
    field_types = {"a": "int"}
"""
MAKE = """
    def make_item(self, rng):
        a = rng.randint(1, 9)
        return {"question": f"{a}?", "answer": str(a), "a": a}
"""
CHECK = """
    def check(self, answer, meta):
        return Check(answer == str(meta["a"]), "ok" if answer == str(meta["a"]) else "wrong_value", answer)
"""
CONTRACT_CASES = {
    "no verifier": (GOOD_HEAD + MAKE, ["missing method check(answer, meta)"]),
    "no generator": (GOOD_HEAD + CHECK, ["missing method make_item"]),
    "unknown field type": (
        GOOD_HEAD.replace('{"a": "int"}', '{"a": "float64"}') + MAKE + CHECK,
        ["field 'a' has an unknown type 'float64'"],
    ),
    "untyped field": (GOOD_HEAD.replace('("a",)', '("a", "b")') + MAKE + CHECK, ["['b'] have no type"]),
    "wrong oracle": (
        GOOD_HEAD + MAKE + CHECK.replace('answer == str(meta["a"])', "False"),
        ["scores 'wrong_value'"],
    ),
    "not deterministic": (
        GOOD_HEAD + MAKE.replace("rng.randint(1, 9)", "random.randint(1, 10**9)") + CHECK,
        ["not deterministic"],
    ),
    "generator raises": (
        GOOD_HEAD + MAKE.replace("a = rng.randint(1, 9)", "a = 1 // 0") + CHECK,
        ["ZeroDivisionError", "t.py:12"],
    ),
    "answer not a string": (
        GOOD_HEAD + MAKE.replace('"answer": str(a)', '"answer": a') + CHECK,
        ["'answer' must be a string"],
    ),
    "built-in name": (GOOD_HEAD.replace('"t_task"', '"countdown"') + MAKE + CHECK, ["built-in task's name"]),
    "bad timeout": (GOOD_HEAD + "    verifier_timeout = -1\n" + MAKE + CHECK, ["verifier_timeout"]),
    "import error": (
        "import json\nx = 1\nraise RuntimeError('setup failed')\n",
        ["t.py:3", "RuntimeError: setup failed"],
    ),
    "missing import": ("import json\nimport no_such_package_xyz\n", ["t.py:2", "ModuleNotFoundError"]),
    "syntax error": ("def broken(:\n    pass\n", ["t.py:1", "syntax error"]),
    "no such class": (GOOD_HEAD.replace("class T(", "class Tee(") + MAKE + CHECK, ["Did you mean 'Tee'"]),
    "not a task": ("class T:\n    pass\n", ["not a subclass of tracekit.tasks.Task"]),
}


@pytest.mark.parametrize("case", list(CONTRACT_CASES))
def test_a_task_that_breaks_the_contract_is_one_error(case, tmp_path, tk):
    text, needles = CONTRACT_CASES[case]
    path = write(tmp_path / "t.py", text)
    one_error(tk("tasks", "list", "--task", f"{path}:T"), *needles)


@pytest.mark.parametrize(
    "name, needles",
    [
        ("{tmp}/absent.py:T", ["does not exist"]),
        ("no_such_module_xyz.tasks:T", ["no module named 'no_such_module_xyz'"]),
        ("countdwn", ["Did you mean 'countdown'", "file.py:ClassName"]),
        ("{tmp}/t.py:", ["expected path/to/file.py:ClassName"]),
    ],
)
def test_a_name_that_is_no_task_is_one_error(name, needles, tmp_path, tk):
    one_error(tk("tasks", "list", "--task", name.format(tmp=tmp_path)), *needles)


def test_a_run_config_checks_a_file_tasks_options(tmp_path, tk):
    path = write(tmp_path / "my_tasks.py", SUMS.format(name="sums"))
    for options, needle in [("{high: 0}", "invalid option value"), ("{hgh: 3}", "unknown option")]:
        write(
            tmp_path / "run.yaml",
            f"store: {tmp_path}/st\ntasks:\n  - name: {path}:Sums\n    options: {options}\n",
        )
        one_error(tk("run", str(tmp_path / "run.yaml"), "--dry-run", "-q"), needle)


def test_score_command_with_a_file_task(tmp_path, tk):
    path = write(tmp_path / "my_tasks.py", SUMS.format(name="sums"))
    src = tmp_path / "in.jsonl"
    lines = [
        {"a": 2, "b": 3, "response": "<answer>5</answer>"},
        {"a": 2, "b": 3, "response": "<answer>6</answer>"},
    ]
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    code, out, err = tk("score", src, "--task", f"{path}:Sums", "--out", tmp_path / "out.jsonl")
    assert code == 0, err
    scored = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [s["reason"] for s in scored] == ["ok", "wrong_value"]


SLOW = """
import threading, time
from tracekit.tasks import Check, Task

RELEASE = threading.Event()


class Slow(Task):
    name = "slow"
    description = "A verifier that hangs on the answer 'hang' and takes a while on 'slow'."
    fields = ("x",)
    field_types = {"x": "int"}

    def make_item(self, rng):
        x = rng.randint(1, 9)
        return {"question": f"Say {x}.", "answer": str(x), "x": x}

    def check(self, answer, meta):
        if answer == "hang":
            RELEASE.wait(60)
        if answer == "slow":
            time.sleep(0.3)
        return Check(answer == str(meta["x"]), "ok" if answer == str(meta["x"]) else "wrong_value", answer)
"""


def test_verifier_timeout_turns_a_hang_into_a_timeout_verdict(tmp_path, monkeypatch):
    from tracekit.pipeline.config import TaskSpec

    path = write(tmp_path / "slow.py", SLOW)
    TaskSpec(name=f"{path}:Slow", verifier_timeout=0.2)
    task = get_task("slow")
    release = sys.modules[type(task).__module__].RELEASE
    try:
        start = time.perf_counter()
        assert task.score("<answer>hang</answer>", {"x": 3}).reason == "timeout"
        assert time.perf_counter() - start < 5
        assert task.score("<answer>3</answer>", {"x": 3}).reason == "ok"  # the next call is not stuck
        monkeypatch.setattr(base, "MAX_HUNG_CHECKS", 2)
        assert task.score("<answer>hang</answer>", {"x": 3}).reason == "timeout"
        with pytest.raises(ConfigError, match="still running past verifier_timeout"):
            task.score("<answer>hang</answer>", {"x": 3})  # two hung checks: stop, not pile up threads
    finally:
        release.set()
    with pytest.raises(ConfigError, match="verifier_timeout must be a number of seconds > 0"):
        TaskSpec(name=f"{path}:Slow", verifier_timeout=0)


def test_a_run_with_a_slow_verifier_finishes_with_timeout_verdicts(tmp_path, tk, monkeypatch):
    path = write(tmp_path / "slow.py", SLOW.replace('if answer == "slow"', 'if answer != str(meta["x"])'))
    write(
        tmp_path / "run.yaml",
        f"""
        store: {tmp_path}/st
        tasks:
          - {{name: "{path}:Slow", n: 3, verifier_timeout: 0.05}}
        sampling: {{variants: [plain], samples_per_variant: 4}}
        reflection: {{per_sample: 1}}
        """,
    )
    code, out, err = tk("run", str(tmp_path / "run.yaml"), "--dry-run", "--store", tmp_path / "st")
    assert code == 0, err
    from tracekit.store import Store

    reasons = Store(tmp_path / "st").read("samples")["reason"].to_list()
    assert "timeout" in reasons and "ok" in reasons


def test_exports_carry_the_task_source_to_rewards_in_another_process(tmp_path, tk):
    path = write(tmp_path / "tasks" / "my_tasks.py", SUMS.format(name="sums"))
    write(
        tmp_path / "run.yaml",
        f"""
        store: {tmp_path}/st
        tasks:
          - {{name: "{path}:Sums", n: 4}}
          - {{name: multiplication, n: 2}}
        sampling: {{variants: [plain], samples_per_variant: 2}}
        reflection: {{per_sample: 1}}
        """,
    )
    assert tk("run", str(tmp_path / "run.yaml"), "--dry-run", "--store", tmp_path / "st", "-q")[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for to in (
        "trl-grpo",
        "verl",
    ):  # fresh processes, another working directory: the store says how to load it
        done = subprocess.run(
            [TRACEKIT, "export", "--store", tmp_path / "st", "--to", to, "--out", tmp_path / to],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    grpo = pl.read_parquet(tmp_path / "trl-grpo" / "train.parquet")
    source = f"{path.resolve()}:Sums"
    assert set(zip(grpo["task"], grpo["task_source"])) == {("sums", source), ("multiplication", None)}
    manifest = json.loads((tmp_path / "trl-grpo" / "tracekit-export.json").read_text())
    assert manifest["options"]["task_sources"] == {"sums": source}
    verl = pl.read_parquet(tmp_path / "verl" / "rl" / "train.parquet")
    script = textwrap.dedent(
        f"""
        import json, polars as pl
        from tracekit.trainers.rewards import correctness_reward
        from tracekit.trainers.verl_reward import compute_score
        g = pl.read_parquet({str(tmp_path / "trl-grpo" / "train.parquet")!r})
        right = ["<answer>%s</answer>" % a for a in g["answer"]]
        wrong = ["<answer>%s9</answer>" % a for a in g["answer"]]
        cols = dict(task=g["task"].to_list(), meta=g["meta"].to_list(), task_source=g["task_source"].to_list())
        v = pl.read_parquet({str(tmp_path / "verl" / "rl" / "train.parquet")!r})
        scores = [compute_score(data_source=r["data_source"], solution_str="<answer>%s</answer>" % a,
                                ground_truth=r["reward_model"]["ground_truth"], extra_info=r["extra_info"])
                  for r, a in zip(v.iter_rows(named=True), g["answer"])]
        print(json.dumps([correctness_reward(right, **cols), correctness_reward(wrong, **cols), scores]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    right, wrong, verl_scores = json.loads(done.stdout)
    assert right == [1.0] * grpo.height and wrong == [0.0] * grpo.height
    assert verl["problem_id" if "problem_id" in verl.columns else "data_source"].len() == grpo.height
    assert verl_scores == [1.0] * grpo.height  # both exports list problems in the same order


def test_listed_tasks_names_only_what_is_asked(tmp_path):
    path = write(tmp_path / "my_tasks.py", SUMS.format(name="sums"))
    listed = listed_tasks([f"{path}:Sums", "countdown"])
    assert list(listed) == ["sums", "countdown"]
    assert listed["sums"].source == f"{path.resolve()}:Sums" and listed["countdown"].source is None


def test_the_example_runs_into_traces(tmp_path, tk, monkeypatch):
    """examples/custom-task.yaml (docs/custom-tasks.md): a file task and a dataset task, to traces."""
    from tracekit.store import Store

    monkeypatch.chdir(ROOT)
    code, out, err = tk("run", "examples/custom-task.yaml", "--dry-run", "--store", tmp_path / "st", "-q")
    assert code == 0, err
    store = Store(tmp_path / "st")
    problems = store.read("problems")
    assert sorted(problems["task"].unique()) == ["dataset", "remainders"]
    traces = store.read("traces").join(problems.select("problem_id", "task"), on="problem_id")
    assert sorted(traces["task"].unique()) == ["dataset", "remainders"]


def test_the_task_contract_holds_for_every_built_in_task():
    """The same check a task from outside the package gets when it is loaded."""
    from tracekit.tasks import TASKS, check_task

    for task in TASKS.values():
        check_task(task)


def test_a_task_whose_options_have_no_defaults_is_checked_at_the_configs_options(tmp_path, tk):
    text = SUMS.format(name="needs_high").replace(
        "def make_item(self, rng, high=9)", "def make_item(self, rng, high)"
    )
    path = write(tmp_path / "t.py", text)
    code, out, err = tk("tasks", "list", "--task", f"{path}:Sums")
    assert code == 0 and "needs_high:" in out and "example: (none without options" in out, err
    from tracekit.pipeline.config import TaskSpec

    assert TaskSpec(name=f"{path}:Sums", options={"high": 4}).options == {"high": 4}
    with pytest.raises(ConfigError, match="invalid option value"):
        TaskSpec(name=f"{path}:Sums")
