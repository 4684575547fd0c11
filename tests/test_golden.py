"""Golden fixture: a tiny hand-written raw file and the exact traces tracekit makes from it,
for every format, in both layouts.

If an intended change alters the output, regenerate the expectations with
``python tests/test_golden.py`` and review the diff of tests/data/golden_*traces.jsonl.
"""

import json
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
FORMATS = ("0C", "*C", "*C_full", "*C*IC", "*CC", "random", "no_reflection", "alg1", "star")
EXPECTED = {"tracekit": DATA / "golden_traces.jsonl", "reference": DATA / "golden_reference_traces.jsonl"}


def build(tmp: Path, layout: str = "tracekit") -> list[dict]:
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    store = Store(tmp / f"st-{layout}", create=True)
    import_skillfactory(DATA / "golden_raw.jsonl", store, task="countdown")
    rearrange_store(store, RearrangeConfig(formats=FORMATS, n_max=2, seed=0, layout=layout))
    traces = store.read("traces").sort("trace_id")
    return [
        {
            k: row[k]
            for k in (
                "trace_id",
                "format",
                "n_samples",
                "completion",
                "final_answer",
                "final_correct",
                "phrase_ids",
            )
        }
        for row in traces.iter_rows(named=True)
    ]


@pytest.mark.parametrize("layout", list(EXPECTED))
def test_golden_traces(tmp_path, layout):
    got = build(tmp_path, layout)
    expected = [json.loads(line) for line in EXPECTED[layout].read_text().splitlines()]
    assert got == expected
    assert {t["format"] for t in got} == set(FORMATS)


def test_golden_filter_decisions(tmp_path):
    got = build(tmp_path)
    text = "\n".join(t["completion"] for t in got)
    # the reflection that calls a wrong sample correct, and the contradictory one, never appear
    assert "Looks fine." not in text and "<verdict>Correct</verdict> <verdict>Incorrect</verdict>" not in text
    # the multiplication question has one correct sample only: no *CC trace for it, but a *C*IC one
    mult = [t for t in got if "36" in (t["final_answer"] or "")]
    assert {t["format"] for t in mult} >= {"0C", "*C*IC"} and "*CC" not in {t["format"] for t in mult}


if __name__ == "__main__":  # regenerate the expectations
    import tempfile

    for layout, path in EXPECTED.items():
        rows = build(Path(tempfile.mkdtemp()), layout)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"wrote {len(rows)} {layout} traces to {path.name}", file=sys.stderr)
