"""Small async helpers to create, read and await WorkflowRuns through the real API.

Exists so integration tests, chaos scenarios and benchmarks say what they mean
(create, wait for a phase, wait until gone, read Events), with failures that show
the run's last status. Built on kubernetes_asyncio (the official async client), not
on the operator's own HTTP layer, by design: the tests observe the operator through
a client it does not share, as a user's tools would, so a fault in the operator's
requests cannot hide itself from the tests that check them.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from wt_operator.api import API_VERSION, GROUP, KIND, PLURAL, VERSION

__all__ = ["Runs", "condition"]

_RETRIES_429 = 20
_MERGE_PATCH = "application/merge-patch+json"


async def _patient(call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, retried while the API server answers 429.

    A CRD that was just created or updated is served by storage that is still
    (re)initializing; the server says so with 429 and a Retry-After. kubectl and
    client-go wait and retry; kubernetes_asyncio does not, so this does it for them.
    """
    for attempt in range(_RETRIES_429):
        try:
            return await call(*args, **kwargs)
        except ApiException as exc:
            if exc.status != 429 or attempt == _RETRIES_429 - 1:
                raise
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            await asyncio.sleep(min(float(retry_after or 1), 2.0))
    raise AssertionError("unreachable")


class Runs:
    """WorkflowRuns of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    async def create(self, name: str, spec: Mapping[str, Any], **meta: Any) -> dict[str, Any]:
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, **meta},
            "spec": dict(spec),
        }
        result: dict[str, Any] = await _patient(
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            body,
        )
        return result

    async def get(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await _patient(
                self.custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    async def list(self) -> list[dict[str, Any]]:
        rsp = await _patient(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL
        )
        return list(rsp["items"])

    async def patch(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the run (its metadata or spec)."""
        result: dict[str, Any] = await _patient(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            dict(body),
            _content_type=_MERGE_PATCH,
        )
        return result

    async def patch_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the run's status, as the operator writes it (tests without one)."""
        result: dict[str, Any] = await _patient(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            {"status": dict(status)},
            _content_type=_MERGE_PATCH,
        )
        return result

    async def delete(self, name: str) -> None:
        await _patient(
            self.custom.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
        )

    async def wait_for(
        self, name: str, phases: Iterable[str], timeout: float = 60.0
    ) -> dict[str, Any]:
        """Poll until the run's phase is one of ``phases``; fail with its last status."""
        wanted = set(phases)
        deadline = time.monotonic() + timeout
        obj: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            obj = await self.get(name)
            if obj is not None and (obj.get("status") or {}).get("phase") in wanted:
                return obj
            await asyncio.sleep(0.1)
        status = (obj or {}).get("status")
        raise AssertionError(f"{name} not in {sorted(wanted)} after {timeout}s; status={status}")

    async def wait_gone(self, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.get(name) is None:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} still exists after {timeout}s: {await self.get(name)}")

    async def events(self, name: str | None = None) -> builtins.list[Any]:
        """Events of the namespace, or of the object called ``name``."""
        if name:
            selector = f"involvedObject.name={name}"
            rsp = await self.core.list_namespaced_event(self.namespace, field_selector=selector)
        else:
            rsp = await self.core.list_namespaced_event(self.namespace)
        return list(rsp.items)


def condition(obj: Mapping[str, Any], ctype: str) -> dict[str, Any]:
    """The condition of type ``ctype`` in a run's status; AssertionError when it has none."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    raise AssertionError(f"no {ctype} condition in {obj.get('status')}")
