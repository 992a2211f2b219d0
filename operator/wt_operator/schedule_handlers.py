"""kopf registrations for WorkflowSchedules: one daemon per schedule, woken when needed.

Apart from the WorkflowRun handlers so each kind's wiring reads on its own; nothing here
decides anything (core.schedule does, shell.schedule acts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from wt_operator.api import GROUP, LABEL_SCHEDULE, PLURAL, SCHEDULE_PLURAL, VERSION
from wt_operator.metrics import Metrics
from wt_operator.shell.clock import SystemClock
from wt_operator.shell.schedule import ScheduleReconciler

__all__ = ["register_schedules"]

log = logging.getLogger(__name__)

RETRY_AFTER_ERROR = 10.0
"""Seconds before a pass that failed (the API refused a write) is tried again."""


class Wakeups:
    """One event per schedule, set when something it reacts to changed."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}

    def event(self, namespace: str, name: str) -> asyncio.Event:
        return self._events.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str, name: str) -> None:
        event = self._events.get((namespace, name))
        if event is not None:
            event.set()

    def forget(self, namespace: str, name: str) -> None:
        self._events.pop((namespace, name), None)


def register_schedules(registry: kopf.OperatorRegistry, metrics: Metrics) -> None:
    """Register the WorkflowSchedule handlers (after :func:`handlers.register`, whose
    start-up handler creates the Kubernetes client they share)."""
    wakeups = Wakeups()

    @kopf.daemon(
        GROUP,
        VERSION,
        SCHEDULE_PLURAL,
        id="schedule",
        registry=registry,
        cancellation_timeout=10.0,
    )
    async def workflowschedule_daemon(
        *, name: str, namespace: str | None, stopped: kopf.DaemonStopped, memo: Any, **_: Any
    ) -> None:
        ns = namespace or ""
        reconciler = ScheduleReconciler(memo.kube, SystemClock(), metrics)
        wake = wakeups.event(ns, name)
        try:
            while not stopped:
                wake.clear()
                try:
                    delay = await reconciler.reconcile(ns, name)
                except Exception:
                    log.exception("reconciling WorkflowSchedule %s/%s failed; retrying", ns, name)
                    delay = RETRY_AFTER_ERROR
                if delay is None:
                    return
                waiter = asyncio.ensure_future(wake.wait())
                stop = asyncio.ensure_future(stopped.wait())
                try:
                    await asyncio.wait({waiter, stop}, timeout=delay, return_when="FIRST_COMPLETED")
                finally:
                    for task in (waiter, stop):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        finally:
            wakeups.forget(ns, name)

    # Filters only: they wake a schedule's daemon and return False, so kopf never invokes
    # a handler (or stores anything) for these events.
    def run_changed(namespace: str | None, labels: Any, **_: Any) -> bool:
        owner = labels.get(LABEL_SCHEDULE)
        if owner:
            wakeups.wake(namespace or "", owner)
        return False

    def spec_changed(namespace: str | None, name: str, meta: Any, status: Any, **_: Any) -> bool:
        if meta.get("generation") != (status or {}).get("observedGeneration"):
            wakeups.wake(namespace or "", name)
        return False

    @kopf.on.event(GROUP, VERSION, PLURAL, id="wake-schedule", registry=registry, when=run_changed)
    async def never_for_runs(**_: Any) -> None:  # pragma: no cover - filtered out
        return None

    @kopf.on.event(
        GROUP, VERSION, SCHEDULE_PLURAL, id="schedule-changed", registry=registry, when=spec_changed
    )
    async def never_for_schedules(**_: Any) -> None:  # pragma: no cover - filtered out
        return None
