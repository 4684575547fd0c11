"""Golden fixture: a tiny hand-written raw file and the exact traces tracekit makes from it.

If an intended change alters the output, regenerate the expectation with
``python tests/test_golden.py`` and review the diff of tests/data/golden_traces.jsonl.
"""

import json
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
FORMATS = ("0C", "*C_full", "*C*IC", "*CC", "no_reflection")


def build(tmp: Path) -> list[dict]:
    from tracekit.rearrange import RearrangeConfig, rearrange_store
    from tracekit.reference import import_skillfactory
    from tracekit.store import Store

    store = Store(tmp / "st", create=True)
    import_skillfactory(DATA / "golden_raw.jsonl", store, task="countdown")
    rearrange_store(store, RearrangeConfig(formats=FORMATS, n_max=2, seed=0))
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


def test_golden_traces(tmp_path):
    got = build(tmp_path)
    expected = [json.loads(line) for line in (DATA / "golden_traces.jsonl").read_text().splitlines()]
    assert got == expected


def test_golden_filter_decisions(tmp_path):
    got = build(tmp_path)
    text = "\n".join(t["completion"] for t in got)
    # the reflection that calls a wrong sample correct, and the contradictory one, never appear
    assert "Looks fine." not in text and "<verdict>Correct</verdict> <verdict>Incorrect</verdict>" not in text
    # the multiplication question has one correct sample only: no *CC trace for it, but a *C*IC one
    mult = [t for t in got if "36" in (t["final_answer"] or "")]
    assert {t["format"] for t in mult} >= {"0C", "*C*IC"} and "*CC" not in {t["format"] for t in mult}


if __name__ == "__main__":  # regenerate the expectation
    import tempfile

    rows = build(Path(tempfile.mkdtemp()))
    (DATA / "golden_traces.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {len(rows)} traces", file=sys.stderr)
