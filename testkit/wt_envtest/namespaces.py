"""Namespaces per test: created labelled, and really deleted with no controller-manager.

Exists because kube-apiserver alone only marks a deleted namespace Terminating —
emptying it is the (absent) namespace controller's job. So the harness does that
job itself: strip finalizers from and delete every namespaced object, delete the
namespace, then finalize it so it is gone before the next test. Against an
external cluster its own controller finishes the work.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from wt_envtest.rest import ApiError

__all__ = ["create_namespace", "delete_namespace", "namespace_name"]

Api = Callable[..., Any]
"""``api(method, path, body=None, **kwargs) -> decoded JSON``, i.e. ``ControlPlane.api``."""


def namespace_name(test_name: str) -> str:
    """``t-<test>-<random>``: recognisable in ``kubectl get ns``, unique per run."""
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"t-{base[:48].rstrip('-')}-{secrets.token_hex(3)}"


def create_namespace(api: Api, name: str, labels: Mapping[str, str] | None = None) -> None:
    """Create a namespace labelled as owned by the test harness."""
    api(
        "POST",
        "/api/v1/namespaces",
        {
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": "wt-tests", **(labels or {})},
            }
        },
    )


def delete_namespace(api: Api, name: str, *, external: bool = False) -> None:
    """Delete a namespace and everything in it (see the module docstring)."""
    collections = [template.format(ns=name) for template in _namespaced_resources(api)]
    # ~50 resource types, nearly all empty: list them concurrently.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for _ in pool.map(lambda collection: _empty_collection(api, collection), collections):
            pass
    try:
        api("DELETE", f"/api/v1/namespaces/{name}")
    except ApiError as exc:
        if exc.status == 404:
            return
        raise
    if external:
        return
    try:
        ns = api("GET", f"/api/v1/namespaces/{name}")
    except ApiError as exc:
        if exc.status == 404:
            return
        raise
    ns["spec"]["finalizers"] = []
    api("PUT", f"/api/v1/namespaces/{name}/finalize", ns)
    # With no finalizers left, a second delete removes it from storage.
    with contextlib.suppress(ApiError):
        api("DELETE", f"/api/v1/namespaces/{name}")


def _namespaced_resources(api: Api) -> list[str]:
    """Collection paths (``/api/v1/…``, ``/apis/g/v/…``) of namespaced, deletable resources."""
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    paths: list[str] = []
    for root, prefix in (("/api", "/api"), ("/apis", "/apis")):
        doc = api("GET", root, accept=f"{accept},application/json")
        if doc.get("kind") != "APIGroupDiscoveryList":
            return _namespaced_resources_legacy(api)
        for group in doc.get("items", []):
            versions = group.get("versions") or []
            if not versions:
                continue
            version = versions[0]  # the preferred one
            gv = version["version"]
            if group.get("metadata", {}).get("name"):
                gv = f"{group['metadata']['name']}/{gv}"
            for res in version.get("resources", []):
                verbs = res.get("verbs") or []
                if res.get("scope") == "Namespaced" and "deletecollection" in verbs:
                    paths.append(f"{prefix}/{gv}/namespaces/{{ns}}/{res['resource']}")
    return paths


def _namespaced_resources_legacy(api: Api) -> list[str]:
    gvs = [("/api", v) for v in api("GET", "/api")["versions"]]
    for group in api("GET", "/apis")["groups"]:
        gvs.append(("/apis", group["preferredVersion"]["groupVersion"]))
    paths = []
    for prefix, gv in gvs:
        for res in api("GET", f"{prefix}/{gv}")["resources"]:
            if (
                res.get("namespaced")
                and "/" not in res["name"]
                and "deletecollection" in res.get("verbs", [])
            ):
                paths.append(f"{prefix}/{gv}/namespaces/{{ns}}/{res['name']}")
    return paths


def _empty_collection(api: Api, collection: str) -> None:
    """Delete every object of one namespaced collection, finalizers stripped first."""
    try:
        items = api("GET", collection)["items"]
    except ApiError as exc:
        if exc.status in (403, 404, 405):
            return
        raise
    if items:
        for item in items:
            if item["metadata"].get("finalizers"):
                with contextlib.suppress(ApiError):
                    api(
                        "PATCH",
                        f"{collection}/{item['metadata']['name']}",
                        {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
        with contextlib.suppress(ApiError):
            api(
                "DELETE",
                collection,
                {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
            )
