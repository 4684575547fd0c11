"""The command line's error contract, as one table: a command line -> exit status 2, one ``error:``
line naming what is wrong, where, and a hint -> nothing written.

Every row runs through the real command line (``tracekit.cli.main``, the console script's entry
point, in this process) in a fresh folder holding the row's files; ``{tmp}`` is that folder,
``{store}`` a copy of a small dry-run store in it (``tmp/st``) and ``{raw}`` a raw file in the reference
layout. After the command, every file and folder under it is as it was. Cases that need more than a
command line (a read-only or full disk, a file cut short, an import that fails late) live next to
the modules they test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cli_contract import BASE, GOOD, edited, one_error, tree


@dataclass(frozen=True)
class Case:
    """argv: the command line; needles: what its error names; files: relative path -> text or
    bytes (``None``: a folder) written first. ``{tmp}``, ``{store}`` and ``{raw}`` are replaced in all three."""

    id: str
    argv: list[str]
    needles: list[str]
    files: dict[str, str | bytes | None] = field(default_factory=dict)


def run_config_cases(case: str, config: str | bytes, needles: list[str], files=None, dry_runs=(False, True)):
    """A run config case, as ``tracekit run run.yaml`` and (with ``dry_runs``) under ``--dry-run``."""
    return [
        Case(
            f"run config: {case}" + (" (dry run)" if dry else ""),
            ["run", "run.yaml", *(["--dry-run"] if dry else []), "-q"],
            needles,
            {**(files or {}), "run.yaml": config},
        )
        for dry in dry_runs
    ]


# ---------------------------------------------------------------------------------------- run configs
# (case, config, words the error names); each also runs under --dry-run
CONFIG_CASES = [
    ("call_size 0", edited(reflection={"call_size": 0}), ["reflection", "call_size must be >= 1"]),
    ("seed 2^63", edited(seed=2**63), ["seed must be an integer from 0 to 9223372036854775807"]),
    ("seed negative", edited(seed=-1), ["seed must be"]),
    ("rearrange seed 2^63", edited(rearrange={"seed": 2**64}), ["rearrange", "seed must be"]),
    ("task n 0", edited(tasks=[{"name": "multiplication", "n": 0}]), ["tasks[0]", "n must be >= 1"]),
    ("task n negative", edited(tasks=[{"name": "multiplication", "n": -3}]), ["tasks[0]", "n must be >= 1"]),
    (
        "samples_per_variant 0",
        edited(sampling={"samples_per_variant": 0}),
        ["samples_per_variant must be >= 1"],
    ),
    (
        "samples_per_variant <0",
        edited(sampling={"samples_per_variant": -2}),
        ["samples_per_variant must be >= 1"],
    ),
    ("per_sample negative", edited(reflection={"per_sample": -1}), ["per_sample must be >= 0"]),
    ("variants empty", edited(sampling={"variants": []}), ["variants: at least one prompt variant"]),
    ("variants repeated", edited(sampling={"variants": ["plain", "plain"]}), ["listed more than once"]),
    ("few_shot -1", edited(sampling={"few_shot": -1}), ["few_shot must be >= 0"]),
    ("reflection few_shot -1", edited(reflection={"few_shot": -1}), ["reflection", "few_shot must be >= 0"]),
    ("top_k -5", edited(sampling={"params": {"top_k": -5}}), ["sampling.params", "top_k must be >= 0"]),
    (
        "repetition_penalty -1",
        edited(sampling={"params": {"repetition_penalty": -1}}),
        ["repetition_penalty must be > 0"],
    ),
    ("top_p 0", edited(reflection={"params": {"top_p": 0}}), ["reflection.params", "top_p"]),
    ("stop empty", edited(sampling={"params": {"stop": [""]}}), ["stop must be a list of non-empty strings"]),
    (
        "tasks mapping",
        edited(tasks={"name": "multiplication", "n": 4}),
        ["tasks: expected a list, got a mapping"],
    ),
    (
        "backend typo",
        edited(model={"backend": "transformer"}),
        ["unknown sampling backend", "'transformers'"],
    ),
    (
        "backend option typo",
        edited(model={"backend": "transformers", "options": {"batchsize": 4}}),
        ["backend 'transformers' has no option 'batchsize'", "'batch_size'"],
    ),
    (
        "backend option missing",
        edited(model={"backend": "http", "options": {"model": "m"}}),
        ["backend 'http' needs the option(s) ['base_url']"],
    ),
    ("variant typo", edited(sampling={"variants": ["plian"]}), ["unknown prompt variant 'plian'", "'plain'"]),
    (
        "variants file missing",
        edited(sampling={"variants_file": "no-such-variants.yaml"}),
        ["cannot read prompt variants file no-such-variants.yaml"],
    ),
    ("task typo", edited(tasks=[{"name": "multiplcation"}]), ["unknown task 'multiplcation'"]),
    ("task knob typo", edited(tasks=[{"name": "multiplication", "options": {"digitz": 2}}]), ["['digitz']"]),
    ("task knob value", edited(tasks=[{"name": "multiplication", "options": {"digits": 12}}]), ["digits"]),
    ("task split", edited(tasks=[{"name": "multiplication", "split": "dev"}]), ["split must be one of"]),
    ("dataset task without path", edited(tasks=[{"name": "gsm8k"}]), ["needs 'path'"]),
    ("generated task with path", edited(tasks=[{"name": "countdown", "path": "x.jsonl"}]), ["is generated"]),
    ("chunk_problems 0", edited(chunk_problems=0), ["chunk_problems must be >= 1"]),
    ("unknown key", edited(sampling={"samples": 3}), ["unknown key(s) ['samples']"]),
    ("rearrange n_max 0", edited(rearrange={"n_max": 0}), ["n_max must be >= 1"]),
    ("missing tasks", {k: v for k, v in BASE.items() if k != "tasks"}, ["missing key(s) ['tasks']"]),
]

CONFIG_FILES = [
    ("top level is a list", b"- store: st\n", ["expected a mapping", "got a list"]),
    ("not UTF-8", b"store: st\nseed: 0\n# caf\xe9\n", ["line 3: not UTF-8 text (byte 0xe9)"]),
    ("empty", b"", ["is empty", "'store' and 'tasks'"]),
    ("only a comment", b"# nothing yet\n", ["is empty"]),
    ("not YAML", b"store: [st\n", ["not valid YAML"]),
]

BASE_YAML = yaml.safe_dump(BASE, sort_keys=False)
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10) if prev else ', '.join(['x'] * 10)}]\n"
    for prev, name in zip([None, "a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e", "f"])
)


def with_lines(*lines: str) -> str:
    return BASE_YAML + "".join(line + "\n" for line in lines)


def section(name: str, body: str) -> str:
    """BASE without section ``name``, then ``name:`` with ``body`` (indented YAML lines)."""
    data = {k: v for k, v in BASE.items() if k != name}
    return (
        yaml.safe_dump(data, sort_keys=False) + f"{name}:\n" + "".join(f"  {b}\n" for b in body.splitlines())
    )


SAMPLING = "variants: [plain]\nsamples_per_variant: 2\n"
YAML_CASES = [
    ("key twice at the top", with_lines("seed: 1"), ["the key 'seed' is given twice (first at line"]),
    (
        "key twice in a section",
        section("sampling", SAMPLING + "params:\n  temperature: 0.7\n  top_p: 0.9\n  temperature: 1.0"),
        ["the key 'temperature' is given twice"],
    ),
    (
        "temperature .inf",
        section("sampling", SAMPLING + "params: {temperature: .inf}"),
        ["'.inf' is not a finite"],
    ),
    (
        "top_p .nan",
        section("sampling", SAMPLING + "params: {top_p: .NaN}"),
        ["'.NaN' is not a finite number"],
    ),
    (
        "max_tokens -.inf",
        section("reflection", "per_sample: 1\nparams: {max_tokens: -.inf}"),
        ["not a finite"],
    ),
    ("alias bomb", BASE_YAML + BOMB, ["more than 100,000 values once its aliases", "Hint:"]),
    ("alias of itself", with_lines("loop: &l [*l]"), ["an alias refers to the value that contains it"]),
    ("over 4 MiB", BASE_YAML + "#" + "x" * (4 * 2**20) + "\n", ["is larger than 4 MiB"]),
    (
        "samples that cannot finish",
        section("sampling", "variants: [plain]\nsamples_per_variant: 1000000000"),
        ["plans 4,000,000,000 samples, more than the bound of 100,000,000", "samples_per_variant"],
    ),
    (
        "reflections that cannot finish",
        section("reflection", "per_sample: 20000000"),
        ["plans 160,000,000 reflections", "per_sample"],
    ),
    (
        "1e9 is text in YAML",
        section("sampling", "samples_per_variant: 1e9"),
        ["expected int, got '1e9'", "1000000000"],
    ),
    (
        "transformers batch_size 0",
        section("model", "backend: transformers\noptions: {batch_size: 0}"),
        ["option 'batch_size' must be >= 1, got 0"],
    ),
    (
        "transformers model not a string",
        section("model", "backend: transformers\noptions: {model: 5}"),
        ["option 'model' must be a string, got 5"],
    ),
    (
        "transformers model a list",
        section("model", "backend: transformers\noptions: {model: [a, b]}"),
        ["option 'model' must be a string"],
    ),
    (
        "variants file not UTF-8",
        section("sampling", SAMPLING + "variants_file: latin.yaml"),
        ["line 2: not UTF-8"],
    ),
    (
        "variants file repeats a key",
        section("sampling", SAMPLING + "variants_file: twice.yaml"),
        ["prompt variants file twice.yaml: line 3", "the key 'instruction' is given twice"],
    ),
    (
        "variants file a folder",
        section("sampling", SAMPLING + "variants_file: afolder"),
        ["afolder is a directory"],
    ),
    (
        "phrases a folder",
        section("rearrange", "formats: ['*C_full']\nn_max: 2\nmin_samples: 1\nphrases: afolder"),
        ["phrase bank afolder is a directory"],
    ),
    (
        "phrases repeat a key",
        section("rearrange", "formats: ['*C_full']\nn_max: 2\nmin_samples: 1\nphrases: phrases.yaml"),
        ["phrase bank phrases.yaml: line", "the key 'ending' is given twice"],
    ),
]


def _default_bank() -> str:
    from tracekit.rearrange.phrases import DEFAULT_BANK

    return DEFAULT_BANK.read_text(encoding="utf-8")


# files the strict-reading cases name: not UTF-8, a key twice, a folder
SIDE_FILES = {
    "latin.yaml": b"- name: mine\n  instruction: r\xe9sous\n",
    "twice.yaml": "- name: mine\n  instruction: a\n  instruction: b\n",
    "afolder": None,
    "phrases.yaml": _default_bank() + "ending: [again]\n",
}

RUN = [
    *(
        c
        for case, data, needles in CONFIG_CASES
        for c in run_config_cases(case, yaml.safe_dump(data), ["run.yaml", *needles])
    ),
    *(
        c
        for case, text, needles in CONFIG_FILES
        for c in run_config_cases(case, text, ["run.yaml", *needles], dry_runs=(True,))
    ),
    Case("run config: a folder", ["run", "conf"], ["conf is a directory"], {"conf": None}),
    Case("run config: missing", ["run", "nope.yaml"], ["cannot read run config nope.yaml", "No such file"]),
    *(c for case, text, needles in YAML_CASES for c in run_config_cases(case, text, needles, SIDE_FILES)),
]

EVAL_MODELS = "models: [{label: base, backend: scripted}]\ntasks: [{name: multiplication, n: 2}]\n"
EVAL = [
    Case(
        "eval config: key twice",
        ["eval", "e.yaml"],
        ["eval config", "the key 'k' is given twice"],
        {"e.yaml": "store: ev\nk: 1\nk: 2\n" + EVAL_MODELS},
    ),
    Case(
        "eval config: -.inf",
        ["eval", "e.yaml"],
        ["'-.inf' is not a finite number"],
        {"e.yaml": "store: ev\nparams: {temperature: -.inf}\n" + EVAL_MODELS},
    ),
    Case(
        "eval config: responses that cannot finish",
        ["eval", "e.yaml"],
        ["plans 200,000,000 responses", "lower tasks[].n, the difficulties or k"],
        {"e.yaml": "store: ev\nk: 100000000\n" + EVAL_MODELS},
    ),
    Case(
        "eval config: empty",
        ["eval", "{tmp}/e.yaml"],
        ["eval config", "is empty", "'models'"],
        {"e.yaml": b""},
    ),
    Case(
        "eval config: a list",
        ["eval", "{tmp}/e.yaml"],
        ["eval config", "expected a mapping", "got a list"],
        {"e.yaml": b"- store: x\n"},
    ),
    Case(
        "eval config: not YAML",
        ["eval", "{tmp}/e.yaml"],
        ["eval config", "not valid YAML", "line "],
        {"e.yaml": b"store: x\nk: [1\n"},
    ),
    Case(
        "eval config: not UTF-8",
        ["eval", "{tmp}/e.yaml"],
        ["eval config", "line 2", "not UTF-8"],
        {"e.yaml": b"store: x\n# \xff\n"},
    ),
    Case("eval config: a folder", ["eval", "{tmp}"], ["is a directory"]),
    Case(
        "eval: a missing model folder",
        ["eval", "{tmp}/e.yaml"],
        ["does not exist", "Hint:"],
        {
            "e.yaml": "store: {tmp}/ev\nmodels: [{label: base, backend: transformers, options: {model: {tmp}/nope}}]\n"
            "tasks: [{name: multiplication, n: 2}]\nk: 1\n"
        },
    ),
]

# an eval config that works (test_the_good_eval_config_evaluates); each case edits its model or its task, and
# is refused when the config is read: before any problem is built, nothing written
EVAL_GOOD = {"store": "ev", "k": 1, "models": [{"label": "base", "backend": "scripted"}]}
EVAL_TASK = {"name": "multiplication", "n": 2, "options": {"digits": [2, 3], "digits_b": 1}}
EVAL_ENTRY_CASES = [
    (
        "backend typo",
        {"backend": "transformer"},
        {},
        ["models[0]", "unknown sampling backend", "'transformers'"],
    ),
    (
        "backend option typo",
        {"backend": "transformers", "options": {"batchsize": 4}},
        {},
        ["models[0]", "backend 'transformers' has no option 'batchsize'", "'batch_size'"],
    ),
    (
        "backend option value",
        {"backend": "transformers", "options": {"batch_size": 0}},
        {},
        ["models[0]", "'batch_size' must be >= 1"],
    ),
    (
        "unknown task",
        {},
        {"name": "multiplicaton"},
        ["tasks[0]", "unknown task 'multiplicaton'", "'multiplication'"],
    ),
    ("task n 0", {}, {"n": 0}, ["tasks[0]", "n must be >= 1"]),
    ("task option typo", {}, {"options": {"digitz": 2}}, ["tasks[0]", "unknown option(s) ['digitz']"]),
    (
        "a bad difficulty",
        {},
        {"options": {"digits": [2, 99]}},
        ["tasks[0]", "digits must be in [1, 9], got 99"],
    ),
    ("dataset task without path", {}, {"name": "gsm8k", "options": {}}, ["tasks[0]", "needs 'path'"]),
    ("task split", {}, {"split": "dev"}, ["tasks[0]", "split must be one of"]),
]
EVAL += [
    Case(
        f"eval config: {case}",
        ["eval", "e.yaml"],
        needles,
        {
            "e.yaml": yaml.safe_dump(
                {
                    **EVAL_GOOD,
                    "models": [{**EVAL_GOOD["models"][0], **model}],
                    "tasks": [{**EVAL_TASK, **task}],
                }
            )
        },
    )
    for case, model, task, needles in EVAL_ENTRY_CASES
]

TRAIN_CONFIG = "model: {tmp}/data\ndata: {tmp}/data\n"
TRAIN = [
    Case(
        f"train config: {case}",
        ["train", "sft", "{tmp}/t.yaml"],
        needles,
        {"data": None, "t.yaml": TRAIN_CONFIG + lines},
    )
    for case, lines, needles in [
        (
            "key twice",
            "learning_rate: 1.0e-5\nlearning_rate: 2.0e-5\n",
            ["train config", "the key 'learning_rate' is given twice"],
        ),
        (".inf", "learning_rate: .inf\n", ["'.inf' is not a finite number"]),
        ("max_length -5", "max_length: -5\n", ["max_length must be a whole number of tokens >= 1, got -5"]),
        ("max_length 0", "max_length: 0\n", ["max_length must be", "got 0"]),
    ]
] + [
    Case(
        f"train: a missing {key}",
        ["train", "sft", "{tmp}/t.yaml"],
        [f"{key} '{{tmp}}/missing' does not exist"],
        {"data": None, "t.yaml": TRAIN_CONFIG.replace(f"{key}: {{tmp}}/data", f"{key}: {{tmp}}/missing")},
    )
    for key in ("data", "model")
]

# ---------------------------------------------------------------------------------------- score
SCORE = [
    Case(f"score: {case}", ["score", *args], needles, {"in.jsonl": json.dumps(GOOD) + "\n"})
    for case, args, needles in [
        (
            "out is a folder",
            ["--task", "countdown", "--out", "{tmp}", "{tmp}/in.jsonl"],
            ["is a folder, not a file"],
        ),
        (
            "out under a file",
            ["--task", "countdown", "--out", "{tmp}/in.jsonl/x.jsonl", "{tmp}/in.jsonl"],
            ["in.jsonl is a file, not a folder"],
        ),
        (
            "out in a missing folder",
            ["--task", "countdown", "--out", "{tmp}/no/x.jsonl", "{tmp}/in.jsonl"],
            ["the folder", "does not exist"],
        ),
        (
            "input is a folder",
            ["--task", "countdown", "--out", "{tmp}/o.jsonl", "{tmp}"],
            ["is a folder, not a file"],
        ),
        (
            "input missing",
            ["--task", "countdown", "--out", "{tmp}/o.jsonl", "{tmp}/none.jsonl"],
            ["does not exist"],
        ),
        (
            "task typo",
            ["--out", "{tmp}/o.jsonl", "--task", "cuontdown", "{tmp}/in.jsonl"],
            ["unknown task", "'countdown'"],
        ),
    ]
]

# ---------------------------------------------------------------------------------------- stores and exports
EXPORT = [
    Case(
        "export: out is a file",
        ["export", "--store", "{store}", "--to", "trl-sft", "--out", "{tmp}/afile"],
        ["afile is a file, not a folder"],
        {"afile": "keep me"},
    ),
    Case(
        "export: out under a file",
        ["export", "--store", "{store}", "--to", "trl-sft", "--out", "{tmp}/afile/sub"],
        ["afile is a file, so no folder can be made under it"],
        {"afile": "keep me"},
    ),
    *(
        Case(f"export: {case}", ["export", "--store", "{store}", *to, *args, "--out", "{tmp}/out"], needles)
        for case, to, args, needles in [
            (
                "format in the wrong case",
                ["--to", "trl-sft"],
                ["--formats", "*c_full"],
                ["unknown trace format '*c_full'", "'*C_full'"],
            ),
            (
                "format the store lacks",
                ["--to", "trl-sft"],
                ["--formats", "*CC"],
                ["no traces of format(s) ['*CC']", "holds ['*C_full']"],
            ),
            (
                "grpo takes no formats",
                ["--to", "trl-grpo"],
                ["--formats", "*C_full"],
                ["does not take --formats"],
            ),
            ("grpo split typo", ["--to", "trl-grpo"], ["--split", "dev"], ["--split must be one of"]),
            ("unknown target", ["--to", "trl"], [], ["unknown export target 'trl'"]),
        ]
    ),
    *(
        Case(
            f"export: {to} {' '.join(args) or repr('')}",
            ["export", "--store", "{store}", "--to", to, "--out", "{tmp}/out", *args],
            needles,
        )
        for to, args, needles in [
            ("trl-sft", ["--formats", ""], ["--formats was given ''"]),
            ("hf", ["--tables", ","], ["--tables was given ','"]),
            ("hf", ["--max-length", "-5"], ["--max-length must be >= 1, got -5"]),
            ("hf", ["--max-length", "0"], ["--max-length must be >= 1, got 0"]),
        ]
    ),
    *(
        Case(
            f"export {to}: a folder named {name}",
            ["export", "--store", "{store}", "--to", to, "--out", "{tmp}/out"],
            [f"cannot write the file {{tmp}}/out/{name}: a folder of that name is in the way"],
            {f"out/{name}/keep.txt": "mine"},
        )
        for to, name in [
            ("trl-sft", "train.parquet"),
            ("trl-grpo", "train.parquet"),
            ("trl-sft", "tracekit-export.json"),
        ]
    ),
]

STORE_IS_A_FILE = [
    Case(
        f"{command[0]}: --store names a file",
        [*command, "--store", "{tmp}/afile"],
        ["is a file, not a store folder"],
        {"afile": "not a store"},
    )
    for command in (
        ["info"],
        ["rearrange"],
        ["import-skillfactory", "{raw}"],
        ["export", "--to", "trl-sft", "--out", "{tmp}/out"],
    )
]

IMPORT = [
    Case(
        "import: task typo",
        ["import-skillfactory", "{raw}", "--store", "{tmp}/st", "--task", "cuontdown"],
        ["unknown import task 'cuontdown'", "'countdown'"],
    ),
    Case(
        "import: task without a question reader",
        ["import-skillfactory", "{raw}", "--store", "{tmp}/st", "--task", "multiplication"],
        ["cannot read its verifier's fields"],
    ),
]

REARRANGE = [
    *(
        Case(
            f"rearrange: repeats {n}",
            ["rearrange", "--store", "{store}", "--repeats", n],
            ["repeats must be from 1 to 1000"],
        )
        for n in ("0", "1001", "100000")
    ),
    *(
        Case(
            f"rearrange: {' '.join(args)}",
            ["rearrange", "--store", "{store}", "--replace", *args],
            needles,
            files,
        )
        for args, needles, files in [
            (["--seed", str(2**63)], ["seed must be an integer from 0 to 9223372036854775807"], {}),
            (["--seed", "-1"], ["seed must be an integer"], {}),
            (["--n-max", "0"], ["n_max must be >= 1"], {}),
            (["--formats", "*c_full"], ["unknown trace format '*c_full'", "'*C_full'"], {}),
            (["--variants", "plian"], ["unknown prompt variant 'plian'", "'plain'"], {}),
            (["--formats", ""], ["--formats was given '', which names nothing"], {}),
            (["--formats", ","], ["--formats was given ','"], {}),
            (["--variants", ","], ["--variants was given ',', which names nothing"], {}),
            (["--variants", " "], ["--variants was given ' '"], {}),
            (["--phrases", "{tmp}"], ["is a directory"], {}),
            (
                ["--phrases", "{tmp}/latin.yaml"],
                ["line 1: not UTF-8 text (byte 0xe9)"],
                {"latin.yaml": b"ending: [caf\xe9]\n"},
            ),
        ]
    ),
]

READERS = [
    *(
        Case(
            f"info: --runs {n}",
            ["info", "--store", "{store}", "--runs", n],
            [f"--runs must be >= 1, got {n}"],
        )
        for n in ("-1", "0")
    ),
    # HF_ENDPOINT names a port nothing listens on: the checks come before the hub
    Case(
        "push: --max-length -5",
        ["push", "org/name", "--store", "{store}", "--max-length", "-5"],
        ["--max-length must be >= 1"],
    ),
    Case(
        "push: --tables ''",
        ["push", "org/name", "--store", "{store}", "--tables", ""],
        ["--tables was given ''"],
    ),
    Case(
        "report: into a missing folder",
        ["report", "--store", "{store}", "--out", "{tmp}/no/r.html"],
        ["does not exist"],
    ),
    Case(
        "skills: without evals",
        ["skills", "--store", "{store}", "--source", "evals"],
        ["has no evals", "tracekit eval"],
    ),
]

CASES = [*RUN, *EVAL, *TRAIN, *SCORE, *EXPORT, *STORE_IS_A_FILE, *IMPORT, *REARRANGE, *READERS]


def _filled(text, tmp: Path, store: Path | None, raw: Path | None):
    """``text`` (a str or bytes) with ``{tmp}``, ``{store}`` and ``{raw}`` replaced."""
    if isinstance(text, bytes):
        return text
    out = text.replace("{tmp}", str(tmp))
    if store is not None:
        out = out.replace("{store}", str(store))
    if raw is not None:
        out = out.replace("{raw}", str(raw))
    return out


def test_the_cases_have_unique_names():
    names = [c.id for c in CASES]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_command_line_fails_cleanly_and_writes_nothing(tk, tmp_path, monkeypatch, request, case):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    mentioned = " ".join([*case.argv, *(t for t in case.files.values() if isinstance(t, str))])
    store = request.getfixturevalue("store") if "{store}" in mentioned else None
    raw = request.getfixturevalue("raw") if "{raw}" in mentioned else None
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(_filled(content, tmp_path, store, raw), encoding="utf-8")
    before = tree(tmp_path)
    argv = [_filled(a, tmp_path, store, raw) for a in case.argv]
    one_error(tk(*argv), *(_filled(n, tmp_path, store, raw) for n in case.needles))
    assert tree(tmp_path) == before


# ---------------------------------------------------------------------------------------- the cases differ from these
def test_the_good_base_config_runs(tk, tmp_path, monkeypatch):
    """The run config cases differ from a config that works."""
    monkeypatch.chdir(tmp_path)
    Path("run.yaml").write_text(yaml.safe_dump(BASE), encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err
    assert "traces per format" in out


def test_the_good_eval_config_evaluates(tk, tmp_path, monkeypatch):
    """The eval config cases differ from a config that works."""
    monkeypatch.chdir(tmp_path)
    Path("e.yaml").write_text(yaml.safe_dump({**EVAL_GOOD, "tasks": [EVAL_TASK]}), encoding="utf-8")
    code, out, err = tk("eval", "e.yaml", "-q")
    assert code == 0, err
    assert "base" in out


def test_well_formed_side_files_and_merge_keys_still_work(tk, tmp_path, monkeypatch):
    """The strict-reading cases differ from files that work: a ``<<`` merge may override the keys it brings."""
    from tracekit.yamlfile import load_yaml

    assert load_yaml("a: &d {x: 1, y: 2}\nb: {<<: *d, x: 3}\n", "t")["b"] == {"x": 3, "y": 2}
    monkeypatch.chdir(tmp_path)
    Path("v.yaml").write_text("- name: mine\n  instruction: Solve it.\n", encoding="utf-8")
    text = section("sampling", "variants: [plain, mine]\nsamples_per_variant: 2\nvariants_file: v.yaml")
    Path("run.yaml").write_text(text, encoding="utf-8")
    code, out, err = tk("run", "run.yaml", "--dry-run", "-q")
    assert code == 0, err
