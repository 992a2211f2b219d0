"""Deleting finished runs when their time is up: one timer for all of them.

Exists because a per-run task (or a periodic status patch) for thousands of
finished runs costs memory or API writes while nothing happens. Expiries go
into one heap; a single task sleeps until the earliest and deletes what is due,
with the run's uid as a precondition, so a new run created under the same name
is never touched. Nothing is persisted: after a restart kopf lists every run
again and each finished one is scheduled anew from its ``completionTime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging

from wt_operator.core.errors import KubeApiError
from wt_operator.shell.clock import Clock
from wt_operator.shell.kube import Kube
from wt_operator.shell.refs import RunRef

__all__ = ["Reaper"]

log = logging.getLogger(__name__)


class Reaper:
    """Deletes runs at the times :meth:`schedule` was given."""

    def __init__(self, kube: Kube, clock: Clock) -> None:
        self.kube = kube
        self.clock = clock
        self._due: dict[str, tuple[float, RunRef]] = {}
        self._heap: list[tuple[float, str]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def schedule(self, ref: RunRef, at: float) -> None:
        """Delete ``ref`` at epoch second ``at`` (replacing an earlier schedule of it)."""
        current = self._due.get(ref.uid)
        if current is not None and current[0] == at:
            return
        self._due[ref.uid] = (at, ref)
        heapq.heappush(self._heap, (at, ref.uid))
        self._changed.set()

    def forget(self, uid: str) -> None:
        """The run is gone (or no longer expires): drop its schedule."""
        self._due.pop(uid, None)

    def __contains__(self, uid: object) -> bool:
        return uid in self._due

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._changed.clear()
            now = self.clock.now()
            while self._heap and self._heap[0][0] <= now:
                at, uid = heapq.heappop(self._heap)
                entry = self._due.get(uid)
                if entry is None or entry[0] != at:
                    continue  # forgotten, or rescheduled (a newer heap entry exists)
                del self._due[uid]
                await self._delete(entry[1])
            wait = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    async def _delete(self, ref: RunRef) -> None:
        try:
            if await self.kube.delete_run(ref):
                log.info("deleted %s: its ttlSecondsAfterFinished passed", ref)
        except KubeApiError as exc:
            log.warning("could not delete expired run %s: %s", ref, exc)
