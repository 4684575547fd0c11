"""Result tables in the layout of the SkillFactory paper's Table 1.

One row per model (label) and condition, one column per task and difficulty, then the
average over each task's difficulties and an Overall mean (of every task-and-difficulty
cell). Two metrics: accuracy as the mean over the k samples (averaged over problems) and
pass@k (the unbiased estimator ``1 - C(n-c, k) / C(n, k)`` per problem, n samples of
which c correct).
"""

from __future__ import annotations

from math import comb

import polars as pl

from tracekit.evaluate.problems import difficulty_label


def current_evals(evals: pl.DataFrame) -> pl.DataFrame:
    """The current rows of an ``evals`` frame (in store order).

    Per label, only its latest revision (the revision of its last written row) counts; per
    (label, condition, request), the last written row (a longer regeneration or a re-forced
    response supersedes the earlier one).
    """
    if evals.height == 0:
        return evals
    ev = evals.with_row_index("_order")
    latest = ev.group_by("label").agg(_rev=pl.col("model_revision").sort_by("_order").last())
    ev = ev.join(latest, on="label", how="left").filter(pl.col("model_revision").eq_missing(pl.col("_rev")))
    ev = ev.sort("_order").unique(["label", "condition", "sample_key"], keep="last", maintain_order=True)
    return ev.drop("_order", "_rev")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct.

    Examples
    --------
    >>> pass_at_k(4, 0, 2), pass_at_k(4, 1, 4), pass_at_k(4, 1, 1), round(pass_at_k(4, 1, 2), 4)
    (0.0, 1.0, 0.25, 0.5)
    """
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def results_long(evals: pl.DataFrame, *, pass_k: int | None = None) -> pl.DataFrame:
    """Per (label, condition, task, difficulty): problems, samples, mean accuracy, pass@k.

    ``evals`` holds current rows (see :func:`current_evals`). ``pass_k`` defaults to the
    most samples any problem has.
    """
    cols = ["label", "condition", "task", "difficulty"]
    if evals.height == 0:
        return pl.DataFrame(
            schema={
                **{c: pl.Utf8 for c in cols},
                "problems": pl.Int64,
                "samples": pl.Int64,
                "k": pl.Int64,
                "mean": pl.Float64,
                "pass_at_k": pl.Float64,
            }
        )
    per_problem = evals.group_by([*cols, "problem_id"], maintain_order=True).agg(
        n=pl.len(), c=pl.col("is_correct").sum()
    )
    k = pass_k or int(per_problem["n"].max())
    per_problem = per_problem.with_columns(
        acc=pl.col("c") / pl.col("n"),
        pk=pl.struct("n", "c").map_elements(lambda s: pass_at_k(s["n"], s["c"], k), return_dtype=pl.Float64),
    )
    return per_problem.group_by(cols, maintain_order=True).agg(
        problems=pl.len().cast(pl.Int64),
        samples=pl.col("n").sum().cast(pl.Int64),
        k=pl.lit(k, dtype=pl.Int64),
        mean=pl.col("acc").mean(),
        pass_at_k=pl.col("pk").mean(),
    )


def results_wide(long: pl.DataFrame, metric: str = "mean") -> tuple[list[str], list[list]]:
    """Table 1 layout of one metric: a header and rows ``[label, condition, cell..., Overall]``.

    Columns are ``task difficulty`` cells in order of appearance; a task with several
    difficulties gets an ``avg`` column after its cells; cells are fractions (None when a
    model lacks that column).
    """
    columns: list[tuple[str, str]] = []
    for task, difficulty in long.select("task", "difficulty").unique(maintain_order=True).iter_rows():
        columns.append((task, difficulty))
    tasks = list(dict.fromkeys(t for t, _ in columns))
    header = ["model", "condition"]
    for task in tasks:
        diffs = [d for t, d in columns if t == task]
        header += [f"{task} {difficulty_label(d)}" for d in diffs]
        if len(diffs) > 1:
            header.append(f"{task} avg")
    header.append("Overall")
    values = {
        (r["label"], r["condition"], r["task"], r["difficulty"]): r[metric]
        for r in long.iter_rows(named=True)
    }
    rows = []
    for label, condition in long.select("label", "condition").unique(maintain_order=True).iter_rows():
        row: list = [label, condition]
        cells = []
        for task in tasks:
            task_cells = [values.get((label, condition, task, d)) for t, d in columns if t == task]
            row += task_cells
            cells += task_cells
            if len(task_cells) > 1:
                present = [v for v in task_cells if v is not None]
                row.append(sum(present) / len(present) if present else None)
        present = [v for v in cells if v is not None]
        row.append(sum(present) / len(present) if present else None)
        rows.append(row)
    return header, rows


def format_table(header: list[str], rows: list[list], *, title: str = "") -> str:
    """A fixed-width text table; fractions print as percentages."""

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{100 * v:.1f}"
        return str(v)

    texts = [header] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in texts) for i in range(len(header))]
    lines = [title] if title else []
    for j, r in enumerate(texts):
        lines.append(
            "  ".join(t.ljust(w) if i < 2 else t.rjust(w) for i, (t, w) in enumerate(zip(r, widths)))
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_results(long: pl.DataFrame) -> str:
    """Both metrics as text tables (accuracy in %)."""
    if long.height == 0:
        return "no evaluation results"
    k = int(long["k"].max())
    out = []
    for metric, title in (("mean", "accuracy, mean over samples (%)"), ("pass_at_k", f"pass@{k} (%)")):
        header, rows = results_wide(long, metric)
        out.append(format_table(header, rows, title=title))
    return "\n\n".join(out)
