"""Two ``hf`` exports in folders of the same name load their own rows through ``load_dataset``.

``datasets`` caches a local folder's configs by the folder's name and its card YAML; without a
content digest in each config, the second export's ``load_dataset(DIR, "sft")`` returned the
first one's cached rows (a regression found by a review).
"""

from __future__ import annotations

import json

import datasets
import polars as pl

from tracekit.export import run_export
from tracekit.rearrange import RearrangeConfig, rearrange_store
from tracekit.reference import import_skillfactory, synthetic_raw
from tracekit.store import Store


def _store(root, questions: int, seed: int) -> Store:
    raw = root / "raw.parquet"
    synthetic_raw(questions, response_chars=120, reflection_chars=60, seed=seed).write_parquet(raw)
    store = Store(root / "st", create=True)
    import_skillfactory(raw, store)
    rearrange_store(store, RearrangeConfig(formats=("*C_full",), n_max=2))
    return store


def test_same_folder_name_loads_its_own_rows(tmp_path):
    counts = []
    for i, questions in enumerate((6, 15)):
        root = tmp_path / f"case{i}"
        root.mkdir()
        store = _store(root, questions, seed=i)
        written = run_export(store, "hf", root / "hf", tables=["problems", "sft"])
        counts.append((written.counts, root / "hf"))
        row = store.read("runs").filter(pl.col("command") == "export").row(-1, named=True)
        assert json.loads(row["timings_json"])["export"] > 0  # the runs row times the export itself
        assert json.loads(row["config_json"])["exported"] == written.counts
    for wrote, folder in counts * 2:  # each twice, after the other was cached
        sft = datasets.load_dataset(str(folder), "sft")
        problems = datasets.load_dataset(str(folder), "problems")
        assert {s: sft[s].num_rows for s in sft} == {
            k[4:]: v for k, v in wrote.items() if k.startswith("sft/")
        }
        assert sum(problems[s].num_rows for s in problems) == sum(
            v for k, v in wrote.items() if k.startswith("problems/")
        )
