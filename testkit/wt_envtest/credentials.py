"""The control plane's credentials: signing key, admin token, kubeconfigs, service accounts.

Exists so that every identity a test uses is made the way a real cluster makes
it — a static admin token in ``system:masters``, service-account tokens signed by
the API server and obtained through the TokenRequest API — and every client
(kubectl, helm, kubernetes_asyncio, the operator) gets it as a plain kubeconfig.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from wt_envtest.rest import ApiError

__all__ = [
    "ISSUER",
    "kubeconfig_text",
    "request_service_account_token",
    "write_admin_token",
    "write_service_account_key",
]

ISSUER = "https://kubernetes.default.svc.cluster.local"
"""Service-account token issuer and API audience (what an in-cluster client expects)."""


def write_service_account_key(path: Path) -> None:
    """An RSA signing key for service-account tokens (cryptography, else openssl)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        subprocess.run(
            ["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
        )
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def write_admin_token(path: Path) -> str:
    """A fresh admin token, written as kube-apiserver's ``--token-auth-file``; returns it."""
    token = secrets.token_hex(24)
    # token,user,uid,"group1,group2": the static admin identity.
    path.write_text(f'{token},wt-admin,wt-admin,"system:masters"\n')
    return token


def kubeconfig_text(server: str, ca_file: Path | None, user: dict[str, Any], namespace: str) -> str:
    """A one-context kubeconfig for ``server`` as ``user`` (e.g. ``{"token": ...}``)."""
    cluster: dict[str, Any] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "envtest", "cluster": cluster}],
            "users": [{"name": "user", "user": user}],
            "contexts": [
                {
                    "name": "envtest",
                    "context": {"cluster": "envtest", "user": "user", "namespace": namespace},
                }
            ],
            "current-context": "envtest",
        }
    )


def request_service_account_token(
    api: Callable[..., Any], namespace: str, sa_name: str, expiration_seconds: int
) -> str:
    """A bound token for ``system:serviceaccount:<namespace>:<sa_name>`` (SA created if missing).

    Comes from the TokenRequest API, exactly what a pod's projected token would hold.
    ``api`` is :meth:`ControlPlane.api <wt_envtest.control_plane.ControlPlane.api>`.
    """
    with contextlib.suppress(ApiError):  # 409: already there
        api(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"metadata": {"name": sa_name}},
        )
    token_request = api(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa_name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        },
    )
    return str(token_request["status"]["token"])
