"""Queue hand-off: N one-second Local runs through L slots, against the ideal ⌈N/L⌉ s.

Exists because with a concurrency limit, every moment a slot stands empty between
one run's end and the next queued run's start adds up across the queue: the total
time over the ideal measures how promptly the operator hands a freed slot on. All
N runs are created at once; the time runs from the first create to the last
``Succeeded`` seen on a watch. Beside it, to tell where the time goes: the first
start and the last start of the first wave, each hand-off (a queued run's ``Running``
after the ``Succeeded`` whose slot it took; negative when a slot is handed on before
the finished run's status is written) and a run's ``Running`` → ``Succeeded`` (its 1 s
plus start and finish). And the machine's own floor: the same N workflow executions
started directly through an L-slot semaphore (no operator, no API), whose total is what
the runs cost here before any hand-off (``direct_seconds``; a 1 s run takes longer than
1 s when L processes start at once on few cores).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from benchmarks.bench_local import exec_workflow_ms
from benchmarks.local_runs import local_spec
from benchmarks.measure import percentile, watching
from benchmarks.session import BenchSession
from wt_envtest import Runs
from wt_testkit.workflows import workflow_config, workflow_executable


async def direct_queue_seconds(
    session: BenchSession, runs: int, limit: int, seconds: float
) -> float:
    """``runs`` direct executions of a ``seconds``-long workflow, ``limit`` at a time."""
    config = session.tmp / f"queue-direct-{seconds:g}.yaml"
    config.write_text(workflow_config(sleep=seconds))
    exe = workflow_executable(session.workspace)
    gate = asyncio.Semaphore(limit)

    async def one() -> None:
        async with gate:
            await exec_workflow_ms(exe, config, session.workspace)

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(runs)))
    return time.monotonic() - t0


async def queue_round(
    session: BenchSession,
    namespace: str,
    runs: int,
    limit: int,
    *,
    prefix: str,
    seconds: float = 1.0,
) -> dict[str, Any]:
    """One round through an operator started with ``WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS``
    = ``limit`` on ``namespace``."""
    store = Runs(session.api, namespace)
    spec = local_spec(session.tmp, 0, sleep=seconds)
    names = [f"{prefix}-{i}" for i in range(runs)]
    async with watching(session.api, namespace) as watcher:
        t0 = time.monotonic()
        await asyncio.gather(*(store.create(n, spec) for n in names))
        t1 = await watcher.phases(names, {"Succeeded"}, 120 + 2 * runs * seconds)
        await watcher.released(names, 60)
    ideal = math.ceil(runs / limit) * seconds
    direct = await direct_queue_seconds(session, runs, limit, seconds)
    started = sorted(watcher.reached(n, {"Running"}) or t1 for n in names)
    ended = sorted(watcher.reached(n, {"Succeeded"}) or t1 for n in names)
    # The k-th run to start after the first `limit` took the slot the k-th run to end
    # freed: how long that slot stood empty (as seen on the watch) is the hand-off.
    handoffs = [(s - e) * 1000 for s, e in zip(started[limit:], ended, strict=False)]
    durations = [
        (ended_at - started_at)
        for n in names
        if (started_at := watcher.reached(n, {"Running"})) is not None
        and (ended_at := watcher.reached(n, {"Succeeded"})) is not None
    ]
    return {
        "runs": runs,
        "limit": limit,
        "total_seconds": t1 - t0,
        "ideal_seconds": ideal,
        "ratio": (t1 - t0) / ideal,
        "direct_seconds": direct,
        "ratio_to_direct": (t1 - t0) / direct,
        "first_start_seconds": started[0] - t0,
        "first_wave_started_seconds": started[min(limit, runs) - 1] - t0,
        "handoff_p50_ms": percentile(handoffs, 0.5) if handoffs else 0.0,
        "handoff_max_ms": max(handoffs, default=0.0),
        "running_to_succeeded_p50_seconds": percentile(durations, 0.5),
    }
