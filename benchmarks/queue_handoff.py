"""Queue hand-off: N one-second Local runs through L slots, against the ideal ⌈N/L⌉ s.

Exists because with a concurrency limit, every moment a slot stands empty between
one run's end and the next queued run's start adds up across the queue: the total
time over the ideal measures how promptly the operator hands a freed slot on. All
N runs are created at once; the time runs from the first create to the last
``Succeeded`` seen on a watch.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from benchmarks.local_runs import local_spec
from benchmarks.measure import watching
from benchmarks.session import BenchSession
from wt_envtest import Runs


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
    return {
        "runs": runs,
        "limit": limit,
        "total_seconds": t1 - t0,
        "ideal_seconds": ideal,
        "ratio": (t1 - t0) / ideal,
    }
