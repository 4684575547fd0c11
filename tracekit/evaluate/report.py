"""``tracekit report``: one self-contained HTML page about a store.

Sections: the yield funnel (problems -> samples -> correct -> reflections -> kept ->
traces, with the recorded drops by reason), accuracy by task x difficulty x prompt
variant, verdict agreement and confusion matrices, the trace-format mix, length
histograms, evaluation tables and accuracy-by-difficulty plots per model (when the store
has evals), skill counts, and example traces and model outputs with their tags
highlighted. Plots are matplotlib PNGs embedded as ``data:`` URIs; the page loads
nothing from the network and runs no script.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import polars as pl

from tracekit import counters
from tracekit.evaluate import plots
from tracekit.evaluate.problems import difficulty_label
from tracekit.evaluate.results import current_evals, results_long, results_wide
from tracekit.evaluate.skills import skill_rows, skill_tables
from tracekit.places import check_output_file
from tracekit.store import Store, atomic_write_text
from tracekit.store.views import view, view_counts

_TAG_RE = re.compile(r"&lt;(/?)(think|sample|reflect|answer|verdict)&gt;")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}th,td{border:1px solid #ddd;padding:.25em .5em}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;display:block;margin:.6em 0}.muted{color:#777}
pre{white-space:pre-wrap;background:#fafafa;border:1px solid #e3e3e3;padding:.8em;font-size:.8em;
max-height:32em;overflow:auto}
.t-think{color:#777;font-weight:bold}.t-sample{color:#1d5fa8;font-weight:bold}.t-reflect{color:#a8571d;font-weight:bold}
.t-answer{color:#1e7b34;font-weight:bold}.t-verdict{color:#9b1d8a;font-weight:bold}
"""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="n">{100 * v:.1f}</td>'
        if isinstance(v, int):
            return f'<td class="n">{v:,}</td>'
        return f"<td>{html.escape('-' if v is None else str(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def highlight(text: str) -> str:
    """Escape ``text`` for HTML and colour its think, sample, reflect, answer and verdict tags.

    Examples
    --------
    >>> highlight("<answer>1 < 2</answer>")
    '<span class="t-answer">&lt;answer&gt;</span>1 &lt; 2<span class="t-answer">&lt;/answer&gt;</span>'
    """
    return _TAG_RE.sub(lambda m: f'<span class="t-{m.group(2)}">{m.group(0)}</span>', html.escape(text))


def _funnel(store: Store, data: dict[str, pl.DataFrame]) -> str:
    samples, refl = data["samples"], data["reflections"]
    kept = refl.join(samples.select("sample_id", "is_correct"), on="sample_id").filter(
        pl.col("verdict") == pl.col("is_correct")
    )
    stages = [
        ("problems", data["problems"].height),
        ("samples", samples.height),
        ("correct samples", int(samples["is_correct"].sum() or 0)),
        ("reflections", refl.height),
        ("kept reflections", kept.height),
        ("traces", data["traces"].height),
    ]
    out = _img(
        plots.hbars([s for s, _ in stages], [v for _, v in stages], title="yield", xlabel="rows"),
        "yield funnel",
    )
    out += _table(["stage", "rows"], [list(s) for s in stages])
    runs = data["runs"].filter(pl.col("command").is_in(["run", "rearrange"]) & (pl.col("drops_json") != "{}"))
    if runs.height:
        drops = json.loads(runs["drops_json"][-1])
        rows = [[k, v] for k, v in counters.drops(drops).items()]
        out += f"<p>Drops by reason (last {runs['command'][-1]}, {runs['finished_at'][-1]}):</p>"
        out += _table(["what/reason", "rows"], rows)
    if samples.height:
        reasons = samples.group_by("reason").len().sort("len", descending=True)
        out += "<p>Verifier verdicts of the samples by reason:</p>" + _table(
            ["reason", "samples"], reasons.rows()
        )
    return out


def _accuracy(data: dict[str, pl.DataFrame]) -> str:
    s = data["samples"].join(data["problems"].select("problem_id", "task", "difficulty"), on="problem_id")
    if s.height == 0:
        return '<p class="muted">No samples in this store.</p>'
    acc = (
        s.group_by("task", "difficulty", "prompt_variant")
        .agg(n=pl.len(), correct=pl.col("is_correct").sum())
        .sort("task", "difficulty", "prompt_variant")
    )
    labels = [
        f"{t} {difficulty_label(d)} {v}"
        for t, d, v in acc.select("task", "difficulty", "prompt_variant").rows()
    ]
    values = (acc["correct"] / acc["n"]).to_list()
    uri = plots.hbars(
        labels, values, title="accuracy by task, difficulty and variant", xlabel="accuracy", percent=True
    )
    rows = [[t, difficulty_label(d), v, n, c, c / n] for t, d, v, n, c in acc.rows()]
    return _img(uri, "accuracy by task") + _table(
        ["task", "difficulty", "variant", "samples", "correct", "%"], rows
    )


def _verdicts(data: dict[str, pl.DataFrame]) -> str:
    refl = data["reflections"].join(data["samples"].select("sample_id", "is_correct"), on="sample_id")
    refl = refl.join(data["problems"].select("problem_id", "task"), on="problem_id", how="left")
    if refl.height == 0:
        return '<p class="muted">No reflections in this store.</p>'
    matrices, rows = [], []
    for (task,), g in refl.group_by("task", maintain_order=True):
        m = [[0, 0, 0], [0, 0, 0]]
        for verdict, truth in g.select("verdict", "is_correct").iter_rows():
            m[0 if truth else 1][2 if verdict is None else (0 if verdict else 1)] += 1
        matrices.append((str(task), m))
        agree = m[0][0] + m[1][1]
        rows.append([str(task), g.height, agree, agree / g.height])
    out = _img(plots.confusion(matrices[:6]), "verdict confusion matrices")
    return out + _table(["task", "reflections", "agree with verifier", "%"], rows)


def _traces(data: dict[str, pl.DataFrame]) -> str:
    t = data["traces"]
    if t.height == 0:
        return '<p class="muted">No traces in this store.</p>'
    mix = t.group_by("format").len().sort("format")
    uri = plots.hbars(
        mix["format"].to_list(), mix["len"].to_list(), title="traces per format", xlabel="traces"
    )
    return _img(uri, "trace format mix") + _table(["format", "traces"], mix.rows())


def _lengths(data: dict[str, pl.DataFrame], evals: pl.DataFrame) -> str:
    s = data["samples"]
    out = ""
    if s.height:  # the backend's token counts; imported samples have none: whitespace words then
        counted = s.filter(pl.col("n_tokens").is_not_null())
        if counted.height:
            s, unit = counted, "tokens"
        else:
            unit = "words"
        size = pl.col("n_tokens") if unit == "tokens" else pl.col("response").str.split(" ").list.len()
        s = s.with_columns(size=size)
        series = {
            "correct": s.filter(pl.col("is_correct"))["size"].to_list(),
            "wrong": s.filter(~pl.col("is_correct"))["size"].to_list(),
        }
        out += _img(plots.histograms(series, title="sample lengths", xlabel=unit), "sample lengths")
    if data["traces"].height:
        words = {
            f: g["completion"].str.split(" ").list.len().to_list()
            for (f,), g in data["traces"].group_by("format")
        }
        out += _img(
            plots.histograms(dict(sorted(words.items())), title="trace lengths", xlabel="words"),
            "trace lengths",
        )
    if evals.height:
        by = {
            f"{lab} {c}": g["n_tokens"].drop_nulls().to_list()
            for (lab, c), g in evals.group_by("label", "condition")
        }
        out += _img(
            plots.histograms(dict(sorted(by.items())), title="eval response lengths", xlabel="tokens"),
            "eval lengths",
        )
    return out or '<p class="muted">Nothing to measure.</p>'


def _evals(evals: pl.DataFrame) -> str:
    if evals.height == 0:
        return '<p class="muted">No evaluations in this store (run <code>tracekit eval</code>).</p>'
    long = results_long(evals)
    out = ""
    for metric, title in (
        ("mean", "accuracy, mean over samples (%)"),
        ("pass_at_k", f"pass@{long['k'].max()} (%)"),
    ):
        header, rows = results_wide(long, metric)
        out += f"<h3>{html.escape(title)}</h3>" + _table(header, rows)
    panels = {}
    for (task,), g in long.group_by("task", maintain_order=True):
        diffs = list(dict.fromkeys(g["difficulty"].to_list()))
        lines: dict[str, list] = {}
        for lab, cond, d, v in g.select("label", "condition", "difficulty", "mean").rows():
            lines.setdefault(f"{lab} ({cond})", [None] * len(diffs))[diffs.index(d)] = v
        panels[str(task)] = ([difficulty_label(d) for d in diffs], lines)
    return out + _img(plots.accuracy_by_difficulty(panels), "accuracy by difficulty")


def _skills(store: Store, has_traces: bool, has_evals: bool) -> str:
    out = ""
    for source, present in (("traces", has_traces), ("evals", has_evals)):
        if present:
            tables = skill_tables(store, source=source)
            for level in ("overall", "groups"):
                header, rows = skill_rows(tables, level)
                out += f"<h3>{source}, {'overall' if level == 'overall' else 'by group'}</h3>" + _table(
                    header, rows
                )
    return out or '<p class="muted">No traces or evaluations.</p>'


def _examples(data: dict[str, pl.DataFrame], evals: pl.DataFrame, n: int) -> str:
    out = ""
    picks = (
        data["traces"].sort("format", "trace_id").unique("format", keep="first", maintain_order=True).head(n)
    )
    for fmt, prompt, completion in picks.select("format", "prompt", "completion").rows():
        out += f"<h3>trace, format {html.escape(fmt)}</h3>"
        out += f"<pre>{highlight(prompt)}</pre><pre>{highlight(completion)}</pre>"
    if evals.height:
        firsts = evals.filter(pl.col("condition") == "base").unique(
            "label", keep="first", maintain_order=True
        )
        for lab, response, ok in firsts.select("label", "response", "is_correct").rows():
            verdict = "right" if ok else "wrong"
            out += f"<h3>model output, {html.escape(lab)} ({verdict})</h3><pre>{highlight(response)}</pre>"
    return out or '<p class="muted">No traces.</p>'


def build_report(store: Store, *, examples: int = 3) -> str:
    """The report page of ``store`` as one HTML string."""
    data = {
        "problems": view(store, "problems").collect(),
        "samples": view(store, "samples").collect(),
        "reflections": view(store, "reflections").collect(),
        "traces": view(store, "traces").collect(),
        "runs": view(store, "runs").collect(),
    }
    evals = current_evals(view(store, "evals").collect())
    sections = [
        ("funnel", "Yield funnel", _funnel(store, data)),
        ("accuracy", "Accuracy by task, difficulty and prompt variant", _accuracy(data)),
        ("verdicts", "Verdict agreement", _verdicts(data)),
        ("formats", "Trace formats", _traces(data)),
        ("lengths", "Lengths", _lengths(data, evals)),
        ("evals", "Evaluations", _evals(evals)),
        ("skills", "Skills", _skills(store, data["traces"].height > 0, evals.height > 0)),
        ("examples", "Examples", _examples(data, evals, examples)),
    ]
    stored = store.counts()
    counts = ", ".join(
        f"{t} {n:,}" + (f" (of {stored[t]:,} stored)" if stored[t] != n else "")
        for t, n in view_counts(store).items()
        if t not in ("runs", "views")
    )
    body = "".join(
        f'<section id="{sid}"><h2>{title}</h2>{content}</section>' for sid, title, content in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>tracekit report: {html.escape(str(store.root))}</title><style>{_CSS}</style></head><body>"
        f"<h1>tracekit report</h1><p>store <code>{html.escape(str(store.root))}</code>: {counts}</p>"
        f"{body}</body></html>"
    )


def write_report(store: Store, out: str | Path, *, examples: int = 3) -> Path:
    """Write :func:`build_report` to ``out`` atomically; return the path."""
    check_output_file(out, "report --out")  # before the work: a folder that is not there is one error line
    atomic_write_text(Path(out), build_report(store, examples=examples))
    return Path(out)
