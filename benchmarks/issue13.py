"""Issue 13's measurements: every benchmark, several rounds each, on one control plane.

Exists so ``make bench`` measures exactly what the issue's table reports, in an order
that keeps benchmarks from disturbing each other: the latency-sensitive Local runs
first (on an empty control plane), the queue next, then the Batch bursts, then the
5,000 stored runs (which stay). Rounds repeat a benchmark on the same control plane;
each round of a burst gets a fresh operator and namespace, each scale round a fresh
operator on the same stored runs. The machine's load average is recorded around
every benchmark: the figures mean little on a machine something else keeps busy.

Beside the operator, the floors its figures are read against: the bare kopf operator of
:mod:`benchmarks.kopf_floor` (same settings, same requests) on the same Local runs,
bursts and stored runs, and each queue's runs executed directly (:mod:`.queue_handoff`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from benchmarks.batch_burst import LOAD_GENERATOR, burst_round, ceiling_round
from benchmarks.local_runs import local_round, workflow_wall_seconds
from benchmarks.queue_handoff import queue_round
from benchmarks.scale import populate, scale_round
from benchmarks.session import FLOOR, BenchSession, operator_pid
from wt_envtest import OperatorProcess


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each benchmark does; the defaults are the issue's sizes."""

    rounds: int = 3
    warmup: int = 3
    """Local runs before each round's measured ones (imports, connections, activation)."""
    local_runs: int = 100
    """Local runs per round, one at a time, no output."""
    output_runs: int = 20
    """Local runs printing ``output_lines`` lines (one round): the log ConfigMap's writes."""
    output_lines: int = 3
    burst_runs: int = 1000
    scale_total: int = 5000
    scale_active: int = 50
    idle_window: float = 30.0
    """Seconds the idle CPU is sampled: one full 30 s Batch poll cycle of the active runs."""
    settle: float = 20.0
    """Seconds between the end of start-up (CPU quiet) and the idle window: past aiohttp's
    15 s keep-alive, so the TLS connections start-up opened have closed (their shutdowns
    are start-up's cost; inside the window they doubled the idle CPU measured)."""
    queues: tuple[tuple[int, int], ...] = ((16, 8), (50, 8))
    """(runs, concurrency limit) of each queue hand-off benchmark."""
    queue_seconds: float = 1.0


FULL = Sizes()
QUICK = Sizes(
    rounds=2, local_runs=20, output_runs=5, burst_runs=200, scale_total=500, idle_window=10.0
)
TINY = Sizes(
    rounds=1,
    warmup=1,
    local_runs=2,
    output_runs=1,
    output_lines=2,
    burst_runs=6,
    scale_total=12,
    scale_active=2,
    idle_window=1.0,
    settle=0.5,
    queues=((3, 2),),
    queue_seconds=0.2,
)
"""For the smoke test in ``make test``: every code path once, no figure worth reading."""


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def _local_rounds(
    session: BenchSession, op: OperatorProcess, ns: str, sizes: Sizes, own: float
) -> list[dict[str, Any]]:
    return [
        await local_round(
            session,
            op,
            ns,
            sizes.local_runs,
            prefix=f"r{k}",
            own_seconds=own,
            warmup=sizes.warmup,
        )
        for k in range(sizes.rounds)
    ]


async def measure_local(session: BenchSession, sizes: Sizes) -> dict[str, Any]:
    ns = session.namespace("local")
    async with session.running(ns) as op:
        own = await workflow_wall_seconds(session, 0)
        rounds = await _local_rounds(session, op, ns, sizes, own)
        with_output = await local_round(
            session,
            op,
            ns,
            sizes.output_runs,
            prefix="out",
            output_lines=sizes.output_lines,
            warmup=0,  # the rounds warmed this operator
        )
    ns = session.namespace("local-floor")
    async with session.running(ns, FLOOR) as floor:
        floor_rounds = await _local_rounds(session, floor, ns, sizes, own)
    return {"rounds": rounds, "with_output": with_output, "floor_rounds": floor_rounds}


async def measure_queues(session: BenchSession, sizes: Sizes) -> list[dict[str, Any]]:
    out = []
    for runs, limit in sizes.queues:
        ns = session.namespace(f"queue-{runs}-{limit}")
        async with session.running(ns, WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS=str(limit)):
            rounds = [
                await queue_round(
                    session, ns, runs, limit, prefix=f"r{k}", seconds=sizes.queue_seconds
                )
                for k in range(sizes.rounds)
            ]
        out.append({"runs": runs, "limit": limit, "rounds": rounds})
    return out


async def measure_bursts(session: BenchSession, sizes: Sizes) -> dict[str, Any]:
    """Ceiling, burst and floor alternate, so a slow phase of the machine hits all alike."""
    ceilings: list[dict[str, Any]] = []
    bursts: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    me = {**session.plane.pids, LOAD_GENERATOR: os.getpid()}
    for k in range(sizes.rounds):
        ceilings.append(
            await ceiling_round(session, session.namespace(f"ceiling-{k}"), sizes.burst_runs, me)
        )
        for module, out in (("wt_operator", bursts), (FLOOR, floors)):
            ns = session.namespace(f"burst-{k}" if out is bursts else f"burst-floor-{k}")
            # Stopped after its round: its runs stay Submitted, and a running operator
            # would poll their jobs meanwhile.
            async with session.running(ns, module) as op:
                pids = {**me, "operator": operator_pid(op)}
                out.append(await burst_round(session, ns, sizes.burst_runs, pids))
    return {"ceiling_rounds": ceilings, "rounds": bursts, "floor_rounds": floors}


async def measure_scale(session: BenchSession, sizes: Sizes) -> dict[str, Any]:
    ns = session.namespace("scale")
    seconds = await populate(session, ns, sizes.scale_total, sizes.scale_active)
    rounds = {
        module: [
            await scale_round(
                session,
                ns,
                sizes.scale_total,
                sizes.scale_active,
                sizes.idle_window,
                settle=sizes.settle,
                module=module,
            )
            for _ in range(sizes.rounds)
        ]
        for module in ("wt_operator", FLOOR)
    }
    return {
        "populate_seconds": seconds,
        "rounds": rounds["wt_operator"],
        "floor_rounds": rounds[FLOOR],
    }


async def measure(session: BenchSession, sizes: Sizes) -> dict[str, Any]:
    """Every benchmark of issue 13 (see module doc); a JSON-able dict for :mod:`.table`."""
    result: dict[str, Any] = {"sizes": dataclasses.asdict(sizes), "load": {}, "seconds": {}}
    steps = [
        ("local", measure_local),
        ("queues", measure_queues),
        ("bursts", measure_bursts),
        ("scale", measure_scale),
    ]
    for name, step in steps:
        before, t0 = _load(), time.monotonic()
        result[name] = await step(session, sizes)
        result["load"][name] = {"before": before, "after": _load()}
        result["seconds"][name] = round(time.monotonic() - t0, 1)
    return result
