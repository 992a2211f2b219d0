"""kopf registrations of WorkflowRuns: thin handlers that hand each run to the reconciler.

Each handler takes the typed :class:`~wt_operator.app.App` and does one thing with it;
the decisions are made in ``core``: what a watch event needs
(:func:`core.watch.on_watch_event`, read by the ``when=`` filter and by the handler
alike) and why a reconciler stops (:func:`core.stopping.stopping_for`). Handlers are
registered into an explicit registry by :func:`register` because some of their
parameters come from the operator's settings, known only at start-up.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import kopf

from wt_operator.api import GROUP, PLURAL, VERSION
from wt_operator.app import App
from wt_operator.core.status import is_active
from wt_operator.core.stopping import Stopping, stopping_for
from wt_operator.core.watch import WatchAction, on_watch_event
from wt_operator.kopf_errors import kopf_errors
from wt_operator.kopf_settings import configure_settings
from wt_operator.schedule_handlers import register_schedules
from wt_operator.shell.credentials import in_cluster, kubeconfig_needs_plugins
from wt_operator.shell.kopf_session import bounded_kopf_session
from wt_operator.shell.refs import RunRef
from wt_operator.shell.stop import CancelRequests

__all__ = ["KopfStop", "register"]


class KopfStop:
    """kopf's daemon stop flag, or the run's spec.cancel, as the reconciler's StopSignal."""

    def __init__(self, stopped: kopf.DaemonStopped, cancels: CancelRequests, uid: str) -> None:
        self._stopped = stopped
        self._cancels = cancels
        self._uid = uid
        self._cancel = cancels.event(uid)

    def generation(self) -> int | None:
        return self._cancels.generation(self._uid) if self._cancel.is_set() else None

    def why(self) -> Stopping | None:
        # kopf's reason is a flag set: a deletion may come with other flags at once.
        reason = self._stopped.reason
        return stopping_for(
            stopped=bool(self._stopped),
            deleted=reason is not None and kopf.DaemonStoppingReason.RESOURCE_DELETED in reason,
            cancelled=self._cancel.is_set(),
        )

    async def wait(self) -> None:
        stop = asyncio.ensure_future(self._stopped.wait())
        cancel = asyncio.ensure_future(self._cancel.wait())
        try:
            await asyncio.wait({stop, cancel}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            cancel.cancel()


def _ref(name: str, namespace: str | None, uid: str, meta: kopf.Meta) -> RunRef:
    # WorkflowRuns are namespaced, so kopf always passes a namespace.
    return RunRef(namespace=namespace or "", name=name, uid=uid, generation=meta.get("generation"))


def _watch_action(
    app: App, type: str | None, uid: str, meta: Any, spec: Any, status: Any
) -> WatchAction:
    return on_watch_event(
        type,
        meta,
        spec,
        status,
        reaping=app.reaping(uid),
        default_ttl=app.config.ttl_seconds_after_finished,
    )


async def operator_login(app: App, **kwargs: Any) -> Any:
    """One login for kopf and the reconciler (see shell.credentials): the pod's
    ServiceAccount, a kubeconfig read by kopf, or the client library's loader when
    the kubeconfig runs a credential plugin."""
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
    app.credentials.update(info)
    return bounded_kopf_session(info, streams=app.scope.streams)


async def operator_startup(app: App, settings: kopf.OperatorSettings, **_: Any) -> None:
    configure_settings(settings)
    app.start()


async def operator_cleanup(app: App, **_: Any) -> None:
    await app.close()


def is_active_run(status: Any, **_: Any) -> bool:
    """The daemon's filter: kopf keeps one reconciler per run until it is terminal."""
    return is_active(status)


async def workflowrun_daemon(
    app: App,
    *,
    name: str,
    namespace: str | None,
    uid: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    # kopf spawns the daemon and adds the finalizer in the same cycle. Act only once the
    # finalizer is there (meta is a live view): before it, a delete would not wait for the
    # clean-up, and our first status write would race kopf's finalizer patch (which the
    # API server then refuses with 422 and kopf retries: a wasted request per run).
    if not await app.finalized.wait(uid, meta, stopped):
        return
    if spec.get("cancel"):
        app.cancels.request(uid, meta.get("generation"))
    try:
        await app.reconciler.reconcile(
            _ref(name, namespace, uid, meta),
            dict(spec),
            dict(status),
            KopfStop(stopped, app.cancels, uid),
            annotations=dict(meta.get("annotations") or {}),
        )
    finally:
        app.cancels.forget(uid)


def needs_event(
    app: App, type: str | None, uid: str, meta: Any, spec: Any, status: Any, **_: Any
) -> bool:
    """The event handler's filter, called for every watch event: does the cheap parts
    itself (on every run's path, waking the waiting daemon from a handler cost about
    1.7 ms of CPU per Local run) and asks kopf for the handler only when needed."""
    action = _watch_action(app, type, uid, meta, spec, status)
    if action.gone:
        app.cancels.forget(uid)
    if action.finalizer_present:
        app.finalized.notify(uid)
    if action.cancel:
        app.cancels.request(uid, meta.get("generation"))
    return action.handle


async def workflowrun_event(
    app: App,
    *,
    type: str | None,
    name: str,
    namespace: str | None,
    uid: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    **_: Any,
) -> None:
    action = _watch_action(app, type, uid, meta, spec, status)
    if action.gone:
        app.reaper.forget(uid)
    elif action.finalize_unowned:
        # Runs before kopf releases the finalizer of a run deleted while nobody
        # reconciled it (kopf starts no daemon for an object being deleted).
        await app.reconciler.finalize_unowned(
            _ref(name, namespace, uid, meta), dict(spec), dict(status)
        )
    elif action.reap:
        if action.reap_at is None:
            app.reaper.forget(uid)
        else:
            app.reaper.schedule(_ref(name, namespace, uid, meta), action.reap_at)


def register(registry: kopf.OperatorRegistry, app: App) -> None:
    """Register the operator's handlers into ``registry``, each bound to ``app``."""
    register_schedules(registry, app)
    bind = functools.partial
    kopf.on.login(registry=registry, id="operator_login")(bind(operator_login, app))
    kopf.on.startup(registry=registry, id="operator_startup")(bind(operator_startup, app))
    kopf.on.cleanup(registry=registry, id="operator_cleanup")(bind(operator_cleanup, app))
    kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        id="reconcile",
        registry=registry,
        when=is_active_run,
        # On deletion or exit the daemon is told to stop and given this long to clean up by
        # itself (kill the process tree, delete the Batch job, record the outcome); on exit
        # kopf then gives up on it. On deletion it never cancels it (timeout None): the
        # finalizer stays until the clean-up really happened, however long that takes.
        # How often kopf looks at a stopped daemon is kopf_settings' one setting.
        cancellation_backoff=app.config.kill_grace_seconds + 20.0,
        cancellation_timeout=None,
    )(kopf_errors(app.config.retry_backoff_max)(bind(workflowrun_daemon, app)))
    # One low-level handler: kopf stores nothing for it (no extra writes per run).
    kopf.on.event(
        GROUP,
        VERSION,
        PLURAL,
        id="workflowrun_event",
        registry=registry,
        when=bind(needs_event, app),
    )(kopf_errors(app.config.retry_backoff_max)(bind(workflowrun_event, app)))
