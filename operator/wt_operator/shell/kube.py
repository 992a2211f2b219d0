"""The operator's own Kubernetes calls, behind a small protocol.

kopf watches and holds finalizers; everything the reconciler writes or reads
itself — status patches, Events, Secret/ConfigMap reads, the log ConfigMaps of
Local runs, deletions of expired runs, the peering object — goes through the
:class:`Kube` protocol. :class:`KubeClient` implements it over plain HTTP (aiohttp)
with one retry policy (transient failures: 429, 5xx, connection errors; retried
forever with capped backoff, until the caller is cancelled); unit tests pass an
in-memory double instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp

from wt_invokers.retry import RetryPolicy, retry_call
from wt_operator.api import (
    ANNOTATION_LOG_BYTES,
    ANNOTATION_LOG_COMPLETE,
    ANNOTATION_LOG_TRUNCATED,
    ANNOTATION_LOG_WRITER,
    GROUP,
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
from wt_operator.core.status import now_iso
from wt_operator.shell.credentials import Credentials
from wt_operator.shell.refs import LogRecord, LogTarget, RunRef

__all__ = ["HttpError", "Kube", "KubeClient", "event_body", "segment"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_HTTP = {401, 429, 500, 502, 503, 504}
_POOL = 100
"""Connections for the operator's own requests; hundreds of runs starting at once each
write a status, and a smaller pool made them queue (measured: throughput halved at 10)."""
_JSON = "application/json"
# Merge patch replaces lists (conditions) whole and needs no resourceVersion.
_MERGE_PATCH = "application/merge-patch+json"


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

    async def write_log(
        self, ref: RunRef, record: LogRecord, *, target: LogTarget | None, writer: str
    ) -> LogTarget:
        """Write the run's log into ``target``, or create one (``target`` None); where it went.

        A create is tagged with ``writer``: on a name already taken it adopts only an
        object owned by the run that carries this tag, and otherwise creates one under
        a name the API server chooses. An update touches ``target.uid`` only; if that
        object is gone or replaced, a new one is created the same way.
        """

    async def delete_run(self, ref: RunRef) -> bool:
        """Delete the run if it still has ``ref.uid``; whether it was there to delete."""

    async def peering_exists(self, namespace: str | None, name: str) -> bool:
        """Whether the kopf peering object exists (cluster-wide when ``namespace`` is None)."""


def segment(value: str) -> str:
    """``value`` as exactly one URL path segment.

    Every name the operator puts into an API path goes through here: ``/`` is
    percent-encoded, and ``.``/``..`` (which the HTTP client would resolve, turning
    ``secrets/../../victim/secrets/db`` into another namespace's Secret) are refused,
    even if the CRD's name patterns were bypassed.
    """
    if value in ("", ".", ".."):
        raise ReferenceResolutionError(f"{value!r} cannot be an object name")
    return quote(value, safe="")


class HttpError(KubeApiError):
    """The API server answered a request with an error status (and why, when it said).

    A :class:`KubeApiError`, so what escapes a caller that does not translate it (the
    schedule reconciler) is still judged by ``core.errors.classify`` by its status."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        super().__init__(f"HTTP {status} {reason}" + _status_message(body), status=status)


def _status_message(body: bytes) -> str:
    """``": <message>"`` of the API server's Status reply, or "" when it sent none."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {message}" if isinstance(message, str) and message else ""


def _transient(exc: BaseException) -> str | None:
    if isinstance(exc, HttpError):
        # 401: the credentials expired; kopf logs in again and the next attempt uses them.
        return f"HTTP {exc.status}" if exc.status in _TRANSIENT_HTTP else None
    if isinstance(exc, TimeoutError | OSError | aiohttp.ClientError):
        return type(exc).__name__
    return None


def event_body(
    ref: RunRef,
    *,
    reason: str,
    message: str,
    warning: bool,
    component: str,
    instance: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The core/v1 Event the operator posts about ``ref``."""
    stamp = now_iso(now)
    return {
        "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
        "involvedObject": ref.object_reference(),
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        # Two Events of a fast run share a second; eventTime (microseconds) keeps their
        # order (kubectl wt describe sorts by it). The legacy timestamps stay for
        # `kubectl get events --sort-by=.lastTimestamp` and older tools.
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": "Reconcile",
        "source": {"component": component},
        "reportingComponent": f"{GROUP}/{component}",
        "reportingInstance": instance,
    }


class KubeClient:
    """:class:`Kube` over HTTP with the operator's credentials and retry policy."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        backoff_max: float = 60.0,
        component: str = "wt-operator",
        on_retry: Callable[[str, str], None] | None = None,
    ) -> None:
        self.credentials = credentials
        self.policy = RetryPolicy(
            max_attempts=None, initial_backoff=0.2, max_backoff=backoff_max, on_retry=on_retry
        )
        self.component = component
        self.instance = socket.gethostname()
        self._session: aiohttp.ClientSession | None = None
        self._generation = 0

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(
        self, method: str, path: str, body: Any = None, content_type: str = _JSON
    ) -> bytes:
        """One HTTP request; its reply's body (decoded only where read), HttpError unless 2xx.

        Built here, not by a generated client: the operator's requests are few and fixed,
        and the generated request path (validation, recursive serialisation, decoding the
        reply into models) cost about a millisecond of CPU per request.
        """
        creds = self.credentials
        await creds.ready()
        if self._session is None or self._generation != creds.generation:
            if self._session is not None:
                await self._session.close()
            # trust_env=False: aiohttp would otherwise look up proxies and ~/.netrc in the
            # environment on every request (a third of this path's CPU); the proxy is the
            # kubeconfig's, given below.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=_POOL, ssl=creds.ssl or True),
                trust_env=False,
            )
            self._generation = creds.generation
        headers = {"Accept": _JSON, "Content-Type": content_type, **creds.headers}
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        async with self._session.request(
            method, creds.server + path, data=data, headers=headers, proxy=creds.proxy
        ) as resp:
            payload = await resp.read()
        if not 200 <= resp.status <= 299:
            raise HttpError(resp.status, resp.reason or "", payload)
        return payload

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, retrying transient failures; other API errors propagate."""

        def never(exc: BaseException, code: str, attempts: int) -> BaseException:
            return exc  # unreachable: no attempt limit

        return await retry_call(what, call, policy=self.policy, transient=_transient, give_up=never)

    @staticmethod
    def _run_path(ref: RunRef, subresource: str = "") -> str:
        ns, name = segment(ref.namespace), segment(ref.name)
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}/{name}"
        return f"{base}/{subresource}" if subresource else base

    async def patch_status(self, ref: RunRef, status: RunStatus) -> None:
        try:
            await self._call(
                f"patching status of {ref}",
                lambda: self._send(
                    "PATCH", self._run_path(ref, "status"), {"status": status}, _MERGE_PATCH
                ),
            )
        except HttpError as exc:
            if exc.status == 404:
                raise RunGoneError(str(ref)) from None
            raise KubeApiError(
                f"patching the status of {ref} was refused: {exc}",
                status=exc.status,
            ) from None

    async def post_event(self, ref: RunRef, *, reason: str, message: str, warning: bool) -> None:
        body = event_body(
            ref,
            reason=reason,
            message=message,
            warning=warning,
            component=self.component,
            instance=self.instance,
            now=dt.datetime.now(dt.UTC),
        )
        try:
            await self._call(
                f"posting event on {ref}",
                lambda: self._send(
                    "POST", f"/api/v1/namespaces/{segment(ref.namespace)}/events", body
                ),
            )
        except HttpError as exc:
            log.warning("could not post event %s on %s: %s", reason, ref, exc)

    async def read_key(self, namespace: str, ref: KeyRef) -> str | None:
        plural = "secrets" if ref.kind == "Secret" else "configmaps"
        path = f"/api/v1/namespaces/{segment(namespace)}/{plural}/{segment(ref.name)}"
        try:
            obj = json.loads(await self._call(f"reading {ref}", lambda: self._send("GET", path)))
            # What came back must be the object asked for: of its kind, in the run's
            # namespace. Nothing read from it goes into a message.
            meta = obj.get("metadata") or {}
            if obj.get("kind") != ref.kind or meta.get("namespace") != namespace:
                raise ReferenceResolutionError(
                    f"{ref.kind} {ref.name!r} did not resolve to a {ref.kind} of namespace "
                    f"{namespace!r}; the workflow was not started"
                )
            data = obj.get("data") or {}
            if ref.key in data:
                value = data[ref.key]
                if ref.kind == "Secret":
                    return base64.b64decode(value).decode("utf-8", errors="replace")
                return str(value)
            missing = f"{ref} not found"
        except HttpError as exc:
            if exc.status == 404:
                missing = f"{ref.kind} {ref.name!r} not found"
            elif exc.status == 403:
                raise ReferenceResolutionError(
                    f"the operator is not allowed to read {ref.kind} {ref.name!r} in namespace "
                    f"{namespace!r} (RBAC)"
                ) from None
            else:
                raise KubeApiError(f"reading {ref} failed: {exc}", status=exc.status) from None
        if ref.optional:
            return None
        raise ReferenceResolutionError(f"{missing} in namespace {namespace!r}")

    async def write_log(
        self, ref: RunRef, record: LogRecord, *, target: LogTarget | None, writer: str
    ) -> LogTarget:
        annotations = {
            ANNOTATION_LOG_COMPLETE: str(record.complete).lower(),
            ANNOTATION_LOG_BYTES: str(record.total_bytes),
            ANNOTATION_LOG_TRUNCATED: str(record.truncated).lower(),
        }
        data = {LOG_KEY: record.text}
        name = log_configmap_name(ref.uid)
        try:
            if target is not None:
                try:
                    await self._update_log(ref, target, annotations, data, writer)
                    return target
                except HttpError as exc:
                    if exc.status not in (404, 409):  # 409: the uid precondition failed
                        raise
                # Ours was deleted or replaced under us: never write into the other one.
                return await self._create_log(ref, annotations, data, writer, displaced=target.name)
            try:
                return await self._create_log(ref, annotations, data, writer, displaced=None)
            except HttpError as exc:
                if exc.status != 409:
                    raise
            existing = json.loads(
                await self._call(
                    f"reading the log of {ref}",
                    lambda: self._send("GET", f"{self._configmaps(ref)}/{segment(name)}"),
                )
            )
            meta = existing.get("metadata") or {}
            ours = any(o.get("uid") == ref.uid for o in meta.get("ownerReferences") or [])
            if ours and (meta.get("annotations") or {}).get(ANNOTATION_LOG_WRITER) == writer:
                # Our own create, whose reply was lost: adopt it.
                adopted = LogTarget(name, str(meta.get("uid")))
                await self._update_log(ref, adopted, annotations, data, writer)
                return adopted
            return await self._create_log(ref, annotations, data, writer, displaced=name)
        except HttpError as exc:
            raise KubeApiError(
                f"writing the log ConfigMap of {ref} failed: {exc}", status=exc.status
            ) from None

    @staticmethod
    def _configmaps(ref: RunRef) -> str:
        return f"/api/v1/namespaces/{segment(ref.namespace)}/configmaps"

    async def _update_log(
        self,
        ref: RunRef,
        target: LogTarget,
        annotations: dict[str, str],
        data: dict[str, str],
        writer: str,
    ) -> None:
        # A PUT, not a patch: its metadata.uid is a precondition (409 when the name now
        # holds another object); a merge patch would refuse it as an immutable field (422),
        # like any other invalid write.
        metadata = {**self._log_metadata(ref, annotations, writer), "uid": target.uid}
        body = {"metadata": {**metadata, "name": target.name}, "data": data}
        await self._call(
            f"writing the log of {ref}",
            lambda: self._send("PUT", f"{self._configmaps(ref)}/{segment(target.name)}", body),
        )

    @staticmethod
    def _log_metadata(ref: RunRef, annotations: dict[str, str], writer: str) -> dict[str, Any]:
        return {
            "namespace": ref.namespace,
            "annotations": {**annotations, ANNOTATION_LOG_WRITER: writer},
            "labels": {
                "app.kubernetes.io/managed-by": "wt-operator",
                LABEL_RUN_UID: ref.uid,
                LABEL_RUN_NAME: ref.name[:63].rstrip("-_."),
            },
            # Deleted with its run by Kubernetes' garbage collector.
            "ownerReferences": [ref.owner_reference()],
        }

    async def _create_log(
        self,
        ref: RunRef,
        annotations: dict[str, str],
        data: dict[str, str],
        writer: str,
        *,
        displaced: str | None,
    ) -> LogTarget:
        """Create the log object: under the run's name, or (``displaced``) a generated one."""
        name = log_configmap_name(ref.uid)
        metadata = self._log_metadata(ref, annotations, writer)
        if displaced is None:
            metadata["name"] = name
        else:
            # A suffix nobody knows before it exists: it cannot be taken first.
            metadata["generateName"] = f"{name}-"
        body = {"metadata": metadata, "data": data}
        created = json.loads(
            await self._call(
                f"writing the log of {ref}",
                lambda: self._send("POST", self._configmaps(ref), body),
            )
        )
        meta = created.get("metadata") or {}
        return LogTarget(str(meta.get("name")), str(meta.get("uid")), displaced)

    async def delete_run(self, ref: RunRef) -> bool:
        options = {"preconditions": {"uid": ref.uid}, "propagationPolicy": "Background"}
        try:
            await self._call(
                f"deleting {ref}", lambda: self._send("DELETE", self._run_path(ref), options)
            )
        except HttpError as exc:
            if exc.status in (404, 409):  # gone, or a new run under the same name
                return False
            raise KubeApiError(f"deleting {ref} failed: {exc}", status=exc.status) from None
        return True

    async def peering_exists(self, namespace: str | None, name: str) -> bool:
        try:
            where = "" if namespace is None else f"namespaces/{segment(namespace)}/"
            kind = "clusterkopfpeerings" if namespace is None else "kopfpeerings"
            await self._send("GET", f"/apis/kopf.dev/v1/{where}{kind}/{segment(name)}")
        except HttpError as exc:
            if exc.status == 404:
                return False
            raise
        return True
