"""Issue 13's table: each figure's median over rounds, its spread, the target, a verdict.

Exists so the table is derived from the measured JSON in one place; which rows it has
and how each is read from the result is :mod:`benchmarks.rows`. The "before" column
holds the figures issue 13 states for the old code (commit 19cb5f8 and earlier) or,
where the issue has none, the previous README's table (marked ``README``). With a
result measured by the same harness on the old code (``python -m benchmarks
--operator-source DIR``, ``issue13-before.json``) a second column shows that
re-measurement, so "before" and "now" also meet on one machine.
"""

from __future__ import annotations

from benchmarks.measure import Spread
from benchmarks.rows import Result, Row, table_rows


def _cell(row: Row, r: Result) -> tuple[str, Spread]:
    spread = row.spread(r)
    return (row.shown(r, spread) if row.shown else row.fmt(spread.median)), spread


def render(r: Result, remeasured: Result | None = None) -> str:
    """The table (Markdown) for a :func:`benchmarks.issue13.measure` result."""
    head = ["measurement", "before (issue 13)"]
    if remeasured:
        head.append("before, re-measured here")
    head += ["now (median)", "noise over rounds", "target", ""]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + " --- |" + " ---: |" * (len(head) - 2) + " :---: |",
    ]
    for row in table_rows(r):
        value, spread = _cell(row, r)
        noise = spread.noise(row.digits, row.unit) if spread.n > 1 and row.noisy else "—"
        verdict = "" if row.ok is None else ("✅" if row.ok(r, spread) else "❌")
        cells = [row.name(r), row.before]
        if remeasured:
            try:
                cells.append(_cell(row, remeasured)[0])
            except (KeyError, IndexError, ZeroDivisionError):
                cells.append("—")
        cells += [value, noise, row.target, verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _when_where(r: Result) -> str:
    loads = "; ".join(
        f"{name} {'/'.join(map(str, v['before']))} → {'/'.join(map(str, v['after']))}"
        for name, v in r["load"].items()
    )
    return (
        f"{r['when']} at commit {r['commit']}, {r['sizes']['rounds']} rounds each; load "
        f"average (1/5/15 min) before → after each benchmark: {loads}"
    )


def header(r: Result, remeasured: Result | None = None) -> str:
    """When, where and how loaded: the lines above the table."""
    text = (
        f"Measured on {r['machine']['cpus']} cores shared by etcd, kube-apiserver, the operator "
        f"and the load generator (Python {r['machine']['python']}): {_when_where(r)}."
    )
    if remeasured:
        text += f'\n\nRe-measured "before": {_when_where(remeasured)}.'
    return text
