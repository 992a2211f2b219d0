"""Local runs one at a time: the operator's CPU, its API writes and its latency per run.

Exists because a Local run is the operator's most expensive path per run (it
supervises the process, stores its output, writes every transition) and the one
whose latency a user waits for. One round: ``runs`` no-op runs created one after
the other (each once the previous one is ``Succeeded``), after a few warm-up runs
that are not counted (the first run pays for imports, connections and the cached
environment activation). Reported per run:

* the operator process's own user+system CPU (``/proc/<pid>/stat``; the workflow
  processes are its children and are not counted), from the first create to the
  last run's finalizer removal;
* kube-apiserver's write requests vs persisted writes (:mod:`benchmarks.apiserver`);
* overhead: create → ``Succeeded`` seen on a watch, minus the median wall time of
  executing the same workflow directly (``p50``/``p95`` over the round's runs).

The sample workflow prints nothing unless its config asks for output; ``output_lines``
makes it print that many lines, so the log ConfigMap's writes show.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.apiserver import delta, per_run_writes, write_requests
from benchmarks.bench_local import direct_exec_ms
from benchmarks.measure import percentile, proc_cpu_seconds, watching
from benchmarks.session import BenchSession, operator_pid
from wt_envtest import OperatorProcess, Runs
from wt_testkit.workflows import SAMPLE_WORKFLOW, workflow_config, workflow_executable

WARMUP = 3
"""Runs before the measured ones, not counted."""

SETTLE = 0.5
"""Seconds after the last finalizer removal for fire-and-forget Events to land."""


def local_spec(tmp: Path, output_lines: int, sleep: float = 0.0) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if output_lines:
        cfg["stdout_lines"] = output_lines
    if sleep:
        cfg["sleep"] = sleep
    return {
        "workflow": SAMPLE_WORKFLOW,
        "invoker": "Local",
        "resultsUrl": f"file://{tmp}/results",
        "config": cfg,
    }


async def workflow_wall_seconds(session: BenchSession, output_lines: int, n: int = 10) -> float:
    """Median wall time of executing the sample workflow directly (no operator)."""
    config = session.tmp / f"direct-{output_lines}.yaml"
    config.write_text(workflow_config(stdout_lines=output_lines or None) or "{}\n")
    exe = workflow_executable(session.workspace)
    return statistics.median(await direct_exec_ms(exe, config, session.workspace, n)) / 1000


async def local_round(
    session: BenchSession,
    operator: OperatorProcess,
    namespace: str,
    runs: int,
    *,
    prefix: str,
    output_lines: int = 0,
    own_seconds: float | None = None,
    warmup: int = WARMUP,
) -> dict[str, Any]:
    """One round of ``runs`` sequential Local runs through ``operator`` (see module doc)."""
    store = Runs(session.api, namespace)
    spec = local_spec(session.tmp, output_lines)
    pid = operator_pid(operator)
    if own_seconds is None:
        own_seconds = await workflow_wall_seconds(session, output_lines)
    async with watching(session.api, namespace) as watcher:

        async def one(name: str) -> float:
            t0 = time.monotonic()
            await store.create(name, spec)
            await watcher.phases([name], {"Succeeded", "Failed"}, 60)
            seen = watcher.reached(name, {"Succeeded", "Failed"}) or time.monotonic()
            if watcher.reached(name, {"Failed"}) is not None:
                raise RuntimeError(f"{name} failed: {watcher.latest[name].get('status')}")
            return seen - t0

        warm = [f"{prefix}-warm-{i}" for i in range(warmup)]
        for name in warm:
            await one(name)
        if warm:
            await watcher.released(warm, 60)
            await asyncio.sleep(SETTLE)

        names = [f"{prefix}-{i}" for i in range(runs)]
        before = write_requests(session.metrics_text())
        cpu0, t0 = proc_cpu_seconds(pid), time.monotonic()
        latencies = [await one(name) for name in names]
        await watcher.released(names, 60)
        cpu1, t1 = proc_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(SETTLE)
        writes = per_run_writes(delta(before, write_requests(session.metrics_text())), runs)

    overheads = [(lat - own_seconds) * 1000 for lat in latencies]
    return {
        "runs": runs,
        "output_lines": output_lines,
        "seconds": t1 - t0,
        "operator_cpu_ms_per_run": (cpu1 - cpu0) * 1000 / runs,
        "workflow_wall_ms": own_seconds * 1000,
        "overhead_p50_ms": percentile(overheads, 0.5),
        "overhead_p95_ms": percentile(overheads, 0.95),
        "writes": writes,
    }
