"""Where the API server is and how to authenticate: one answer for kopf and the runtime.

Exists so the operator logs in once, the way kopf does, and its own requests use
the same endpoint and credentials — refreshed whenever kopf logs in again (expired
token, rotated certificate). It also keeps the official client library out of the
operator process where it is not needed: kopf imports all of kubernetes_asyncio's
~1,000 model modules (about 60 MB) merely to recognise its objects, so unless the
kubeconfig needs a credential plugin (``exec``, ``auth-provider``), which only that
library can run, the operator logs in with kopf's own readers and tells Python the
library is absent (:func:`keep_client_library_out`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Credentials", "in_cluster", "keep_client_library_out", "kubeconfig_needs_plugins"]

_SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_CLIENT_LIBRARY = "kubernetes_asyncio"


def _kubeconfig_paths() -> list[Path]:
    raw = os.environ.get("KUBECONFIG")
    if raw:
        return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    default = Path("~/.kube/config").expanduser()
    return [default] if default.exists() else []


def in_cluster() -> bool:
    """A pod's ServiceAccount and no kubeconfig chosen: log in as the pod."""
    return not os.environ.get("KUBECONFIG") and os.path.exists(_SERVICE_ACCOUNT_TOKEN)


def kubeconfig_needs_plugins() -> bool:
    """Whether the current kubeconfig user runs a credential plugin (exec, auth-provider)."""
    if in_cluster():
        return False
    current: str | None = None
    contexts: dict[str, Any] = {}
    users: dict[str, Any] = {}
    for path in _kubeconfig_paths():
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        current = current or doc.get("current-context")
        for item in doc.get("contexts") or []:
            contexts.setdefault(item.get("name"), item.get("context") or {})
        for item in doc.get("users") or []:
            users.setdefault(item.get("name"), item.get("user") or {})
    context = contexts.get(current or "") or {}
    user = users.get(str(context.get("user") or ""), {})
    provider = user.get("auth-provider") or {}
    return bool(user.get("exec")) or bool(
        provider and not provider.get("config", {}).get("access-token")
    )


def keep_client_library_out() -> bool:
    """Make ``import kubernetes_asyncio`` fail in this process unless a plugin needs it.

    Call before kopf is imported. Returns whether the library was kept out.
    """
    if kubeconfig_needs_plugins() or _CLIENT_LIBRARY in sys.modules:
        return False
    sys.modules[_CLIENT_LIBRARY] = None  # type: ignore[assignment]
    return True


class Credentials:
    """The endpoint, TLS context and headers of the latest login; requests wait for one."""

    def __init__(self) -> None:
        self._ready = asyncio.Event()
        self.server = ""
        self.headers: Mapping[str, str] = {}
        self.ssl: ssl.SSLContext | None = None
        self.proxy: str | None = None
        self.generation = 0
        """Incremented by every login, so connection pools know to start afresh."""

    def update(self, info: Any) -> None:
        """Take the credentials of a kopf ``ConnectionInfo``."""
        self.server = str(info.server).rstrip("/")
        self.headers = dict(info.as_http_headers())
        self.ssl = info.as_ssl_context()
        self.proxy = info.proxy_url
        self.generation += 1
        self._ready.set()

    async def ready(self) -> None:
        await self._ready.wait()
