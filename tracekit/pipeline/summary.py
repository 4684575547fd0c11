"""Human-readable run reports: where every row went, stage by stage."""

from __future__ import annotations

from collections import Counter


def format_counters(stats: Counter) -> str:
    """Group ``"<what>/<reason>"`` counters into an aligned text block.

    Examples
    --------
    >>> print(format_counters(Counter({"samples/truncated": 3, "built/0C": 10})))
    built
      0C                           10
    samples
      truncated                     3
    """
    groups: dict[str, list[tuple[str, int]]] = {}
    for key, value in sorted(stats.items()):
        group, _, reason = key.partition("/")
        groups.setdefault(group, []).append((reason or group, value))
    lines = []
    for group, items in groups.items():
        lines.append(group)
        for reason, value in items:
            lines.append(f"  {reason:<26}{value:>6}")
    return "\n".join(lines)
