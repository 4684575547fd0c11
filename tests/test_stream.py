"""Parts read one row group at a time (tracekit.store.stream): the same rows, in the same order
and the same pieces as polars' own scan, so a sink writes the same bytes."""

import polars as pl
import pytest

from tracekit.store.files import sink_parquet
from tracekit.store.stream import row_group_scan


@pytest.fixture
def parts(tmp_path):
    paths = []
    for i, (rows, group) in enumerate([(10, 3), (0, 4), (7, 7), (25, 4)]):
        frame = pl.DataFrame(
            {"n": list(range(rows)), "text": [f"row {i}-{r} " * (r + 1) for r in range(rows)]}
        )
        path = tmp_path / f"part-{i}.parquet"
        frame.write_parquet(path, row_group_size=group)
        paths.append(str(path))
    return paths


SCHEMA = pl.Schema({"n": pl.Int64, "text": pl.String})


@pytest.mark.parametrize(
    "query",
    [
        lambda f: f,
        lambda f: f.filter(pl.col("n") % 3 == 1).select("text"),
        lambda f: f.select(pl.len()),
        lambda f: f.head(12),
        lambda f: f.filter(pl.col("n") > 4).head(5),
    ],
)
def test_same_rows_as_polars_scan(parts, query):
    ours = query(row_group_scan(parts, SCHEMA)).collect()
    theirs = query(pl.scan_parquet(parts, schema=SCHEMA)).collect()
    assert ours.equals(theirs)


def test_a_sink_writes_the_same_bytes(parts, tmp_path):
    view = lambda f: f.select(pl.concat_list(pl.struct(role=pl.lit("user"), content="text")).alias("m"), "n")  # noqa: E731
    sink_parquet(view(row_group_scan(parts, SCHEMA)), tmp_path / "ours.parquet", row_group_size=8)
    sink_parquet(view(pl.scan_parquet(parts, schema=SCHEMA)), tmp_path / "theirs.parquet", row_group_size=8)
    assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "theirs.parquet").read_bytes()
