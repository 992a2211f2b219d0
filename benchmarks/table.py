"""Issue 13's table: each figure's median over rounds, its spread, the target, a verdict.

Exists so the table is derived from the measured JSON in one place, with the issue's
"before" figures beside it. Those are not re-measured: they are the figures issue 13
states for the old code (commit 19cb5f8 and earlier), and where the issue has none,
the previous README's benchmark table (marked ``README``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.measure import Spread

BEFORE = {
    "local_cpu": "22 ms",
    "burst_cpu": "12.6 ms",
    "burst_rate": "50 / 62 runs/s (README)",
    "ceiling": "72 / 87 runs/s (README)",
    "requests": "4.08–4.17",
    "persisted": "4.00 (README)",
    "refused": "0.08–0.17 (422, finalizer patch)",
    "events": "2.00 (README)",
    "rss": "207 MB",
    "idle": "2.7 %",
    "p50": "91 ms",
    "p95": "132 ms (README)",
    "queue-16-8": "1.52× (3.0 s vs 2 s)",
    "queue-50-8": "1.27× (8.9 s vs 7 s, README)",
}


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("✅" if ok else "❌")


class _Rows:
    def __init__(self) -> None:
        self.lines = [
            "| measurement | before (issue 13) | now (median) | noise over rounds | target | |",
            "| --- | ---: | ---: | ---: | ---: | :---: |",
        ]

    def add(
        self,
        name: str,
        before: str,
        spread: Spread | None,
        fmt: Callable[[float], str],
        target: str = "",
        ok: bool | None = None,
        *,
        digits: int = 1,
        unit: str = "",
        value: str | None = None,
    ) -> None:
        now = value if value is not None else fmt(spread.median) if spread else "—"
        noise = spread.noise(digits, unit) if spread and spread.n > 1 else "—"
        self.lines.append(f"| {name} | {before} | {now} | {noise} | {target} | {_verdict(ok)} |")


def _ratio_and_total(seconds: float) -> Callable[[float], str]:
    return lambda ratio: f"{ratio:.2f}× ({seconds:.2f} s)"


def _spread(rounds: Iterable[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> Spread:
    return Spread.of(get(r) for r in rounds)


def render(r: dict[str, Any]) -> str:
    """The table (Markdown) for a :func:`benchmarks.issue13.measure` result."""
    rows = _Rows()
    local, bursts, scale = r["local"]["rounds"], r["bursts"]["rounds"], r["scale"]["rounds"]
    ceilings = r["bursts"]["ceiling_rounds"]
    n_local, n_burst = local[0]["runs"], bursts[0]["runs"]

    cpu = _spread(local, lambda x: x["operator_cpu_ms_per_run"])
    rows.add(
        f"operator CPU per Local run ({n_local} runs one at a time, user+system)",
        BEFORE["local_cpu"],
        cpu,
        lambda v: f"{v:.1f} ms",
        "≤ 10 ms",
        cpu.median <= 10,
        unit=" ms",
    )
    bcpu = _spread(bursts, lambda x: x["operator_cpu_ms_per_run"])
    rows.add(
        f"operator CPU per CloudBatch run, {n_burst} created at once → all Submitted",
        BEFORE["burst_cpu"],
        bcpu,
        lambda v: f"{v:.1f} ms",
        "≤ 6 ms",
        bcpu.median <= 6,
        unit=" ms",
    )
    rate = _spread(bursts, lambda x: x["runs_per_second"])
    rows.add("… burst rate", BEFORE["burst_rate"], rate, lambda v: f"{v:.0f} runs/s", digits=0)
    ceiling = _spread(ceilings, lambda x: x["runs_per_second"])
    rows.add(
        "… ceiling: the same 4 requests per run from a bare client, no operator",
        BEFORE["ceiling"],
        ceiling,
        lambda v: f"{v:.0f} runs/s",
        digits=0,
    )
    jobs_ok = all(b["jobs_created"] == b["runs"] for b in bursts)
    rows.add(
        "… Batch jobs created per burst",
        "1000 / 1000 (README)",
        None,
        str,
        f"= {n_burst}",
        jobs_ok,
        value=" / ".join(str(b["jobs_created"]) for b in bursts),
    )

    def writes(key: str) -> Spread:
        return _spread(local, lambda x: x["writes"][key])

    req, persisted = writes("workflowrun_requests"), writes("workflowrun_persisted")
    refused = _spread(local, lambda x: sum(x["writes"]["refused_by_kind"].values()))
    rows.add(
        "write requests to WorkflowRuns per Local run (the create not counted)",
        BEFORE["requests"],
        req,
        lambda v: f"{v:.2f}",
        "= persisted",
        all(
            x["writes"]["workflowrun_requests"] == x["writes"]["workflowrun_persisted"]
            for x in local
        ),
        digits=2,
    )
    rows.add(
        "… persisted (2xx)",
        BEFORE["persisted"],
        persisted,
        lambda v: f"{v:.2f}",
        "≤ 4",
        persisted.median <= 4,
        digits=2,
    )
    kinds = sorted({k for x in local for k in x["writes"]["refused_by_kind"]})
    rows.add(
        "… refused (4xx/5xx), any resource" + (f": {', '.join(kinds)}" if kinds else ""),
        BEFORE["refused"],
        refused,
        lambda v: f"{v:.2f}",
        "0",
        refused.high == 0,
        digits=2,
    )
    rows.add(
        "Events created per Local run",
        BEFORE["events"],
        writes("events_created"),
        lambda v: f"{v:.2f}",
        digits=2,
    )
    out = r["local"]["with_output"]
    cm_silent = writes("log_configmap_writes")
    rows.add(
        f"log ConfigMap writes per Local run: silent workflow / printing "
        f"{out['output_lines']} lines ({out['runs']} runs)",
        "—",
        cm_silent,
        lambda v: f"{v:.2f} / {out['writes']['log_configmap_writes']:.2f}",
        digits=2,
    )
    bw = _spread(bursts, lambda x: x["writes"]["workflowrun_requests"])
    bp = _spread(bursts, lambda x: x["writes"]["workflowrun_persisted"])
    rows.add(
        "… in the burst: WorkflowRun write requests / persisted per run (until Submitted)",
        "—",
        bw,
        lambda v: f"{v:.2f} / {bp.median:.2f}",
        digits=2,
    )
    s0 = scale[0]
    rss = _spread(scale, lambda x: x["rss_mb"])
    rows.add(
        f"operator RSS with {s0['objects']} WorkflowRuns present ({s0['active']} active)",
        BEFORE["rss"],
        rss,
        lambda v: f"{v:.0f} MB",
        "≤ 150 MB",
        rss.median <= 150,
        digits=0,
        unit=" MB",
    )
    idle = _spread(scale, lambda x: x["idle_cpu_percent"])
    rows.add(
        f"operator idle CPU with them ({s0['idle_window_seconds']:.0f} s window)",
        BEFORE["idle"],
        idle,
        lambda v: f"{v:.2f} %",
        "≤ 0.5 %",
        idle.median <= 0.5,
        digits=2,
        unit=" %",
    )
    p50 = _spread(local, lambda x: x["overhead_p50_ms"])
    wall = statistics.median(x["workflow_wall_ms"] for x in local)
    rows.add(
        f"operator overhead p50 (apply → Succeeded − the workflow's own {wall:.0f} ms)",
        BEFORE["p50"],
        p50,
        lambda v: f"{v:.0f} ms",
        "≤ 60 ms",
        p50.median <= 60,
        digits=0,
        unit=" ms",
    )
    rows.add(
        "… p95",
        BEFORE["p95"],
        _spread(local, lambda x: x["overhead_p95_ms"]),
        lambda v: f"{v:.0f} ms",
        digits=0,
        unit=" ms",
    )
    for q in r["queues"]:
        ratio = _spread(q["rounds"], lambda x: x["ratio"])
        total = _spread(q["rounds"], lambda x: x["total_seconds"])
        ideal = q["rounds"][0]["ideal_seconds"]
        rows.add(
            f"queue hand-off: {q['runs']} × {r['sizes']['queue_seconds']:g} s Local runs, "
            f"limit {q['limit']}, vs ideal {ideal:g} s",
            BEFORE.get(f"queue-{q['runs']}-{q['limit']}", "—"),
            ratio,
            _ratio_and_total(total.median),
            "≤ 1.1×",
            ratio.median <= 1.1,
            digits=2,
            unit="×",
        )
    return "\n".join(rows.lines)


def header(r: dict[str, Any]) -> str:
    """When, where and how loaded: the lines above the table."""
    loads = "; ".join(
        f"{name} {'/'.join(map(str, v['before']))} → {'/'.join(map(str, v['after']))}"
        for name, v in r["load"].items()
    )
    return (
        f"Measured {r['when']} at commit {r['commit']}, {r['sizes']['rounds']} rounds each, "
        f"on {r['machine']['cpus']} cores shared by etcd, kube-apiserver, the operator and "
        f"the load generator (Python {r['machine']['python']}). Load average (1/5/15 min) "
        f"before → after each benchmark: {loads}."
    )
