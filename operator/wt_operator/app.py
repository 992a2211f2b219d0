"""The operator's object graph, built in one typed place: what every handler works with.

kopf's handlers are registered before the operator has logged in, so the clients they
use are built at start-up (:meth:`App.start`) and closed at clean-up (:meth:`App.close`);
the handlers (:mod:`wt_operator.handlers`) take this object and stay thin. Before, the
graph lived in an untyped ``kopf.Memo`` set from six closures.
"""

from __future__ import annotations

import asyncio
import contextlib

import kopf

from wt_operator.api import FINALIZER
from wt_operator.config import OperatorConfig
from wt_operator.metrics import Metrics
from wt_operator.shell.clock import SystemClock
from wt_operator.shell.credentials import Credentials
from wt_operator.shell.invokers import Invokers
from wt_operator.shell.kube import KubeClient
from wt_operator.shell.peering import warn_while_missing
from wt_operator.shell.reconciler import Reconciler
from wt_operator.shell.retention import Reaper
from wt_operator.shell.runner_client import RunnerInvokers
from wt_operator.shell.stop import CancelRequests

__all__ = ["App", "Finalized", "NotStarted", "Scope"]


class Scope:
    """What this operator process watches, and whether it coordinates with replicas."""

    def __init__(self, namespaces: list[str] | None, *, standalone: bool) -> None:
        self.namespaces = namespaces
        """None: every namespace."""
        self.standalone = standalone

    @property
    def streams(self) -> int:
        """Long-lived watch connections: WorkflowRuns, WorkflowSchedules and the peering
        object per namespace."""
        return 3 * max(len(self.namespaces or ()), 1) + 2


class Finalized:
    """Lets a run's daemon wait, without polling, until kopf's finalizer is on the object.

    The event handler sees every watch event and notifies; the daemon registers first, then
    looks at the live metadata, so a finalizer added in between is never missed.
    """

    def __init__(self) -> None:
        self._waiters: dict[str, asyncio.Event] = {}

    def notify(self, uid: str) -> None:
        event = self._waiters.pop(uid, None)
        if event is not None:
            event.set()

    async def wait(self, uid: str, meta: kopf.Meta, stopped: kopf.DaemonStopped) -> bool:
        """True once the finalizer is there; False when the daemon is stopped first."""
        event = self._waiters.setdefault(uid, asyncio.Event())
        try:
            if FINALIZER in (meta.get("finalizers") or ()):
                return True
            waiter = asyncio.ensure_future(event.wait())
            stop = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                stop.cancel()
            return event.is_set() and not stopped
        finally:
            if self._waiters.get(uid) is event:
                del self._waiters[uid]


class NotStarted(RuntimeError):
    """A handler ran before start-up built the clients (kopf never does this)."""


class _Started:
    """The parts that need the operator's login: built together, closed together."""

    def __init__(self, app: App) -> None:
        config, metrics = app.config, app.metrics
        self.kube = KubeClient(
            app.credentials,
            backoff_max=config.retry_backoff_max,
            on_retry=lambda what, code: metrics.api_errors.labels("Kubernetes").inc(),
        )
        # With a runner configured (the chart's default), Local workflows run in its
        # container and uid; without one, as children of this process.
        self.invokers: Invokers = (
            RunnerInvokers(config, config.runner_socket, metrics=metrics)
            if config.runner_socket is not None
            else Invokers(config, metrics=metrics)
        )
        self.invokers.preload_batch()
        clock = SystemClock()
        self.reconciler = Reconciler(config, self.kube, self.invokers, clock=clock, metrics=metrics)
        self.reaper = Reaper(self.kube, clock)
        self.peering_watch: asyncio.Task[None] | None = None


class App:
    """The operator's settings, what it watches, and (once started) its clients and loops."""

    def __init__(self, config: OperatorConfig, metrics: Metrics, scope: Scope) -> None:
        self.config = config
        self.metrics = metrics
        self.scope = scope
        self.credentials = Credentials()
        """Filled by the login handler; the Kubernetes client reads it on every request."""
        self.finalized = Finalized()
        self.cancels = CancelRequests()
        self._started: _Started | None = None

    @property
    def started(self) -> _Started:
        if self._started is None:
            raise NotStarted("the operator has not started yet")
        return self._started

    @property
    def kube(self) -> KubeClient:
        return self.started.kube

    @property
    def reconciler(self) -> Reconciler:
        return self.started.reconciler

    @property
    def reaper(self) -> Reaper:
        return self.started.reaper

    def reaping(self, uid: str) -> bool:
        """Whether the TTL reaper holds ``uid`` (False before start-up: nothing is held)."""
        return self._started is not None and uid in self._started.reaper

    def start(self) -> None:
        """Build the clients and start the background loops (kopf's start-up handler)."""
        started = self._started = _Started(self)
        started.reaper.start()
        scope = self.scope
        if not scope.standalone:
            literal = [ns for ns in scope.namespaces or () if not set(ns) & set("*?[")]
            started.peering_watch = asyncio.create_task(
                warn_while_missing(started.kube, None if scope.namespaces is None else literal)
            )

    async def close(self) -> None:
        """Stop the loops and close the clients, in the reverse order of :meth:`start`."""
        started, self._started = self._started, None
        if started is None:
            return
        if started.peering_watch is not None:
            started.peering_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await started.peering_watch
        await started.reaper.stop()
        await started.reconciler.close()
        await started.invokers.close()
        await started.kube.close()
