"""What every operator benchmark reads: a process's CPU and RSS, spreads, and run phases.

Exists so each benchmark module says only what it does to the operator; how a figure
is read (``/proc`` of the operator process alone, one watch per namespace for phase
times, median and spread over rounds) is decided once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from wt_operator.api import GROUP, PLURAL, VERSION

# -- processes ------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU of ``pid`` itself (all its threads, none of its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: proc_cpu_seconds(pid) for name, pid in pids.items()}


def cpu_ms_per_run(
    before: Mapping[str, float], pids: Mapping[str, int], runs: int
) -> dict[str, float]:
    """CPU milliseconds each process spent per run since ``before``."""
    after = cpu_snapshot(pids)
    return {name: (after[name] - before[name]) * 1000 / runs for name in pids}


# -- spreads --------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a value that was really measured)."""
    data = sorted(values)
    if not data:
        return float("nan")
    return data[min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))]


@dataclasses.dataclass(frozen=True)
class Spread:
    """Median of several rounds and how far they spread (min–max, and IQR from 4 rounds)."""

    median: float
    low: float
    high: float
    q1: float
    q3: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        data = sorted(values)
        if not data:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan, 0)
        if len(data) >= 4:
            q1, _, q3 = statistics.quantiles(data, n=4)
        else:
            q1, q3 = data[0], data[-1]
        return cls(statistics.median(data), data[0], data[-1], q1, q3, len(data))

    def noise(self, digits: int = 1, unit: str = "") -> str:
        """``min–max`` (``IQR a–b`` once there are enough rounds for quartiles)."""
        low, high = (self.q1, self.q3) if self.n >= 4 else (self.low, self.high)

        def fmt(v: float) -> str:
            return f"{v if round(v, digits) else 0.0:.{digits}f}"  # no "-0"

        a, b = fmt(low), fmt(high)
        # "-21–-3" reads badly: a spelled-out range once a bound is negative.
        text = f"{a}{' to ' if '-' in a + b else '–'}{b}{unit}"
        return f"{'IQR ' if self.n >= 4 else ''}{text} (n={self.n})"


# -- run phases -----------------------------------------------------------------------------


class PhaseWatcher:
    """One watch on a namespace's WorkflowRuns: when each run was first seen in each phase.

    One stream for the whole benchmark (not a list + watch per run) keeps the load
    generator's own requests off the control plane and out of the measured latencies.
    """

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.first_seen: dict[tuple[str, str], float] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    async def _note(self, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        self.latest[name] = obj
        phase = (obj.get("status") or {}).get("phase")
        if phase:
            self.first_seen.setdefault((name, phase), now)
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        while True:
            listing = await self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )
            for item in listing["items"]:
                await self._note(item, time.monotonic())
            self._synced.set()
            version = listing["metadata"]["resourceVersion"]
            w = watch.Watch()
            try:
                async with w.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=version,
                    timeout_seconds=300,
                ) as stream:
                    async for event in stream:
                        if event["type"] == "DELETED":
                            self.latest.pop(event["object"]["metadata"]["name"], None)
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            await self._note(event["object"], time.monotonic())
            except ApiException as exc:
                if exc.status != 410:  # resourceVersion too old: list again
                    raise
            finally:
                w.stop()

    async def start(self) -> PhaseWatcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._synced.wait(), 30)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reached(self, name: str, phases: Iterable[str]) -> float | None:
        """When ``name`` was first seen in one of ``phases`` (the earliest), else None."""
        times = [t for p in phases if (t := self.first_seen.get((name, p))) is not None]
        return min(times) if times else None

    async def until(
        self,
        names: Iterable[str],
        done: Callable[[str], bool],
        timeout: float,
        what: str = "done",
    ) -> float:
        """Wait until ``done(name)`` holds for every name; returns the time it did."""
        pending = set(names)
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                if self._task is not None and self._task.done():
                    self._task.result()  # the watch died: raise its error
                pending = {n for n in pending if not done(n)}
                if not pending:
                    return time.monotonic()
                left = deadline - time.monotonic()
                if left <= 0:
                    example = sorted(pending)[0]
                    status = (self.latest.get(example) or {}).get("status")
                    raise TimeoutError(
                        f"{len(pending)} runs not {what} after {timeout}s "
                        f"(e.g. {example}: {status})"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(left, 1.0))

    async def phases(self, names: Iterable[str], phases: set[str], timeout: float) -> float:
        return await self.until(
            names, lambda n: self.reached(n, phases) is not None, timeout, f"in {sorted(phases)}"
        )

    async def released(self, names: Iterable[str], timeout: float) -> float:
        """Wait until no run in ``names`` carries a finalizer (the operator's last write)."""

        def free(name: str) -> bool:
            obj = self.latest.get(name)
            return obj is None or not obj["metadata"].get("finalizers")

        return await self.until(names, free, timeout, "free of finalizers")


@contextlib.asynccontextmanager
async def watching(api: client.ApiClient, namespace: str) -> AsyncIterator[PhaseWatcher]:
    watcher = await PhaseWatcher(api, namespace).start()
    try:
        yield watcher
    finally:
        await watcher.stop()
