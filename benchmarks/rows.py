"""The rows of issue 13's table: what each shows, where in a result it is, its target.

Exists apart from the rendering (:mod:`benchmarks.table`) because the rows are the
part that changes with the issue and the benchmarks; each reads its figure from every
round of a :func:`benchmarks.issue13.measure` result, so the median and noise come free.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.measure import Spread

Result = dict[str, Any]


def _spread(rounds: Iterable[Result], get: Callable[[Result], float]) -> Spread:
    return Spread.of(get(r) for r in rounds)


def _local(get: Callable[[Result], float]) -> Callable[[Result], Spread]:
    return lambda r: _spread(r["local"]["rounds"], get)


def _writes(key: str) -> Callable[[Result], Spread]:
    return _local(lambda x: x["writes"][key])


def _bursts(get: Callable[[Result], float]) -> Callable[[Result], Spread]:
    return lambda r: _spread(r["bursts"]["rounds"], get)


def _scale(get: Callable[[Result], float]) -> Callable[[Result], Spread]:
    return lambda r: _spread(r["scale"]["rounds"], get)


def _queue(i: int, key: str) -> Callable[[Result], Spread]:
    return lambda r: _spread(r["queues"][i]["rounds"], lambda x: x[key])


def _queue_name(i: int) -> Callable[[Result], str]:
    def name(r: Result) -> str:
        q = r["queues"][i]
        return (
            f"queue hand-off: {q['runs']} × {r['sizes']['queue_seconds']:g} s Local runs, "
            f"limit {q['limit']}, vs ideal {q['rounds'][0]['ideal_seconds']:g} s"
        )

    return name


def _queue_shown(i: int) -> Callable[[Result, Spread], str]:
    return lambda r, s: f"{s.median:.2f}× ({_queue(i, 'total_seconds')(r).median:.2f} s)"


def _queue_direct(i: int) -> Callable[[Result, Spread], str]:
    return lambda r, s: f"{_queue(i, 'direct_seconds')(r).median:.2f} s; {s.median:.2f}×"


def _queue_detail(i: int) -> Callable[[Result, Spread], str]:
    def shown(r: Result, s: Spread) -> str:
        first = _queue(i, "first_start_seconds")(r).median
        wave = _queue(i, "first_wave_started_seconds")(r).median
        top = _queue(i, "handoff_max_ms")(r).median
        run = _queue(i, "running_to_succeeded_p50_seconds")(r).median
        return f"{first:.2f} / {wave:.2f} s; {s.median:.0f} / {top:.0f} ms; {run:.2f} s"

    return shown


def _breakdown(rounds: list[Result]) -> str:
    """Median per-run count of each write request kind, the load generator's creates left out."""
    keys = sorted({k for x in rounds for k in x["writes"]["breakdown"]})
    parts = []
    for key in keys:
        if key.startswith("POST workflowruns "):
            continue
        n = statistics.median(x["writes"]["breakdown"].get(key, 0.0) for x in rounds)
        if n:
            parts.append(f"{key}: {n:.2f}")
    return "; ".join(parts) or "—"


def _refused(x: Result) -> float:
    return float(sum(x["writes"]["refused_by_kind"].values()))


def _unrefused(r: Result) -> bool:
    return all(
        x["writes"]["workflowrun_requests"] == x["writes"]["workflowrun_persisted"]
        for x in r["local"]["rounds"]
    )


@dataclasses.dataclass(frozen=True)
class Row:
    name: Callable[[Result], str]
    before: str
    spread: Callable[[Result], Spread]
    fmt: Callable[[float], str]
    target: str = ""
    ok: Callable[[Result, Spread], bool] | None = None
    digits: int = 1
    unit: str = ""
    shown: Callable[[Result, Spread], str] | None = None
    """The value cell, when it is more than the formatted median."""
    noisy: bool = True
    """Whether the noise column applies (not to a list of values)."""


def _floor(section: str, key: str, fmt: Callable[[float], str], unit: str, digits: int = 1) -> Row:
    """The same figure for the bare kopf operator of :mod:`benchmarks.kopf_floor`."""
    return Row(
        lambda r: "… a bare kopf operator, same settings and requests (kopf's floor)",
        "—",
        lambda r: _spread(r[section]["floor_rounds"], lambda x: x[key]),
        fmt,
        digits=digits,
        unit=unit,
    )


def _ms(v: float) -> str:
    return f"{v:.1f} ms"


def _f2(v: float) -> str:
    return f"{v:.2f}"


def table_rows(r: Result) -> list[Row]:
    """Every row, in the table's order (the queue rows depend on what ``r`` measured)."""
    rows = [
        Row(
            lambda r: (
                f"operator CPU per Local run ({r['local']['rounds'][0]['runs']} runs one at a "
                "time, user+system)"
            ),
            "22 ms",
            _local(lambda x: x["operator_cpu_ms_per_run"]),
            _ms,
            "≤ 10 ms",
            lambda _, s: s.median <= 10,
            unit=" ms",
        ),
        _floor("local", "operator_cpu_ms_per_run", _ms, " ms"),
        Row(
            lambda r: (
                f"operator CPU per CloudBatch run, {r['bursts']['rounds'][0]['runs']} created "
                "at once → all Submitted"
            ),
            "12.6 ms",
            _bursts(lambda x: x["operator_cpu_ms_per_run"]),
            _ms,
            "≤ 6 ms",
            lambda _, s: s.median <= 6,
            unit=" ms",
        ),
        _floor("bursts", "operator_cpu_ms_per_run", _ms, " ms"),
        Row(
            lambda r: "… burst rate",
            "50 / 62 runs/s (README)",
            _bursts(lambda x: x["runs_per_second"]),
            lambda v: f"{v:.0f} runs/s",
            digits=0,
        ),
        Row(
            lambda r: "… ceiling: the same 4 requests per run from a bare client, no operator",
            "72 / 87 runs/s (README)",
            lambda r: _spread(r["bursts"]["ceiling_rounds"], lambda x: x["runs_per_second"]),
            lambda v: f"{v:.0f} runs/s",
            digits=0,
        ),
        Row(
            lambda r: "… Batch jobs created per burst",
            "1000 / 1000 (README)",
            _bursts(lambda x: x["jobs_created"]),
            str,
            "= runs",
            lambda r, _: all(b["jobs_created"] == b["runs"] for b in r["bursts"]["rounds"]),
            digits=0,
            shown=lambda r, _: " / ".join(str(b["jobs_created"]) for b in r["bursts"]["rounds"]),
        ),
        Row(
            lambda r: "write requests to WorkflowRuns per Local run (the create not counted)",
            "4.08–4.17",
            _writes("workflowrun_requests"),
            _f2,
            "= persisted",
            lambda r, _: _unrefused(r),
            digits=2,
        ),
        Row(
            lambda r: (
                "… by request (verb resource[/subresource] code), per run; leases are "
                "kube-apiserver's own"
            ),
            "—",
            _writes("workflowrun_requests"),
            _f2,
            shown=lambda r, _: _breakdown(r["local"]["rounds"]),
            noisy=False,
        ),
        Row(
            lambda r: "… persisted (2xx)",
            "4.00 (README)",
            _writes("workflowrun_persisted"),
            _f2,
            "≤ 4",
            lambda _, s: s.median <= 4,
            digits=2,
        ),
        Row(
            lambda r: (
                "… refused (4xx/5xx), any resource"
                + "".join(
                    f"; {k}"
                    for k in sorted(
                        {k for x in r["local"]["rounds"] for k in x["writes"]["refused_by_kind"]}
                    )
                )
            ),
            "0.08–0.17 (422, finalizer patch)",
            _local(_refused),
            _f2,
            "0",
            lambda _, s: s.high == 0,
            digits=2,
        ),
        Row(
            lambda r: "Events created per Local run",
            "2.00 (README)",
            _writes("events_created"),
            _f2,
            digits=2,
        ),
        Row(
            lambda r: (
                "log ConfigMap writes per Local run: silent workflow / printing "
                f"{r['local']['with_output']['output_lines']} lines "
                f"({r['local']['with_output']['runs']} runs)"
            ),
            "—",
            _writes("log_configmap_writes"),
            _f2,
            digits=2,
            shown=lambda r, s: (
                f"{s.median:.2f} / "
                f"{r['local']['with_output']['writes']['log_configmap_writes']:.2f}"
            ),
        ),
        Row(
            lambda r: "… in the burst: WorkflowRun write requests / persisted per run",
            "—",
            _bursts(lambda x: x["writes"]["workflowrun_requests"]),
            _f2,
            digits=2,
            shown=lambda r, s: (
                f"{s.median:.2f} / "
                f"{_bursts(lambda x: x['writes']['workflowrun_persisted'])(r).median:.2f}"
            ),
        ),
        Row(
            lambda r: (
                f"operator RSS with {r['scale']['rounds'][0]['objects']} WorkflowRuns present "
                f"({r['scale']['rounds'][0]['active']} active)"
            ),
            "207 MB",
            _scale(lambda x: x["rss_mb"]),
            lambda v: f"{v:.0f} MB",
            "≤ 150 MB",
            lambda _, s: s.median <= 150,
            digits=0,
            unit=" MB",
        ),
        _floor("scale", "rss_mb", lambda v: f"{v:.0f} MB", " MB", 0),
        Row(
            lambda r: (
                "operator idle CPU with them "
                f"({r['scale']['rounds'][0]['idle_window_seconds']:.0f} s window)"
            ),
            "2.7 %",
            _scale(lambda x: x["idle_cpu_percent"]),
            lambda v: f"{v:.2f} %",
            "≤ 0.5 %",
            lambda _, s: s.median <= 0.5,
            digits=2,
            unit=" %",
        ),
        _floor("scale", "idle_cpu_percent", lambda v: f"{v:.2f} %", " %", 2),
        Row(
            lambda r: "… start-up with them until quiet: wall time; CPU",
            "—",
            _scale(lambda x: x["startup_seconds"]),
            lambda v: f"{v:.1f} s",
            unit=" s",
            shown=lambda r, s: (
                f"{s.median:.1f} s; {_scale(lambda x: x['startup_cpu_seconds'])(r).median:.1f} s"
            ),
        ),
        Row(
            lambda r: (
                "operator overhead p50 (apply → Succeeded − the workflow's own "
                f"{statistics.median(x['workflow_wall_ms'] for x in r['local']['rounds']):.0f} ms)"
            ),
            "91 ms",
            _local(lambda x: x["overhead_p50_ms"]),
            lambda v: f"{v:.0f} ms",
            "≤ 60 ms",
            lambda _, s: s.median <= 60,
            digits=0,
            unit=" ms",
        ),
        Row(
            lambda r: "… p95",
            "132 ms (README)",
            _local(lambda x: x["overhead_p95_ms"]),
            lambda v: f"{v:.0f} ms",
            digits=0,
            unit=" ms",
        ),
    ]
    before = {(16, 8): "1.52× (3.0 s vs 2 s)", (50, 8): "1.27× (8.9 s vs 7 s, README)"}
    for i, q in enumerate(r["queues"]):
        rows.append(
            Row(
                _queue_name(i),
                before.get((q["runs"], q["limit"]), "—"),
                _queue(i, "ratio"),
                lambda v: f"{v:.2f}×",
                "≤ 1.1×",
                lambda _, s: s.median <= 1.1,
                digits=2,
                unit="×",
                shown=_queue_shown(i),
            )
        )
        rows.append(
            Row(
                lambda r: (
                    "… first start / first wave started; hand-off p50 / max; "
                    "a run's Running → Succeeded"
                ),
                "—",
                _queue(i, "handoff_p50_ms"),
                lambda v: f"{v:.0f} ms",
                digits=0,
                unit=" ms",
                shown=_queue_detail(i),
            )
        )
        rows.append(
            Row(
                lambda r: (
                    "… the same runs executed directly, as many at a time, no operator "
                    "(this machine's floor): total; operator ÷ that"
                ),
                "—",
                _queue(i, "ratio_to_direct"),
                lambda v: f"{v:.2f}×",
                digits=2,
                unit="×",
                shown=_queue_direct(i),
            )
        )
    return rows
