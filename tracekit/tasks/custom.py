"""Tasks from outside the package: a Python file, a module, or an installed plugin.

A task is named wherever tracekit takes a task name (a run or eval config's ``tasks:``,
``tracekit score --task``, ``tracekit tasks list --task``) as

* ``path/to/file.py:ClassName``: a class in a Python file (relative to the working directory);
* ``package.module:ClassName``: a class in an importable module;
* a plain name registered by an installed package under the ``tracekit.tasks`` entry-point
  group (``[project.entry-points."tracekit.tasks"] my_task = "my_pkg.tasks:MyTask"``).

The class subclasses :class:`tracekit.tasks.Task`. When it is loaded, :func:`check_task`
runs the task contract on it (the same check the test suite runs over every built-in task)
and any failure is one :class:`~tracekit.errors.ConfigError` naming what is wrong. A loaded
task is then known by its ``name`` for the rest of the process, and :func:`task_source`
says how to load it again (exports record it, so rewards in another process find it).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import random
import re
import sys
import traceback
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, UnknownNameError, unknown_name
from tracekit.tasks.base import TYPE_WORDS, Task

GROUP = "tracekit.tasks"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CLASS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# name -> (task, source): every task loaded from outside the package in this process
_LOADED: dict[str, tuple[Task, str]] = {}
# spec as written -> task (a spec named twice loads once)
_BY_SPEC: dict[str, Task] = {}

SPEC_HINT = (
    "Hint: name a task as a built-in name, path/to/file.py:ClassName, package.module:ClassName, "
    f"or a name an installed package registers under the {GROUP!r} entry points (`tracekit tasks list`)."
)


def is_spec(name: str) -> bool:
    """Whether ``name`` names a task by its code (``file.py:Class`` or ``module:Class``)."""
    return ":" in name


def task_source(name: str) -> str | None:
    """How to load the task ``name`` in another process (an absolute ``file.py:Class`` or
    ``module:Class``), or None for a built-in task."""
    found = _LOADED.get(name)
    return found[1] if found else None


def loaded_names() -> list[str]:
    """The names of the tasks loaded from outside the package in this process, in load order."""
    return list(_LOADED)


def set_verifier_timeout(task: Task, seconds: float | None, where: str) -> None:
    """Bound each of ``task``'s checks by ``seconds`` (a config's ``verifier_timeout``) for this process."""
    if seconds is None:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        msg = f"{where}: verifier_timeout must be a number of seconds > 0, got {seconds!r}."
        raise ConfigError(msg + "\nHint: e.g. verifier_timeout: 5")
    task.verifier_timeout = float(seconds)


def plugin_names() -> dict[str, str]:
    """The tasks installed packages register: name -> ``module:Class``."""
    from importlib.metadata import entry_points  # a built-in task name never needs it

    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def resolve(name: str, builtin: dict[str, Task]) -> Task:
    """The task ``name`` names outside the built-in registry ``builtin`` (see the module doc)."""
    if is_spec(name):
        if name not in _BY_SPEC:
            task, source = _load_spec(name)
            _register(task, source, builtin)
            _BY_SPEC[name] = task
        return _BY_SPEC[name]
    if name in _LOADED:
        return _LOADED[name][0]
    plugins = plugin_names()
    if name in plugins:
        task, source = _load_spec(plugins[name], where=f"entry point {name!r} ({GROUP})")
        if task.name != name:
            msg = (
                f"entry point {name!r} ({GROUP}) loads {plugins[name]}, whose task is named {task.name!r}.\n"
                "Hint: register the task under its own name."
            )
            raise ConfigError(msg)
        _register(task, source, builtin)
        return task
    known = [*builtin, *sorted(set(_LOADED) | set(plugins))]
    err = unknown_name("task", name, known)
    raise UnknownNameError(f"{err}\n{SPEC_HINT}") from None


def _register(task: Task, source: str, builtin: dict[str, Task]) -> None:
    if task.name in builtin:
        msg = f"{source}: task name {task.name!r} is a built-in task's name."
        raise ConfigError(msg + "\nHint: give the class another `name`.")
    if task.name in _LOADED and _LOADED[task.name][1] != source:
        msg = f"{source}: task name {task.name!r} is already taken by {_LOADED[task.name][1]}."
        raise ConfigError(msg + "\nHint: give each task its own `name`.")
    _LOADED[task.name] = (task, source)


def _load_spec(spec: str, where: str | None = None) -> tuple[Task, str]:
    """Import the class ``spec`` names, instantiate it and check it: (task, absolute source)."""
    where = where or f"task {spec!r}"
    target, _, cls_name = spec.rpartition(":")
    if not target or not _CLASS_RE.match(cls_name):
        msg = f"{where}: expected path/to/file.py:ClassName or package.module:ClassName."
        raise ConfigError(f"{msg}\n{SPEC_HINT}")
    if target.endswith(".py") or "/" in target or "\\" in target:
        module, source_target = _import_file(Path(target), where)
    elif _MODULE_RE.match(target):
        module, source_target = _import_module(target, where), target
    else:
        raise ConfigError(f"{where}: {target!r} is neither a .py file nor a module name.\n{SPEC_HINT}")
    source = f"{source_target}:{cls_name}"
    for task, known_source in _LOADED.values():
        if known_source == source:  # the same class named another way (a relative path): one task
            return task, source
    obj = getattr(module, cls_name, None)
    if obj is None:
        classes = [
            k
            for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, Task) and v is not Task
        ]
        err = unknown_name(f"task class in {source_target}", cls_name, classes or ["(none)"])
        raise ConfigError(f"{where}: {err}\nHint: the class must subclass tracekit.tasks.Task.")
    if isinstance(obj, type):
        if not issubclass(obj, Task):
            msg = f"{where}: {cls_name} is not a subclass of tracekit.tasks.Task."
            raise ConfigError(msg + "\nHint: `from tracekit.tasks import Task` and subclass it.")
        try:
            task = obj()
        except Exception as exc:
            msg = f"{where}: {cls_name}() failed: {type(exc).__name__}: {exc}{_user_line(exc, module)}."
            raise ConfigError(msg + "\nHint: a task class is built with no arguments.") from None
    elif isinstance(obj, Task):
        task = obj
    else:
        msg = f"{where}: {cls_name} is a {type(obj).__name__}, not a tracekit.tasks.Task subclass."
        raise ConfigError(msg + "\nHint: `from tracekit.tasks import Task` and subclass it.")
    check_task(task, where=f"task {source}")
    return task, source


def _import_file(path: Path, where: str):
    if not path.is_file():
        msg = f"{where}: task file {path} does not exist."
        raise ConfigError(msg + "\nHint: a file path is relative to the working directory.")
    path = path.resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    mod_name = f"tracekit_user_tasks.{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name], str(path)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{where}: cannot import {path} as Python.\nHint: give a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[mod_name]
        raise ConfigError(f"{where}: {_import_failure(exc, path)}") from None
    return module, str(path)


def _import_module(name: str, where: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            msg = f"{where}: no module named {exc.name!r}."
            raise ConfigError(
                msg
                + "\nHint: install the package that provides it, or name a file: path/to/file.py:ClassName."
            ) from None
        spec = importlib.util.find_spec(name.split(".")[0])
        origin = Path(spec.origin) if spec and spec.origin else None
        raise ConfigError(f"{where}: {_import_failure(exc, origin)}") from None
    except Exception as exc:
        spec = _find_spec_quietly(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        raise ConfigError(f"{where}: {_import_failure(exc, origin)}") from None


def _find_spec_quietly(name: str):
    try:
        return importlib.util.find_spec(name)
    except Exception:
        return None


def _import_failure(exc: BaseException, path: Path | None) -> str:
    """``file:line: what`` for an exception raised while importing the user's code."""
    if isinstance(exc, SyntaxError):
        loc = f"{exc.filename}:{exc.lineno}" if exc.filename else str(path)
        return f"{loc}: syntax error: {exc.msg}.\nHint: fix the file; `python {exc.filename}` shows the same error."
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path is not None and Path(f.filename).resolve() == path.resolve()]
    frame = (mine or frames or [None])[-1]
    loc = f"{frame.filename}:{frame.lineno}: " if frame is not None else ""
    what = "SystemExit" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
    return f"{loc}importing it raised {what}.\nHint: fix the file; importing it alone shows the same error."


def _user_line(exc: BaseException, module) -> str:
    """`` (file:line)`` of the deepest frame of ``exc`` in the user's module, or ''."""
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if Path(f.filename).resolve() == Path(path).resolve()
    ]
    return f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""


# -- the task contract -----------------------------------------------------------------------
def check_task(
    task: Task, knobs: dict[str, Any] | None = None, *, where: str | None = None, n: int = 3
) -> None:
    """Check ``task`` against the task contract; raise one :class:`ConfigError` naming the first breach.

    The contract: a ``name`` (letters, digits, ``_.-``) and a ``description``; ``knobs`` a
    mapping of option name to help text; ``fields`` the names its verifier reads, each with a
    type in ``field_types`` (one of ``int``, ``float``, ``str``, ``bool``, ``list[int]``,
    ``list[str]``, ``a|b`` for either); a ``check(answer, meta)``, and either a
    ``make_item(rng, **knobs)`` (a generated task) or a ``load(path, split=...)`` (a dataset
    task, ``generated = False``). A generated task must also make, at ``knobs``, ``n``
    problems with a ``question`` and a string ``answer``, JSON fields of the declared types,
    the same problem from the same seed, and an answer its own verifier scores correct. With
    ``knobs=None`` (a task being loaded), a ``make_item`` with options that have no defaults is
    checked later, at the options a config gives.

    Examples
    --------
    >>> from tracekit.tasks import get_task
    >>> check_task(get_task("multiplication"), {"digits": 3})
    >>> class NoCheck(Task):
    ...     name, description = "no_check", "a task without a verifier"
    ...     def make_item(self, rng):
    ...         return {"question": "1 + 1?", "answer": "2"}
    >>> check_task(NoCheck())
    Traceback (most recent call last):
    ...
    tracekit.errors.ConfigError: task 'no_check' does not meet the task contract: missing method check(answer, meta)...
    """
    where = where or f"task {getattr(task, 'name', type(task).__name__)!r}"
    problem = _contract_breach(task, knobs, n)
    if problem:
        msg = f"{where} does not meet the task contract: {problem}."
        raise ConfigError(msg + "\nHint: see docs/custom-tasks.md for what a task defines.")


def _contract_breach(task: Task, given: dict[str, Any] | None, n: int) -> str | None:
    cls = type(task)
    knobs = dict(given or {})
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        return f"`name` must be a short name of letters, digits, '_', '.', '-', got {name!r}"
    if not isinstance(getattr(task, "description", None), str):
        return "no `description` (a one-line string shown by `tracekit tasks list`)"
    knobs_ok = isinstance(task.knobs, dict) and all(isinstance(v, str) for v in task.knobs.values())
    if not knobs_ok or not all(isinstance(k, str) for k in task.knobs):
        return f"`knobs` must map each option name to its help text, got {task.knobs!r}"
    if isinstance(task.fields, str) or not all(isinstance(f, str) for f in task.fields):
        return f"`fields` must be a tuple of field names, got {task.fields!r}"
    if not isinstance(task.field_types, dict):
        return f"`field_types` must map field names to types, got {task.field_types!r}"
    for field, kinds in task.field_types.items():
        for kind in str(kinds).split("|"):
            if kind not in TYPE_WORDS:
                known = ", ".join(TYPE_WORDS)
                return f"field {field!r} has an unknown type {kind!r} (known: {known}; 'a|b' for either)"
    untyped = [f for f in task.fields if f not in task.field_types]
    if untyped:
        return f"field(s) {untyped} have no type in `field_types`"
    timeout = task.verifier_timeout
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        return f"`verifier_timeout` must be a number of seconds > 0 or None, got {timeout!r}"
    if cls.check is Task.check:
        return "missing method check(answer, meta) (the verifier)"
    if not task.generated:
        if not callable(getattr(task, "load", None)):
            return "a dataset task (generated = False) needs a method load(path, split=...)"
        return None
    if cls.make_item is Task.make_item:
        return "missing method make_item(rng, **knobs) (or set generated = False and define load)"
    unknown = sorted(set(knobs) - set(task.knobs))
    if unknown:
        return f"unknown option(s) {unknown} (its knobs: {sorted(task.knobs)})"
    try:
        inspect.signature(task.make_item).bind(random.Random(0), **knobs)
    except TypeError as exc:
        if given is None:  # options without defaults: its problems are checked where a config gives them
            return None
        return f"make_item cannot take the options {knobs}: {exc}"
    for i in range(n):
        item, problem = _made(task, i, knobs)
        if problem:
            return problem
        again, _ = _made(task, i, knobs)
        if again != item:
            return f"make_item is not deterministic in rng (seed {i} made two different problems)"
        question, answer = item.pop("question"), item.pop("answer")
        try:
            json.dumps(item)
        except (TypeError, ValueError) as exc:
            return f"make_item's fields are not JSON ({exc})"
        wrong = task.field_error(item)
        if wrong:
            return f"make_item's problem: {wrong}"
        try:
            got = task.score(f"<answer>{answer}</answer>", item)
        except Exception as exc:
            return (
                f"check raised {type(exc).__name__}: {exc}{_user_line(exc, sys.modules.get(cls.__module__))}"
            )
        if not got.is_correct:
            return f"its own answer {answer!r} to {question[:60]!r} scores {got.reason!r}, not 'ok'"
    return None


def _made(task: Task, i: int, knobs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    try:
        item = task.make_item(random.Random(i), **knobs)
    except ConfigError as exc:
        return {}, f"make_item rejects the options {knobs}: {exc}"
    except Exception as exc:
        line = _user_line(exc, sys.modules.get(type(task).__module__))
        return {}, f"make_item raised {type(exc).__name__}: {exc}{line}"
    if not isinstance(item, dict):
        return {}, f"make_item must return a dict, got {type(item).__name__}"
    if not isinstance(item.get("question"), str) or not item["question"].strip():
        return {}, "make_item's dict needs a non-empty 'question' string"
    if not isinstance(item.get("answer"), str):
        return {}, f"make_item's 'answer' must be a string, got {item.get('answer')!r}"
    return item, None


def check_loaded(task: Task, problems, path, n: int = 3) -> None:
    """The first ``n`` loaded ``problems`` of a dataset task score their own answer right (the
    contract of a loaded task: a column mapping or checker that cannot read its own reference
    fails here, before any sampling). Built-in presets are trusted; ``regex`` rows, whose
    reference may itself be the pattern, are not checked."""
    if task_source(task.name) is None and task.name != "dataset":
        return
    for question, answer, meta_text in problems.head(n).select("question", "answer", "meta").iter_rows():
        meta = json.loads(meta_text)
        if meta.get("checker") == "regex":
            continue
        wrong = task.field_error(meta)
        got = None if wrong else task.score(f"<answer>{answer}</answer>", meta)
        if wrong or not got.is_correct:
            what = wrong or f"its reference answer {answer!r} scores {got.reason!r}, not 'ok'"
            msg = f"task {task.name!r} on {path}: problem {question[:60]!r}: {what}."
            raise ConfigError(
                msg + "\nHint: check the task's column mapping and checker (options: answer, checker)."
            )
