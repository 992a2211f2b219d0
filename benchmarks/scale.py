"""Many WorkflowRuns present, few active: the operator's memory and its CPU while idle.

Exists because runs are kept after they finish (for ``kubectl wt logs``, GitOps, audits)
and every one of them is in the operator's watch cache, so memory and idle work grow
with the history, not with the load. The namespace is filled once with ``total``
CloudBatch runs, all but ``active`` of them already ``Succeeded`` (status written
directly, as a finished run's would be); then, per round, a fresh operator starts,
adopts the active runs (they stay ``Submitted``: their jobs run for an hour and are
polled every 30 s) and takes in the stored ones; once its CPU has been quiet for two
seconds and ``settle`` more, its CPU is sampled over ``idle_window`` seconds with
nothing created, and its RSS read at the end. The start-up's time and CPU are kept
too: what taking in the stored runs costs after every restart or failover.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.batch_burst import BATCH_SPEC
from benchmarks.measure import proc_cpu_seconds, proc_rss_mb, watching
from benchmarks.session import BenchSession, operator_pid
from wt_envtest import Runs


async def populate(session: BenchSession, namespace: str, total: int, active: int) -> float:
    """Create ``total`` runs, all but the first ``active`` finished; returns the seconds taken."""
    store = Runs(session.api, namespace)
    gate = asyncio.Semaphore(50)

    async def make(i: int) -> None:
        async with gate:
            name = f"old-{i}"
            await store.create(name, {**BATCH_SPEC, "config": {"i": i}})
            if i >= active:
                await store.patch_status(name, {"phase": "Succeeded", "result": "0"})

    t0 = time.monotonic()
    await asyncio.gather(*(make(i) for i in range(total)))
    return time.monotonic() - t0


async def quiet(pid: int, *, timeout: float, slice_seconds: float = 1.0) -> float:
    """Wait until ``pid`` used under 5 % CPU in two consecutive slices; returns when it did.

    A fresh operator first takes in every stored run (kopf processes each as an event,
    the on-event handlers run, the reaper schedules); that is start-up, not idle.
    """
    deadline = time.monotonic() + timeout
    calm = 0
    while calm < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"operator {pid} still busy after {timeout}s")
        cpu0 = proc_cpu_seconds(pid)
        await asyncio.sleep(slice_seconds)
        calm = calm + 1 if proc_cpu_seconds(pid) - cpu0 < 0.05 * slice_seconds else 0
    return time.monotonic()


async def scale_round(
    session: BenchSession,
    namespace: str,
    total: int,
    active: int,
    idle_window: float,
    *,
    settle: float = 20.0,
    module: str = "wt_operator",
) -> dict[str, Any]:
    """Start an operator on the populated namespace; its RSS and idle CPU (see module doc)."""
    session.batch.lifecycle = [("RUNNING", 5.0), ("SUCCEEDED", 3600.0)]
    started = time.monotonic()
    async with session.running(namespace, module) as operator:
        pid = operator_pid(operator)
        async with watching(session.api, namespace) as watcher:
            await watcher.phases([f"old-{i}" for i in range(active)], {"Submitted", "Running"}, 300)
        calm = await quiet(pid, timeout=300)
        startup_cpu = proc_cpu_seconds(pid)
        await asyncio.sleep(settle)
        cpu0, w0 = proc_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(idle_window)
        cpu1, w1 = proc_cpu_seconds(pid), time.monotonic()
        rss = proc_rss_mb(pid)
    return {
        "objects": total,
        "active": active,
        "startup_seconds": calm - started,
        "startup_cpu_seconds": startup_cpu,
        "rss_mb": rss,
        "idle_window_seconds": w1 - w0,
        "idle_cpu_percent": (cpu1 - cpu0) / (w1 - w0) * 100,
    }
