"""kopf registrations: thin handlers that hand each WorkflowRun to the runtime.

Handlers are registered into an explicit registry by :func:`register` because
some of their parameters come from the operator's settings, which are known
only at start-up. Nothing here decides anything about a run.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf

from wt_operator.api import FINALIZER, GROUP, PLURAL, VERSION
from wt_operator.config import OperatorConfig
from wt_operator.core.retention import expiry, ttl_for
from wt_operator.core.status import is_active
from wt_operator.core.stopping import Stopping
from wt_operator.kopf_settings import configure_settings
from wt_operator.metrics import Metrics
from wt_operator.schedule_handlers import register_schedules
from wt_operator.shell.clock import SystemClock
from wt_operator.shell.credentials import in_cluster, kubeconfig_needs_plugins
from wt_operator.shell.invokers import Invokers
from wt_operator.shell.kopf_session import bounded_kopf_session
from wt_operator.shell.kube import KubeClient
from wt_operator.shell.peering import warn_while_missing
from wt_operator.shell.refs import RunRef
from wt_operator.shell.retention import Reaper
from wt_operator.shell.runner_client import RunnerInvokers
from wt_operator.shell.runtime import Runtime
from wt_operator.shell.stop import CancelRequests

__all__ = ["Scope", "register"]


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


class KopfStop:
    """kopf's daemon stop flag, or the run's spec.cancel, as the runtime's StopSignal."""

    def __init__(self, stopped: kopf.DaemonStopped, cancels: CancelRequests, uid: str) -> None:
        self._stopped = stopped
        self._cancels = cancels
        self._uid = uid
        self._cancel = cancels.event(uid)

    def generation(self) -> int | None:
        return self._cancels.generation(self._uid) if self._cancel.is_set() else None

    def why(self) -> Stopping | None:
        if not self._stopped:
            return Stopping.CANCELLED if self._cancel.is_set() else None
        reason = self._stopped.reason
        return (
            Stopping.DELETED if reason and "RESOURCE_DELETED" in str(reason) else Stopping.OPERATOR
        )

    async def wait(self) -> None:
        stop = asyncio.ensure_future(self._stopped.wait())
        cancel = asyncio.ensure_future(self._cancel.wait())
        try:
            await asyncio.wait({stop, cancel}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            cancel.cancel()


def _active(status: Any, **_: Any) -> bool:
    return is_active(status)


def _ref(name: str, namespace: str | None, uid: str, meta: kopf.Meta) -> RunRef:
    # WorkflowRuns are namespaced, so kopf always passes a namespace.
    return RunRef(namespace=namespace or "", name=name, uid=uid, generation=meta.get("generation"))


def _deleted_while_held(meta: Any) -> bool:
    """Deletion was asked for and our finalizer still holds the run."""
    return bool(meta.get("deletionTimestamp")) and FINALIZER in (meta.get("finalizers") or ())


def register(
    registry: kopf.OperatorRegistry, config: OperatorConfig, metrics: Metrics, scope: Scope
) -> None:
    """Register the operator's handlers into ``registry``."""
    register_schedules(registry, metrics)

    @kopf.on.login(registry=registry)
    async def operator_login(memo: kopf.Memo, **kwargs: Any) -> Any:
        # One login for kopf and the runtime (see shell.credentials): the pod's
        # ServiceAccount, a kubeconfig read by kopf, or the client library's loader when
        # the kubeconfig runs a credential plugin.
        if in_cluster():
            info = kopf.login_with_service_account(**kwargs)
        elif kubeconfig_needs_plugins():
            try:
                info = await kopf.login_via_async_client(**kwargs)
            except ImportError as exc:
                raise kopf.PermanentError(
                    "the kubeconfig's user runs a credential plugin (exec/auth-provider), "
                    "which needs kubernetes-asyncio: pip install 'wt-invokers[kubectl]'"
                ) from exc
        else:
            info = kopf.login_with_kubeconfig(**kwargs)
        if not isinstance(info, kopf.ConnectionInfo):
            return info
        memo.credentials.update(info)
        return bounded_kopf_session(info, streams=scope.streams)

    @kopf.on.startup(registry=registry)
    async def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_settings(settings)
        kube = KubeClient(
            memo.credentials,
            backoff_max=config.retry_backoff_max,
            on_retry=lambda what, code: metrics.api_errors.labels("Kubernetes").inc(),
        )
        # With a runner configured (the chart's default), Local workflows run in its
        # container and uid; without one, as children of this process.
        invokers = (
            RunnerInvokers(config, config.runner_socket, metrics=metrics)
            if config.runner_socket is not None
            else Invokers(config, metrics=metrics)
        )
        invokers.preload_batch()
        clock = SystemClock()
        memo.kube, memo.invokers = kube, invokers
        memo.finalized = Finalized()
        memo.cancels = CancelRequests()
        memo.runtime = Runtime(config, kube, invokers, clock=clock, metrics=metrics)
        memo.reaper = Reaper(kube, clock)
        memo.reaper.start()
        memo.peering_watch = None
        if not scope.standalone:
            literal = [ns for ns in scope.namespaces or () if not set(ns) & set("*?[")]
            memo.peering_watch = asyncio.create_task(
                warn_while_missing(kube, None if scope.namespaces is None else literal)
            )

    @kopf.on.cleanup(registry=registry)
    async def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
        if getattr(memo, "peering_watch", None) is not None:
            memo.peering_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await memo.peering_watch
        if getattr(memo, "reaper", None) is not None:
            await memo.reaper.stop()
        if getattr(memo, "runtime", None) is not None:
            await memo.runtime.close()
            await memo.invokers.close()
            await memo.kube.close()

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        id="reconcile",
        registry=registry,
        when=_active,
        # On deletion or exit the daemon is told to stop and given this long to clean up by
        # itself (kill the process tree, delete the Batch job, record the outcome); on exit
        # kopf then gives up on it. On deletion it never cancels it (timeout None): the
        # finalizer stays until the clean-up really happened, however long that takes.
        cancellation_backoff=config.kill_grace_seconds + 20.0,
        cancellation_timeout=None,
        cancellation_polling=1.0,
    )
    async def workflowrun_daemon(
        *,
        name: str,
        namespace: str | None,
        uid: str,
        meta: kopf.Meta,
        spec: kopf.Spec,
        status: kopf.Status,
        stopped: kopf.DaemonStopped,
        memo: Any,
        **_: Any,
    ) -> None:
        # kopf spawns the daemon and adds the finalizer in the same cycle. Act only once the
        # finalizer is there (meta is a live view): before it, a delete would not wait for the
        # clean-up, and our first status write would race kopf's finalizer patch (which the
        # API server then refuses with 422 and kopf retries: a wasted request per run).
        if not await memo.finalized.wait(uid, meta, stopped):
            return
        runtime: Runtime = memo.runtime
        cancels: CancelRequests = memo.cancels
        if spec.get("cancel"):
            cancels.request(uid, meta.get("generation"))
        try:
            await runtime.reconcile(
                _ref(name, namespace, uid, meta),
                dict(spec),
                dict(status),
                KopfStop(stopped, cancels, uid),
                annotations=dict(meta.get("annotations") or {}),
            )
        finally:
            cancels.forget(uid)

    def needs_event(
        type: str | None, uid: str, meta: Any, spec: Any, status: Any, memo: Any, **_: Any
    ) -> bool:
        # Cheap, and called for every watch event: most events need nothing, and invoking
        # a handler costs kopf far more than this test (and logs a line at INFO). That is
        # also why the waiting daemon is woken from here: on every run's path, and a
        # handler invocation for it cost about 1.7 ms of CPU per Local run.
        if type == "DELETED":
            memo.cancels.forget(uid)
            return uid in memo.reaper
        if FINALIZER in (meta.get("finalizers") or ()):
            memo.finalized.notify(uid)
        if is_active(status):
            if spec.get("cancel"):
                memo.cancels.request(uid, meta.get("generation"))
            return _deleted_while_held(meta)
        return (
            uid in memo.reaper or ttl_for(spec, meta, config.ttl_seconds_after_finished) is not None
        )

    # One low-level handler: kopf stores nothing for it (no extra writes per run).
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, when=needs_event)
    async def workflowrun_event(
        *,
        type: str | None,
        name: str,
        namespace: str | None,
        uid: str,
        meta: kopf.Meta,
        spec: kopf.Spec,
        status: kopf.Status,
        memo: Any,
        **_: Any,
    ) -> None:
        reaper: Reaper = memo.reaper
        if type == "DELETED":
            reaper.forget(uid)
            return
        if is_active(status):
            if _deleted_while_held(meta):
                # Runs before kopf releases the finalizer of a run deleted while nobody
                # reconciled it (kopf starts no daemon for an object being deleted).
                runtime: Runtime = memo.runtime
                await runtime.finalize_unowned(
                    _ref(name, namespace, uid, meta), dict(spec), dict(status)
                )
            return
        ttl = ttl_for(spec, meta, config.ttl_seconds_after_finished)
        at = expiry(status, ttl) if ttl is not None else None
        if at is None:
            reaper.forget(uid)
        else:
            reaper.schedule(_ref(name, namespace, uid, meta), at)
