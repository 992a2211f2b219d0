"""One run being reconciled: its identity, last status, stop flag — and recording.

Exists so the Local and Batch loops share one way to *act* on a decision:
:meth:`RunContext.record` writes the transition's status (one API write), posts
its Event (fire-and-forget), logs it and counts it; :meth:`RunContext.until_stopped`
waits for something unless the run is stopped first. The clock and the stop
flag are collaborators, so unit tests drive every path without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from wt_operator.api import Phase, RunStatus
from wt_operator.core.errors import KubeApiError, Terminal, Transient, classify
from wt_operator.core.masking import Masker
from wt_operator.core.status import Transition, parse_time, remaining, status_patch
from wt_operator.metrics import Metrics
from wt_operator.shell.clock import Clock
from wt_operator.shell.kube import Kube
from wt_operator.shell.refs import RunRef
from wt_operator.shell.stop import StopRequested, StopSignal

__all__ = ["RunContext"]

T = TypeVar("T")
RunLogger = logging.Logger | logging.LoggerAdapter[Any]


class RunContext:
    """What one reconciliation knows and how it records transitions."""

    def __init__(
        self,
        ref: RunRef,
        status: RunStatus,
        *,
        invoker: str,
        stop: StopSignal,
        logger: RunLogger,
        kube: Kube,
        clock: Clock,
        metrics: Metrics,
        spawn: Callable[[Awaitable[Any]], None],
        log_fields: Mapping[str, Any] | None = None,
    ) -> None:
        self.ref = ref
        self.log_fields: Mapping[str, Any] = log_fields or {}
        """Extra fields of every log record about this run (kopf's JSON format prints them)."""
        self.status: RunStatus = status
        self.invoker = invoker
        self.stop = stop
        self.logger = logger
        self.kube = kube
        self.clock = clock
        self.metrics = metrics
        self.spawn = spawn
        self._stopped: asyncio.Future[Any] | None = None
        self.masker = Masker()
        """Replaced once the run's Secret values are known: everything recorded is masked."""

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or Phase.PENDING)

    def remaining(self, deadline_seconds: int | None) -> float | None:
        """Seconds left of activeDeadlineSeconds (see :func:`core.status.remaining`)."""
        return remaining(self.status, deadline_seconds, self.clock.now())

    async def record(self, t: Transition) -> None:
        """Write ``t`` as the run's status, post its Event, log and count it."""
        if self.masker:
            t = dataclasses.replace(t, message=self.masker.mask(t.message))
        patch = status_patch(
            t,
            previous=self.status,
            generation=self.stop.generation() or self.ref.generation,
            now=dt.datetime.fromtimestamp(self.clock.now(), dt.UTC),
        )
        await self.kube.patch_status(self.ref, patch)
        self.status.update(patch)
        level = logging.WARNING if t.warning else logging.INFO
        self.logger.log(level, "%s (%s): %s", t.phase, t.reason, t.summary)
        self.spawn(
            self.kube.post_event(self.ref, reason=t.reason, message=t.summary, warning=t.warning)
        )
        if t.terminal:
            self.metrics.runs.labels(self.invoker, t.reason).inc()
            started = parse_time(self.status.get("startTime"))
            if started is not None:
                self.metrics.duration.labels(self.invoker, t.reason).observe(
                    max(0.0, self.clock.now() - started)
                )

    async def fail(self, exc: BaseException) -> None:
        """Record the terminal outcome ``exc`` means (:func:`core.errors.classify` decides).

        A transient one is recorded as such (the phase kept, reason ``Retrying``) and
        re-raised: the reconciler is retried with backoff (``wt_operator.kopf_errors``).
        """
        verdict = classify(exc)
        if isinstance(verdict, Transient):
            with contextlib.suppress(KubeApiError):  # when the API is the outage, it is logged
                await self.record(verdict.transition(Phase(self.phase)))
            raise exc
        if not isinstance(verdict, Terminal):  # the run is gone
            raise exc
        self.logger.debug("terminal error: %r", exc)
        await self.record(verdict.transition())

    def close(self) -> None:
        """The reconciliation is over: drop the stop waiter."""
        if self._stopped is not None:
            self._stopped.cancel()
            self._stopped = None

    async def until_stopped(self, aw: Awaitable[T], timeout: float | None = None) -> T:
        """Await ``aw`` unless the run is stopped first (StopRequested) or ``timeout`` passes
        (TimeoutError); in both cases ``aw`` is cancelled."""
        why = self.stop.why()
        if why is not None:  # already stopped: do not start anything new
            if asyncio.iscoroutine(aw):
                aw.close()
            raise StopRequested(why)
        task = asyncio.ensure_future(aw)
        if self._stopped is None:
            # One waiter for the run's whole life, not one per wait: a tracked Batch job
            # waits twice per poll, and each new waiter on kopf's flag costs tasks and timers.
            self._stopped = asyncio.ensure_future(self.stop.wait())
        waiters: set[asyncio.Future[Any]] = {task, self._stopped}
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        why = self.stop.why()
        if why is not None:
            raise StopRequested(why)
        raise TimeoutError

    async def sleep(self, seconds: float) -> None:
        """Sleep on the clock, but wake (raising StopRequested) as soon as the run is stopped."""
        await self.until_stopped(self.clock.sleep(seconds))
