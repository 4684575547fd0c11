"""An imported sample is its content: the same rows in any order give the same store and traces.

The bundled example holds identical responses in different rows with different reflection lists;
when a sample's identity ignored its reflections, a shuffled import attached them to whichever copy
came first (24 extra reflections, other traces); when its index was the row number, the pool order
and so every draw depended on the file's order (regressions found by a review).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracekit.rearrange import RearrangeConfig, rearrange_store
from tracekit.reference import import_skillfactory
from tracekit.store import Store
from tracekit.store.views import view

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "skillfactory_raw_example.jsonl"


def _build(root: Path, raw: pl.DataFrame) -> dict[str, list[str]]:
    path = root.with_suffix(".jsonl")
    raw.write_ndjson(path)
    store = Store(root, create=True)
    import_skillfactory(path, store, progress=False)
    rearrange_store(store, RearrangeConfig(formats=("*C_full", "*CC"), n_max=3, min_samples=2))
    ids = {"samples": "sample_id", "reflections": "reflection_id", "traces": "trace_id"}
    return {t: sorted(view(store, t).select(c).collect().to_series().to_list()) for t, c in ids.items()}


def test_a_shuffled_file_imports_as_the_same_rows(tmp_path):
    raw = pl.read_ndjson(EXAMPLE)
    responses = raw.select(pl.col("model_responses__mutated_prompts").explode()).to_series()
    assert responses.is_duplicated().any()  # the case that matters: identical responses in several rows
    ordered = _build(tmp_path / "ordered", raw)
    for seed in (1, 2):
        shuffled = _build(tmp_path / f"shuffled{seed}", raw.sample(fraction=1.0, shuffle=True, seed=seed))
        assert shuffled == ordered
