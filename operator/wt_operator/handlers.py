"""kopf registrations: thin handlers that hand each WorkflowRun to the Runtime.

Handlers are registered into an explicit registry by :func:`register` because
some of their parameters come from the operator's settings, which are known
only at start-up.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from wt_operator.config import OperatorConfig
from wt_operator.kube import (
    GROUP,
    PLURAL,
    VERSION,
    Kube,
    RunRef,
    bounded_kopf_session,
    load_api_client,
)
from wt_operator.metrics import Metrics
from wt_operator.runner import Runtime
from wt_operator.status import is_active

__all__ = ["FINALIZER", "configure_settings", "register"]

FINALIZER = "wt.dev/finalizer"


def configure_settings(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Tune kopf for few API writes per run (measured in benchmarks/)."""
    settings.persistence.finalizer = FINALIZER
    # Only daemons are registered, so kopf has no handler progress or diff-base to
    # store; keep its annotations under our prefix should it ever write one.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="wt.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="wt.dev", key="last-handled-configuration"
    )
    # kopf would turn every INFO log line into an Event (an API write each);
    # the runtime posts exactly one Event per phase transition instead.
    settings.posting.enabled = False
    settings.peering.name = "wt-operator"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = (0.5, 1, 2, 4, 8, 15, 30)
    settings.background.cancellation_polling = 1.0
    # When a terminal status makes the daemon's filter mismatch, the daemon is already
    # returning: wait for it briefly instead of scheduling a re-check (an extra PATCH).
    settings.background.instant_exit_timeout = 1.0
    # No dynamic discovery of CRDs/namespaces: it would need cluster-wide list/watch on
    # customresourcedefinitions and namespaces, which least-privilege RBAC does not grant.
    settings.scanning.disabled = True


def _active(status: Any, **_: Any) -> bool:
    return is_active(status)


def _run_ref(name: str, namespace: str | None, uid: str, meta: kopf.Meta) -> RunRef:
    # WorkflowRuns are namespaced, so kopf always passes a namespace.
    return RunRef(namespace=namespace or "", name=name, uid=uid, generation=meta.get("generation"))


def _deleted_while_active(meta: Any, status: Any, **_: Any) -> bool:
    return bool(
        meta.get("deletionTimestamp")
        and FINALIZER in (meta.get("finalizers") or ())
        and is_active(status)
    )


def register(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    metrics: Metrics,
    *,
    namespaces: int = 1,
) -> None:
    """Register the operator's handlers into ``registry``.

    ``namespaces`` is how many namespaces kopf watches one by one (1 when cluster-wide):
    each has a long-lived watch stream for WorkflowRuns and one for the peering object.
    """

    @kopf.on.login(registry=registry)
    async def operator_login(**kwargs: Any) -> Any:
        # The same loader as our own API client (kubeconfig incl. exec plugins, or the
        # in-cluster ServiceAccount), so kopf and the runtime authenticate alike.
        info = await kopf.login_via_async_client(**kwargs)
        if not isinstance(info, kopf.ConnectionInfo):
            return info
        return bounded_kopf_session(info, streams=2 * max(namespaces, 1) + 2)

    @kopf.on.startup(registry=registry)
    async def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_settings(settings, config)
        api = await load_api_client()
        memo.runtime = Runtime(config, Kube(api, backoff_max=config.retry_backoff_max), metrics)
        memo.runtime.preload_batch()

    @kopf.on.cleanup(registry=registry)
    async def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = getattr(memo, "runtime", None)
        if runtime is not None:
            await runtime.close()
            await runtime.kube.close()

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        id="reconcile",
        registry=registry,
        when=_active,
        # On deletion the daemon gets `stopped` and this long to clean up by itself (kill the
        # process tree, delete the Batch job, record Cancelled); only then does kopf
        # cancel it, and give up 10 s later. Without a backoff kopf cancels at once.
        cancellation_backoff=config.kill_grace_seconds + 20.0,
        cancellation_timeout=10.0,
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
        logger: logging.Logger | logging.LoggerAdapter[Any],
        memo: Any,
        **_: Any,
    ) -> None:
        ref = _run_ref(name, namespace, uid, meta)
        runtime: Runtime = memo.runtime
        await runtime.reconcile(ref, dict(spec), dict(status), stopped, logger)

    # A low-level handler: kopf stores nothing for it (no extra writes per run) and awaits
    # it before it releases the finalizer in the same cycle.
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, when=_deleted_while_active)
    async def workflowrun_deleted(
        *,
        name: str,
        namespace: str | None,
        uid: str,
        meta: kopf.Meta,
        spec: kopf.Spec,
        status: kopf.Status,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        memo: Any,
        **_: Any,
    ) -> None:
        ref = _run_ref(name, namespace, uid, meta)
        runtime: Runtime = memo.runtime
        await runtime.finalize_unowned(ref, dict(spec), dict(status), logger)
