"""kopf registrations for WorkflowSchedules: one daemon per schedule, woken when needed.

Apart from the WorkflowRun handlers so each kind's wiring reads on its own. Like them, the
handlers are module functions taking the typed :class:`~wt_operator.app.App` (its
Kubernetes client) and this kind's :class:`Wakeups`; core.schedule decides, shell.schedule
acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

import kopf

from wt_operator.api import GROUP, LABEL_SCHEDULE, PLURAL, SCHEDULE_PLURAL, VERSION
from wt_operator.app import App
from wt_operator.core.errors import Transient, classify
from wt_operator.kopf_errors import kopf_errors
from wt_operator.shell.clock import SystemClock
from wt_operator.shell.schedule import ScheduleReconciler

__all__ = ["Wakeups", "after_error", "register_schedules"]

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


def after_error(exc: Exception, namespace: str, name: str) -> float:
    """Seconds before a schedule's pass that raised ``exc`` is tried again.

    A transient error (``core.errors.classify``) is re-raised: it reaches kopf through
    :func:`~wt_operator.kopf_errors.kopf_errors`, which retries the daemon with backoff.
    Any other is logged and retried by the daemon's own loop, which also wakes when the
    schedule is edited: a permanent kopf error would stop the daemon for good (kopf never
    starts it again), and the schedule would stop firing even once it is fixed.
    """
    if isinstance(classify(exc), Transient):
        raise exc
    log.error(
        "reconciling WorkflowSchedule %s/%s failed; retrying in %gs",
        namespace,
        name,
        RETRY_AFTER_ERROR,
        exc_info=exc,
    )
    return RETRY_AFTER_ERROR


async def workflowschedule_daemon(
    app: App,
    wakeups: Wakeups,
    *,
    name: str,
    namespace: str | None,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    ns = namespace or ""
    reconciler = ScheduleReconciler(app.kube, SystemClock(), app.metrics)
    wake = wakeups.event(ns, name)
    try:
        while not stopped:
            wake.clear()
            try:
                delay = await reconciler.reconcile(ns, name)
            except Exception as exc:
                delay = after_error(exc, ns, name)
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
def run_changed(wakeups: Wakeups, namespace: str | None, labels: Any, **_: Any) -> bool:
    owner = labels.get(LABEL_SCHEDULE)
    if owner:
        wakeups.wake(namespace or "", owner)
    return False


def spec_changed(
    wakeups: Wakeups, namespace: str | None, name: str, meta: Any, status: Any, **_: Any
) -> bool:
    if meta.get("generation") != (status or {}).get("observedGeneration"):
        wakeups.wake(namespace or "", name)
    return False


async def never_called(**_: Any) -> None:  # pragma: no cover - filtered out
    return None


def register_schedules(registry: kopf.OperatorRegistry, app: App) -> None:
    """Register the WorkflowSchedule handlers, bound to ``app`` (whose start-up builds the
    Kubernetes client they share)."""
    wakeups = Wakeups()
    bind = functools.partial
    kopf.daemon(
        GROUP,
        VERSION,
        SCHEDULE_PLURAL,
        id="schedule",
        registry=registry,
        cancellation_timeout=10.0,
    )(kopf_errors(app.config.retry_backoff_max)(bind(workflowschedule_daemon, app, wakeups)))
    kopf.on.event(
        GROUP,
        VERSION,
        PLURAL,
        id="wake-schedule",
        registry=registry,
        when=bind(run_changed, wakeups),
    )(never_called)
    kopf.on.event(
        GROUP,
        VERSION,
        SCHEDULE_PLURAL,
        id="schedule-changed",
        registry=registry,
        when=bind(spec_changed, wakeups),
    )(never_called)
