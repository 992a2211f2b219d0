"""The plugin's Kubernetes calls, on kubernetes_asyncio (the official async client).

Not the operator's own HTTP layer, by design: the plugin runs on a user's machine
against any kubeconfig kubectl accepts, including credential plugins (``exec``,
``auth-provider``: GKE's, EKS's) that only the official library can run, and a
one-shot command does not feel the import and per-request cost the operator avoids.

Two jobs: pick the cluster, user and namespace the way kubectl does
(``--kubeconfig`` > ``KUBECONFIG`` > ``~/.kube/config``, ``--context``,
``-n`` > the context's namespace > ``default``; the in-cluster ServiceAccount
when there is no kubeconfig inside a pod), and make every API call through one
wrapper that turns failures into :class:`~wt_kubectl.errors.PluginError` lines.
Responses are read as plain JSON dicts (``_preload_content=False``): the
commands use a handful of fields and need no model classes.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from wt_kubectl.errors import ApiError, ConfigError, PluginError, api_error
from wt_operator.api import GROUP, PLURAL, VERSION

__all__ = ["Cluster", "connect"]

_RUNS = f"{PLURAL}.{GROUP}"
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)
"""Per request: a cluster that stops answering ends the command instead of hanging it."""
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _kubeconfig_paths(flag: str | None) -> str | None:
    """The kubeconfig path list kubectl would read, or None when none of it exists."""
    if flag:
        if not Path(flag).expanduser().is_file():
            raise ConfigError(f"kubeconfig {flag} does not exist: pass an existing --kubeconfig")
        return flag
    paths = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if any(Path(p).expanduser().is_file() for p in paths.split(os.pathsep) if p):
        return paths
    return None


def _pod_namespace() -> str | None:
    """Inside a pod without a kubeconfig: the ServiceAccount's namespace, as kubectl uses."""
    try:
        return _SA_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


async def connect(*, kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    """A :class:`Cluster` for the chosen kubeconfig/context, in the chosen namespace."""
    cfg = client.Configuration()
    paths = _kubeconfig_paths(kubeconfig)
    default_ns = "default"
    if paths is None:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            default_ns = _pod_namespace() or default_ns
        else:
            looked = os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ConfigError(
                f"no kubeconfig found (looked at {looked}): pass --kubeconfig FILE, set "
                "KUBECONFIG, or create one (e.g. gcloud container clusters get-credentials)"
            )
    else:
        try:
            loader = await config.load_kube_config(
                config_file=paths, context=context, client_configuration=cfg, persist_config=False
            )
        except (ConfigException, KeyError, TypeError, ValueError, OSError) as exc:
            which = f'context "{context}"' if context else "the current context"
            raise ConfigError(
                f"cannot use {which} of kubeconfig {paths}: {exc} "
                "(list contexts with: kubectl config get-contexts)"
            ) from None
        current = loader.current_context or {}
        default_ns = (current.get("context") or {}).get("namespace") or default_ns
    return Cluster(client.ApiClient(cfg), namespace or default_ns, cfg.host or "")


class Cluster:
    """One namespace of one cluster, as the commands need it."""

    def __init__(self, api: client.ApiClient, namespace: str, server: str = "") -> None:
        self.api = api
        self.namespace = namespace
        self.server = server
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    async def close(self) -> None:
        await self.api.close()

    async def _json(
        self,
        request: Awaitable[Any],
        *,
        verb: str,
        resource: str,
        name: str | None = None,
        namespace: str | None = None,
    ) -> Any:
        """Await a raw response and return its JSON body, or raise a PluginError."""
        ns = namespace or self.namespace
        try:
            resp = await request
            try:
                body = await resp.read()
            finally:
                resp.release()
        except ApiException as exc:
            raise api_error(
                exc.status or 0, exc.body, verb=verb, resource=resource, namespace=ns, name=name
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unreachable(exc) from None
        if not 200 <= resp.status <= 299:
            raise api_error(
                resp.status, body, verb=verb, resource=resource, namespace=ns, name=name
            )
        return json.loads(body)

    def _unreachable(self, exc: BaseException) -> PluginError:
        return ConfigError(
            f"cannot reach the API server at {self.server or 'the configured address'}: "
            f"{exc or type(exc).__name__} (is the cluster up? check --context/--kubeconfig)"
        )

    async def get_run(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await self._json(
            self.custom.get_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            ),
            verb="get",
            resource=_RUNS,
            name=name,
        )
        return obj

    async def find_run(self, name: str) -> dict[str, Any] | None:
        """The run, or None when it does not exist (deleted, say)."""
        try:
            return await self.get_run(name)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_run(self, body: dict[str, Any], namespace: str) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        obj: dict[str, Any] = await self._json(
            self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                body,
                # As kubectl apply/create do by default: a misspelled field (confg:) is
                # refused, not silently dropped, so a run never starts without its config.
                field_validation="Strict",
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            ),
            verb="create",
            resource=_RUNS,
            name=meta.get("name") or meta.get("generateName"),
            namespace=namespace,
        )
        return obj

    async def get_configmap(self, name: str) -> dict[str, Any] | None:
        """The ConfigMap, or None when it does not exist."""
        try:
            obj: dict[str, Any] = await self._json(
                self.core.read_namespaced_config_map(
                    name, self.namespace, _preload_content=False, _request_timeout=_TIMEOUT
                ),
                verb="get",
                resource="configmaps",
                name=name,
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    async def list_events(self, uid: str) -> list[dict[str, Any]]:
        """core/v1 Events about the object with this uid (what kubectl describe shows)."""
        rsp = await self._json(
            self.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.uid={uid}",
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            ),
            verb="list",
            resource="events",
        )
        return list(rsp.get("items") or [])

    async def watch_run(
        self, name: str, resource_version: str, *, timeout_seconds: int
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event type, object) for one run, from ``resource_version``, for a while.

        Ends when the server closes the watch after ``timeout_seconds``. Raises
        :class:`ApiException` / aiohttp errors untouched: a broken watch is not the
        user's problem, the caller falls back to polling.
        """
        async with watch.Watch() as stream:
            events = stream.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                _request_timeout=aiohttp.ClientTimeout(
                    sock_connect=15, sock_read=timeout_seconds + 30
                ),
            )
            async for event in events:
                yield str(event["type"]), dict(event["raw_object"])
