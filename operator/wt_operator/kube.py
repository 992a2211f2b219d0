"""The operator's own Kubernetes calls: status patches, Events, Secret/ConfigMap reads.

kopf watches and holds finalizers; everything the reconciler writes itself goes
through this one small class, so retries, the content type of patches and the
"never log a secret" rule live in one place.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import kopf
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from wt_operator.spec import KeyRef
from wt_operator.status import now_iso

__all__ = [
    "GROUP",
    "PLURAL",
    "VERSION",
    "Kube",
    "ReferenceError_",
    "RunGoneError",
    "RunRef",
    "bounded_kopf_session",
]

GROUP = "wt.dev"
VERSION = "v1alpha1"
PLURAL = "workflowruns"

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_HTTP = {429, 500, 502, 503, 504}
# Concurrent short requests kopf may have in flight (finalizer patches), besides watches.
_KOPF_REQUEST_POOL = 32
# Merge patch replaces lists (conditions) whole and needs no resourceVersion.
_MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


async def _write(request: Awaitable[Any]) -> None:
    """Await a write made with ``_preload_content=False``; raise ApiException unless 2xx.

    The operator never uses what a write returns, and turning the returned object into
    kubernetes_asyncio models (dates parsed one by one) was a large share of its CPU when
    hundreds of runs start at once.
    """
    resp = await request
    try:
        body = await resp.read()
    finally:
        resp.release()
    if not 200 <= resp.status <= 299:
        exc = ApiException(status=resp.status, reason=resp.reason)
        exc.body, exc.headers = body, resp.headers
        raise exc


class RunGoneError(Exception):
    """The WorkflowRun no longer exists (404 on its status)."""


class ReferenceError_(Exception):
    """A Secret/ConfigMap reference cannot be resolved; the message is safe to show users."""


@dataclasses.dataclass(frozen=True)
class RunRef:
    """Identity of one WorkflowRun, as kopf hands it to handlers."""

    namespace: str
    name: str
    uid: str
    generation: int | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


async def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient for ``KUBECONFIG`` (or ``kubeconfig``), else the in-cluster ServiceAccount."""
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        await config.load_kube_config(config_file=path, client_configuration=cfg)
    else:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    # The default pool (5 x CPUs) throttles status patches when hundreds of runs start at once.
    cfg.connection_pool_maxsize = 100
    return client.ApiClient(cfg)


def bounded_kopf_session(info: kopf.ConnectionInfo, *, streams: int) -> kopf.AiohttpSession:
    """kopf's HTTP session, with a bounded connection pool.

    kopf's own session has no connection limit. When hundreds of runs arrive at once,
    each of their finalizer patches opens a new TLS connection (measured: 300 or more),
    and the handshakes cost CPU on both ends. This session carries kopf's credentials
    and allows ``streams`` long-lived watch connections plus a pool of short requests,
    so watches can never take every slot.
    """
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=streams + _KOPF_REQUEST_POOL, ssl=info.as_ssl_context()
        ),
        headers=info.as_http_headers(),  # bearer token or basic auth, as kopf would send
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )


class Kube:
    """Thin async wrapper over kubernetes_asyncio with the operator's retry policy."""

    def __init__(
        self, api: client.ApiClient, *, backoff_max: float = 60.0, component: str = "wt-operator"
    ) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.backoff_max = backoff_max
        self.component = component
        self.instance = socket.gethostname()

    async def close(self) -> None:
        await self.api.close()

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Retry transient API failures (5xx, 429, connection errors) with capped backoff."""
        delay = 0.2
        while True:
            try:
                return await call()
            except ApiException as exc:
                if exc.status not in _TRANSIENT_HTTP:
                    raise
                reason: str = f"HTTP {exc.status}"
            except (TimeoutError, OSError) as exc:
                reason = type(exc).__name__
            except Exception as exc:  # aiohttp client errors are not OSErrors
                if type(exc).__module__.startswith("aiohttp"):
                    reason = type(exc).__name__
                else:
                    raise
            log.warning("%s failed transiently (%s); retrying in %.1fs", what, reason, delay)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.backoff_max)

    async def patch_status(self, ref: RunRef, status: Mapping[str, Any]) -> None:
        """Merge-patch the run's status subresource (one write)."""

        async def call() -> None:
            await _write(
                self.custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    ref.namespace,
                    PLURAL,
                    ref.name,
                    {"status": dict(status)},
                    _preload_content=False,
                    **_MERGE_PATCH,
                )
            )

        try:
            await self._retry(f"patching status of {ref}", call)
        except ApiException as exc:
            if exc.status == 404:
                raise RunGoneError(str(ref)) from None
            raise

    async def post_event(
        self, ref: RunRef, *, reason: str, message: str, warning: bool = False
    ) -> None:
        """Record a core/v1 Event on the run; failures are logged, never fatal."""
        stamp = now_iso()
        body = {
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "WorkflowRun",
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": self.component},
            "reportingComponent": f"{GROUP}/{self.component}",
            "reportingInstance": self.instance,
        }
        try:
            await self._retry(
                f"posting event on {ref}",
                lambda: _write(
                    self.core.create_namespaced_event(
                        ref.namespace,
                        body,  # type: ignore[arg-type]
                        _preload_content=False,
                    )
                ),
            )
        except ApiException as exc:
            log.warning("could not post event %s on %s: HTTP %s", reason, ref, exc.status)

    async def read_key(self, namespace: str, ref: KeyRef) -> str | None:
        """The value of a Secret/ConfigMap key; None when optional and missing.

        Raises:
            ReferenceError_: missing (and not optional) or not readable; the message
            names the object and key, never a value.
        """
        try:
            if ref.kind == "Secret":
                secret = await self._retry(
                    f"reading {ref}", lambda: self.core.read_namespaced_secret(ref.name, namespace)
                )
                data = secret.data or {}
                if ref.key in data:
                    return base64.b64decode(data[ref.key]).decode("utf-8", errors="replace")
                string_data = secret.string_data or {}
                if ref.key in string_data:
                    return str(string_data[ref.key])
            else:
                cm = await self._retry(
                    f"reading {ref}",
                    lambda: self.core.read_namespaced_config_map(ref.name, namespace),
                )
                data = cm.data or {}
                if ref.key in data:
                    return str(data[ref.key])
            missing = f"{ref} not found"
        except ApiException as exc:
            if exc.status == 404:
                missing = f"{ref.kind} {ref.name!r} not found"
            elif exc.status == 403:
                raise ReferenceError_(
                    f"the operator is not allowed to read {ref.kind} {ref.name!r} in namespace "
                    f"{namespace!r} (RBAC)"
                ) from None
            else:
                raise
        if ref.optional:
            return None
        raise ReferenceError_(f"{missing} in namespace {namespace!r}")
