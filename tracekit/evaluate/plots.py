"""The report's plots: matplotlib figures returned as PNG ``data:`` URIs (no files, no network).

Figures are built with :class:`matplotlib.figure.Figure` directly, so no global pyplot
state or backend is touched, and saved without a software tag, so the same data give
the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from tracekit.errors import require

_COLORS = ["#3b6ea8", "#d9822b", "#4a9c5d", "#b34747", "#7b5ea7", "#8c6d4f", "#c45ca2", "#6f7f8f"]


def _figure(width: float, height: float):
    figure_module = require("matplotlib.figure", "report")
    return figure_module.Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_data_uri(fig) -> str:
    """The figure as a base64 PNG ``data:`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def hbars(
    labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str, percent: bool = False
) -> str:
    """Horizontal bars, first label on top."""
    fig = _figure(7.5, 0.9 + 0.32 * max(len(labels), 1))
    ax = fig.add_subplot()
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=_COLORS[0])
    ax.set_yticks(y, labels=list(labels), fontsize=8)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {100 * v:.0f}%" if percent else f" {v:,.0f}", va="center", fontsize=8)
    if percent:
        ax.set_xlim(0, 1.1)
    else:
        ax.set_xlim(0, max(values or [1]) * 1.18 or 1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    return to_data_uri(fig)


def confusion(matrices: Sequence[tuple[str, list[list[int]]]]) -> str:
    """Verdict confusion matrices (rows: truth Correct/Incorrect; columns: verdict Correct/Incorrect/unusable)."""
    n = max(len(matrices), 1)
    fig = _figure(min(3.3 * n, 13), 2.9)
    for i, (title, m) in enumerate(matrices):
        ax = fig.add_subplot(1, n, i + 1)
        ax.imshow(m, cmap="Blues", vmin=0, vmax=max(max(r) for r in m) or 1)
        for r, row in enumerate(m):
            for c, v in enumerate(row):
                ax.text(c, r, str(v), ha="center", va="center", fontsize=9)
        ax.set_xticks([0, 1, 2], labels=["Correct", "Incorrect", "unusable"], fontsize=7)
        ax.set_yticks([0, 1], labels=["right", "wrong"], fontsize=7)
        ax.set_xlabel("verdict", fontsize=8)
        ax.set_ylabel("sample is", fontsize=8)
        ax.set_title(title, fontsize=9)
    return to_data_uri(fig)


def histograms(series: dict[str, Sequence[float]], *, title: str, xlabel: str, bins: int = 30) -> str:
    """Overlaid histograms, one per named series."""
    fig = _figure(7.5, 3.0)
    ax = fig.add_subplot()
    for i, (name, values) in enumerate(series.items()):
        if len(values):
            ax.hist(
                list(values), bins=bins, alpha=0.55, label=f"{name} (n={len(values)})", color=_COLORS[i % 8]
            )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("count", fontsize=9)
    ax.legend(fontsize=8)
    return to_data_uri(fig)


def accuracy_by_difficulty(panels: dict[str, tuple[list[str], dict[str, list[float | None]]]]) -> str:
    """One panel per task: x the difficulties, one line per model (and condition)."""
    n = max(len(panels), 1)
    fig = _figure(min(4.2 * n, 13), 3.2)
    for i, (task, (xs, lines)) in enumerate(panels.items()):
        ax = fig.add_subplot(1, n, i + 1)
        for j, (name, ys) in enumerate(lines.items()):
            points = [(x, y) for x, y in enumerate(ys) if y is not None]
            ax.plot(
                [p[0] for p in points], [p[1] for p in points], marker="o", label=name, color=_COLORS[j % 8]
            )
        ax.set_xticks(range(len(xs)), labels=xs, fontsize=7, rotation=20)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(task, fontsize=9)
        ax.set_ylabel("accuracy (mean over samples)", fontsize=8)
        ax.legend(fontsize=7)
    return to_data_uri(fig)
