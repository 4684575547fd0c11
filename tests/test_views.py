"""The current view of a store and the runs helper: which rows a store means, and history on request."""

import json

import polars as pl
import pytest

from tracekit.errors import StoreError
from tracekit.store import Store
from tracekit.store.manifest import recording
from tracekit.store.views import find_run, view, view_ids, view_runs
from tracekit.tasks import get_task


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "st", create=True)
    st.write("problems", get_task("multiplication").generate(6, seed=0))
    return st


def ids(store, **kw):
    found = view_ids(store, "problems", **kw)
    return None if found is None else sorted(found.to_list())


def define(store, command, pids, *, extends=False, config=None):
    with recording(store, command, config or {"command": command, "pids": pids}) as rec:
        rec.add_view("problems", pl.Series(pids), extends=extends)
    return rec.run_id


def test_rows_no_finished_command_named_are_not_current(store):
    """Issue 17 item 4: rows written outside any finished command (a first command killed
    half-way leaves exactly this) are in no view, and ``info`` says so."""
    from tracekit.store.info import store_info
    from tracekit.store.views import outside_views

    assert ids(store) == [] and view(store, "problems").collect().height == 0
    with recording(store, "export", {}):  # a command that defines nothing
        pass
    assert ids(store) == [] and outside_views(store, "problems") == 6
    assert any("6 row(s) are in no view" in w for w in store_info(store)["warnings"])


def test_replace_and_extend(store):
    pids = sorted(store.read("problems")["problem_id"].to_list())
    first = define(store, "run", pids[:2])
    assert ids(store) == pids[:2] and view(store, "problems").collect().height == 2
    define(store, "import", pids[2:4], extends=True)
    define(store, "import", pids[3:5], extends=True)
    assert ids(store) == pids[:5]  # imports add to the view
    last = define(store, "run", pids[5:])
    assert ids(store) == pids[5:] and view_runs(store, "problems") == [last]
    # history: as it was after each run, by run id or by configuration hash
    assert ids(store, run=first) == pids[:2]
    config_hash = store.read("runs").filter(pl.col("run_id") == first)["config_hash"][0]
    assert find_run(store, config_hash) == first and ids(store, run=config_hash) == pids[:2]


def test_a_view_of_every_row_reads_the_table_whole(store):
    define(store, "run", store.read("problems")["problem_id"].to_list())
    assert ids(store) is None  # nothing to restrict


def test_a_failed_command_changes_no_view(store):
    pids = sorted(store.read("problems")["problem_id"].to_list())
    define(store, "run", pids[:2])
    with pytest.raises(RuntimeError), recording(store, "run", {}) as rec:
        rec.add_view("problems", pl.Series(pids[2:]))
        raise RuntimeError("killed")
    assert ids(store) == pids[:2] and store.count("runs") == 1


def test_a_big_view_is_written_as_it_is_named(store, monkeypatch):
    """Views rows are staged every VIEW_ROW_IDS ids (a command holds at most that many) and
    appear together at the end; a command that fails after staging some leaves none."""
    import tracekit.store.manifest as manifest

    monkeypatch.setattr(manifest, "VIEW_ROW_IDS", 2)
    pids = sorted(store.read("problems")["problem_id"].to_list())
    with recording(store, "run", {}) as rec:
        for start in (0, 3, 4):  # pieces of 3, 1 and 2 ids
            rec.add_view("problems", pl.Series(pids[start : {0: 3, 3: 4, 4: 5}[start]]))
        assert store.count("views") == 0  # staged, not yet committed
    rows = store.read("views")
    assert rows["ids"].to_list() == [pids[0:2], pids[2:4], pids[4:5]]
    assert ids(store) == pids[:5]
    with pytest.raises(RuntimeError), recording(store, "run", {}) as rec:
        rec.add_view("problems", pl.Series(pids[1:]))
        raise RuntimeError("killed")
    assert ids(store) == pids[:5] and store.count("views") == 3
    assert not [p for p in (store.root / "views").iterdir() if p.name.startswith(".")]  # no temporaries left


def test_unknown_run_and_table(store):
    define(store, "run", ["p-x"])
    with pytest.raises(StoreError, match="no run has the id or configuration hash 'nope'.*\nHint"):
        view(store, "problems", run="nope")
    with pytest.raises(StoreError, match="has no view"):
        view_runs(store, "runs")
    assert view(store, "runs").collect().height == store.count("runs")  # a table without views: every row


def test_the_runs_row(store):
    with recording(store, "demo", {"a": 1}, seed=3) as rec:
        with rec.stage("work"):
            rec.add_written("problems", 2)
        rec.set_model("m", "rev", {"temperature": 0.7})
        rec.drops["x/y"] += 1
    row = store.read("runs").row(0, named=True)
    assert (row["command"], row["seed"], row["model"], row["model_revision"]) == ("demo", 3, "m", "rev")
    assert row["run_id"] == rec.run_id and json.loads(row["config_json"]) == {"a": 1}
    assert json.loads(row["row_counts_json"])["new"] == {"problems": 2}
    assert json.loads(row["drops_json"]) == {"x/y": 1} and set(json.loads(row["timings_json"])) == {
        "work",
        "total",
    }
    assert row["started_at"] <= row["finished_at"]


def test_ids_of_removed_rows_do_not_make_a_view_whole(store):
    """As many ids as the table has rows is not a view of every row when some name removed rows
    (what `rearrange --replace` leaves behind); the count shortcut returned every row."""
    pids = sorted(store.read("problems")["problem_id"].to_list())
    define(store, "run", pids[:5] + ["p-removed-by-a-replace"])
    assert ids(store) is not None and view(store, "problems").collect().height == 5


def test_a_view_before_any_recorded_view_is_an_error_not_every_row(store):
    with recording(store, "export", {}) as rec:  # a run that recorded no view of problems
        pass
    define(store, "run", sorted(store.read("problems")["problem_id"].to_list())[:2])
    with pytest.raises(StoreError, match="no command had recorded a view of table 'problems' by run"):
        view(store, "problems", run=rec.run_id)


def test_card_and_report_count_the_current_view(store, tmp_path):
    from tracekit.evaluate.report import write_report
    from tracekit.export.stats import card_stats
    from tracekit.store.views import view_counts

    define(store, "run", sorted(store.read("problems")["problem_id"].to_list())[:2])
    assert view_counts(store)["problems"] == 2 and store.count("problems") == 6
    assert card_stats(store)["counts"]["problems"] == 2
    page = write_report(store, tmp_path / "r.html").read_text()
    assert "problems 2 (of 6 stored)" in page


@pytest.mark.parametrize("cover_rows", [1, 2, 4, 1_000])
def test_cover_checks_in_slices_agree(store, monkeypatch, cover_rows):
    """The checks whether a view names every row, and how many rows no view names, run in
    slices of the hash space when the table is big (flat memory): any slicing gives the same
    answers as one pass."""
    from tracekit.store import views
    from tracekit.store.views import outside_views

    monkeypatch.setattr(views, "COVER_ROWS", cover_rows)
    pids = sorted(store.read("problems")["problem_id"].to_list())
    define(store, "run", pids[:5])
    assert ids(store) == pids[:5] and outside_views(store, "problems") == 1
    define(store, "import", pids[5:], extends=True)
    assert ids(store) is None and outside_views(store, "problems") == 0
    define(store, "run", pids[:5] + ["p-removed-by-a-replace"])
    assert ids(store) is not None and view(store, "problems").collect().height == 5


@pytest.mark.parametrize("cover_rows", [1, 2, 1_000])
def test_repeated_ids_are_counted_in_slices(store, monkeypatch, cover_rows):
    """``info``'s count of ids that occur more than once runs in slices of the hash space too."""
    from tracekit.store import views
    from tracekit.store.info import _repeated_ids
    from tracekit.store.transaction import Transaction

    monkeypatch.setattr(views, "COVER_ROWS", cover_rows)
    assert _repeated_ids(store, "problems", store.snapshot()) == 0
    new = get_task("multiplication").generate(3, seed=1)
    with Transaction(store, "problems", unique=True) as tx:  # a writer that broke its promise
        tx.write("problems", new.head(2))
        tx.write("problems", new)
    assert _repeated_ids(store, "problems", store.snapshot()) == 2


@pytest.mark.parametrize("cover_rows", [1, 3, 1_000])
def test_rows_naming_a_problem_outside_the_view_are_counted_in_slices(tmp_path, monkeypatch, cover_rows):
    """``info`` counts the samples and traces of the current view whose problem is outside the
    problems' view, in slices of the hash space (flat memory): any slicing gives the exact count."""
    from tracekit.reference import import_skillfactory, synthetic_raw
    from tracekit.store import views
    from tracekit.store.info import store_info

    monkeypatch.setattr(views, "COVER_ROWS", cover_rows)
    raw = tmp_path / "raw.parquet"
    synthetic_raw(5, response_chars=40, reflection_chars=20).write_parquet(raw)
    store = Store(tmp_path / "st", create=True)
    import_skillfactory(raw, store)
    assert not [w for w in store_info(store)["warnings"] if "outside it" in w]
    samples = store.read("samples")
    kept = sorted(store.read("problems")["problem_id"].to_list())[:3]
    define(store, "run", kept)  # the problems' view loses two problems, the samples' keeps them
    expected = samples.filter(~pl.col("problem_id").is_in(kept)).height
    assert expected > 0
    warnings = store_info(store)["warnings"]
    assert f"samples: {expected} row(s) in the current view name a problem outside it" in warnings
