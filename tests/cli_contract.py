"""What the command-line error tests share: the clean-failure check, a folder's snapshot, and a
small run config to edit.

Bad input ends in one ``error:`` line (what, where, a hint), exit status 2 and nothing written.
:func:`one_error` checks the first three, :func:`tree` the last (compare it before and after).
The table of such cases is ``tests/test_cli_errors.py``; the cases that need more than a command
line live next to the modules they test. The fixtures ``store`` (a copy of a small dry-run store
with traces) and ``raw`` (a raw file in the reference layout) are in ``conftest.py``.
"""

from __future__ import annotations

import json
from pathlib import Path


def one_error(result, *needles: str) -> str:
    """Check a clean failure: status 2, exactly one ``error:`` line, a hint, no traceback; return it."""
    code, out, err = result
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, (code, out, err)
    assert len(errors) == 1, err
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "Hint:" in err or "Known:" in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def tree(root: Path) -> dict[str, tuple[int, int] | str]:
    """Every file under ``root`` with its size and modification time, and every folder (whose
    own times change when a writability probe creates and removes a file in it). A writer's lock
    file in ``.writers/`` is left out: it says a writer process is alive, not what the store holds
    (a process removes it when it exits; these tests run the command line in-process)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "folder"
        for p in root.rglob("*")
        if ".writers" not in p.relative_to(root).parts
    }


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# a run config that works (a dry run of it builds traces); the error cases edit one thing of it
BASE = {
    "store": "st",
    "seed": 0,
    "chunk_problems": 4,
    "model": {"backend": "scripted"},
    "tasks": [{"name": "multiplication", "n": 4, "options": {"digits": 2, "digits_b": 1}}],
    "sampling": {"variants": ["plain"], "samples_per_variant": 2},
    "reflection": {"per_sample": 1},
    "rearrange": {"formats": ["*C_full"], "n_max": 2, "min_samples": 1},
}


def edited(**sections) -> dict:
    """BASE with the given top-level keys replaced (a dict value updates that section)."""
    data = json.loads(json.dumps(BASE))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


# a line `tracekit score --task countdown` scores right
GOOD = {"numbers": [1, 2, 3], "target": 9, "response": "<answer>(1 + 2) * 3</answer>"}


def raw_rows(raw: Path, n: int | None = None) -> list[dict]:
    import polars as pl

    rows = pl.read_parquet(raw).to_dicts()
    return rows[:n] if n else rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
