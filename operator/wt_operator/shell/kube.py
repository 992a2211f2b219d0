"""The operator's own Kubernetes calls, behind a small protocol.

kopf watches and holds finalizers; everything the reconciler writes or reads
itself — status patches, Events, Secret/ConfigMap reads, the log ConfigMaps of
Local runs, deletions of expired runs, the peering object — goes through the
:class:`Kube` protocol. :class:`KubeClient` implements it on kubernetes_asyncio
with one retry policy (transient failures: 429, 5xx, connection errors; retried
forever with capped backoff, until the caller is cancelled); unit tests pass an
in-memory double instead.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import aiohttp
import kopf
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from wt_invokers.retry import RetryPolicy, retry_call
from wt_operator.api import (
    ANNOTATION_LOG_BYTES,
    ANNOTATION_LOG_COMPLETE,
    ANNOTATION_LOG_TRUNCATED,
    API_VERSION,
    GROUP,
    KIND,
    LABEL_RUN_NAME,
    LABEL_RUN_UID,
    LOG_KEY,
    PLURAL,
    VERSION,
    RunStatus,
    log_configmap_name,
)
from wt_operator.core.errors import KubeApiError, ReferenceResolutionError, RunGoneError
from wt_operator.core.spec import KeyRef

__all__ = [
    "Kube",
    "KubeClient",
    "LogRecord",
    "RunRef",
    "bounded_kopf_session",
    "load_api_client",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_HTTP = {429, 500, 502, 503, 504}
# Concurrent short requests kopf may have in flight (finalizer patches), besides watches.
_KOPF_REQUEST_POOL = 32
_JSON = "application/json"
# Merge patch replaces lists (conditions) whole and needs no resourceVersion.
_MERGE_PATCH = "application/merge-patch+json"


@dataclasses.dataclass(frozen=True)
class RunRef:
    """Identity of one WorkflowRun, as kopf hands it to handlers."""

    namespace: str
    name: str
    uid: str
    generation: int | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class LogRecord:
    """The stored output of a Local run (what its log ConfigMap holds)."""

    text: str
    total_bytes: int
    truncated: bool
    complete: bool


class Kube(Protocol):
    """What the reconciler needs from the Kubernetes API."""

    async def patch_status(self, ref: RunRef, status: RunStatus) -> None:
        """Merge-patch the run's status. Raises RunGoneError when the run is gone."""

    async def post_event(self, ref: RunRef, *, reason: str, message: str, warning: bool) -> None:
        """Record an Event on the run; never raises."""

    async def read_key(self, namespace: str, ref: KeyRef) -> str | None:
        """A Secret/ConfigMap key's value; None when optional and missing.

        Raises ReferenceResolutionError naming what is missing (never a value).
        """

    async def write_log(self, ref: RunRef, record: LogRecord, *, create: bool) -> None:
        """Create (``create``) or update the run's log ConfigMap."""

    async def delete_run(self, ref: RunRef) -> bool:
        """Delete the run if it still has ``ref.uid``; whether it was there to delete."""

    async def peering_exists(self, namespace: str | None, name: str) -> bool:
        """Whether the kopf peering object exists (cluster-wide when ``namespace`` is None)."""


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


def _transient(exc: BaseException) -> str | None:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status}" if exc.status in _TRANSIENT_HTTP else None
    if isinstance(exc, TimeoutError | OSError | aiohttp.ClientError):
        return type(exc).__name__
    return None


class _Response:
    """What a request returned: status, body bytes (decoded lazily)."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class KubeClient:
    """:class:`Kube` on kubernetes_asyncio, with the operator's retry policy."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        backoff_max: float = 60.0,
        component: str = "wt-operator",
        on_retry: Callable[[str, str], None] | None = None,
    ) -> None:
        self.api = api
        self.policy = RetryPolicy(
            max_attempts=None, initial_backoff=0.2, max_backoff=backoff_max, on_retry=on_retry
        )
        self.component = component
        self.instance = socket.gethostname()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.api.close()

    async def _send(
        self, method: str, path: str, body: Any = None, content_type: str = _JSON
    ) -> _Response:
        """One HTTP request on the ApiClient's connection pool; ApiException unless 2xx.

        The generated client's request path (parameter validation, recursive
        serialisation, model decoding of the reply) cost about a millisecond of CPU per
        request; the operator's requests are few and fixed, so they are built here.
        Authentication still comes from the ApiClient's configuration (token refresh,
        exec plugins, client certificates in its TLS context).
        """
        cfg = self.api.configuration
        headers = {"Accept": _JSON, "Content-Type": content_type}
        for setting in (await cfg.auth_settings()).values():
            headers[setting["key"]] = setting["value"]
        rest = self.api.rest_client
        if self._session is None:
            # The ApiClient's connections (pool, TLS context with its client certificate),
            # but no proxy/netrc lookup in the environment on every request: the proxy is
            # the configuration's, given explicitly below.
            self._session = aiohttp.ClientSession(
                connector=rest.pool_manager.connector, connector_owner=False, trust_env=False
            )
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["data"] = json.dumps(body, separators=(",", ":"))
        if rest.proxy:
            kwargs["proxy"] = rest.proxy
            kwargs["proxy_headers"] = rest.proxy_headers
        if rest.server_hostname:
            kwargs["server_hostname"] = rest.server_hostname
        url = f"{cfg.host}{path}"
        async with self._session.request(method, url, **kwargs) as resp:
            data = await resp.read()
        if not 200 <= resp.status <= 299:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.body, exc.headers = data, resp.headers
            raise exc
        return _Response(resp.status, resp.reason or "", data)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, retrying transient failures; other API errors propagate."""

        def never(exc: BaseException, code: str, attempts: int) -> BaseException:
            return exc  # unreachable: no attempt limit

        return await retry_call(what, call, policy=self.policy, transient=_transient, give_up=never)

    @staticmethod
    def _run_path(ref: RunRef, subresource: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{ref.namespace}/{PLURAL}/{ref.name}"
        return f"{base}/{subresource}" if subresource else base

    async def patch_status(self, ref: RunRef, status: RunStatus) -> None:
        try:
            await self._call(
                f"patching status of {ref}",
                lambda: self._send(
                    "PATCH", self._run_path(ref, "status"), {"status": status}, _MERGE_PATCH
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                raise RunGoneError(str(ref)) from None
            raise KubeApiError(
                f"patching the status of {ref} was refused: HTTP {exc.status} {exc.reason}",
                status=exc.status or 0,
            ) from None

    async def post_event(self, ref: RunRef, *, reason: str, message: str, warning: bool) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
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
            await self._call(
                f"posting event on {ref}",
                lambda: self._send("POST", f"/api/v1/namespaces/{ref.namespace}/events", body),
            )
        except ApiException as exc:
            log.warning("could not post event %s on %s: HTTP %s", reason, ref, exc.status)

    async def read_key(self, namespace: str, ref: KeyRef) -> str | None:
        plural = "secrets" if ref.kind == "Secret" else "configmaps"
        path = f"/api/v1/namespaces/{namespace}/{plural}/{ref.name}"
        try:
            obj = (await self._call(f"reading {ref}", lambda: self._send("GET", path))).json()
            data = obj.get("data") or {}
            if ref.key in data:
                value = data[ref.key]
                if ref.kind == "Secret":
                    return base64.b64decode(value).decode("utf-8", errors="replace")
                return str(value)
            missing = f"{ref} not found"
        except ApiException as exc:
            if exc.status == 404:
                missing = f"{ref.kind} {ref.name!r} not found"
            elif exc.status == 403:
                raise ReferenceResolutionError(
                    f"the operator is not allowed to read {ref.kind} {ref.name!r} in namespace "
                    f"{namespace!r} (RBAC)"
                ) from None
            else:
                raise KubeApiError(
                    f"reading {ref} failed: HTTP {exc.status}", status=exc.status or 0
                ) from None
        if ref.optional:
            return None
        raise ReferenceResolutionError(f"{missing} in namespace {namespace!r}")

    async def write_log(self, ref: RunRef, record: LogRecord, *, create: bool) -> None:
        name = log_configmap_name(ref.uid)
        metadata: dict[str, Any] = {
            "annotations": {
                ANNOTATION_LOG_COMPLETE: str(record.complete).lower(),
                ANNOTATION_LOG_BYTES: str(record.total_bytes),
                ANNOTATION_LOG_TRUNCATED: str(record.truncated).lower(),
            }
        }
        body: dict[str, Any] = {"metadata": metadata, "data": {LOG_KEY: record.text}}
        if create:
            metadata.update(
                name=name,
                namespace=ref.namespace,
                labels={
                    "app.kubernetes.io/managed-by": "wt-operator",
                    LABEL_RUN_UID: ref.uid,
                    LABEL_RUN_NAME: ref.name[:63].rstrip("-_."),
                },
                # Deleted with its run by Kubernetes' garbage collector.
                ownerReferences=[
                    {"apiVersion": API_VERSION, "kind": KIND, "name": ref.name, "uid": ref.uid}
                ],
            )
        collection = f"/api/v1/namespaces/{ref.namespace}/configmaps"
        try:
            if create:
                await self._call(
                    f"writing the log of {ref}", lambda: self._send("POST", collection, body)
                )
            else:
                await self._call(
                    f"writing the log of {ref}",
                    lambda: self._send("PATCH", f"{collection}/{name}", body, _MERGE_PATCH),
                )
        except ApiException as exc:
            raise KubeApiError(
                f"writing the log ConfigMap {name} of {ref} failed: HTTP {exc.status}",
                status=exc.status or 0,
            ) from None

    async def delete_run(self, ref: RunRef) -> bool:
        options = {"preconditions": {"uid": ref.uid}, "propagationPolicy": "Background"}
        try:
            await self._call(
                f"deleting {ref}", lambda: self._send("DELETE", self._run_path(ref), options)
            )
        except ApiException as exc:
            if exc.status in (404, 409):  # gone, or a new run under the same name
                return False
            raise KubeApiError(
                f"deleting {ref} failed: HTTP {exc.status}", status=exc.status or 0
            ) from None
        return True

    async def peering_exists(self, namespace: str | None, name: str) -> bool:
        try:
            where = "" if namespace is None else f"namespaces/{namespace}/"
            kind = "clusterkopfpeerings" if namespace is None else "kopfpeerings"
            await self._send("GET", f"/apis/kopf.dev/v1/{where}{kind}/{name}")
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True
