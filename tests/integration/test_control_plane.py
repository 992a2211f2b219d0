"""The test control plane is a real Kubernetes API server, not a mock.

Each test checks a behaviour the operator relies on and a user of a real cluster
would notice: structural schemas, the status subresource, finalizers, watches,
RBAC with service-account tokens, and durability across an API server restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from wt_envtest import ControlPlane

GROUP, VERSION, PLURAL = "smoke.wt.dev", "v1", "widgets"
# kubernetes_asyncio sends custom-object patches as JSON Patch unless told otherwise.
MERGE = "application/merge-patch+json"

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string"},
                                    "observedGeneration": {"type": "integer"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widget_crd(control_plane: ControlPlane) -> Iterator[str]:
    """This module's own CRD, established before use and deleted afterwards."""
    name = WIDGET_CRD["metadata"]["name"]  # type: ignore[index]
    control_plane.kubectl("apply", "--server-side", "-f", "-", input=WIDGET_CRD)
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}")
    control_plane.wait_crd_served(name)
    yield name
    control_plane.kubectl("delete", "crd", name, "--wait=false")


@pytest.fixture
def widgets(kube_api: client.ApiClient, widget_crd: str) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def widget(name: str, size: int = 3, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name, **meta},
        "spec": {"size": size, "color": "red"},
    }


async def test_custom_object_is_served_and_listed_by_kubectl(
    widgets: client.CustomObjectsApi, control_plane: ControlPlane, namespace: str
) -> None:
    created = await widgets.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, widget("w1")
    )
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["uid"]
    listed = await asyncio.to_thread(
        control_plane.kubectl, "get", "widgets", "-n", namespace, "-o", "json"
    )
    items = json.loads(listed.stdout)["items"]
    assert [(i["metadata"]["name"], i["spec"]["size"]) for i in items] == [("w1", 3)]


async def test_status_subresource_leaves_generation_and_spec_change_bumps_it(
    widgets: client.CustomObjectsApi, namespace: str
) -> None:
    await widgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget("w"))
    patched = await widgets.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "w", {"status": {"phase": "Ready"}}, _content_type=MERGE
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["metadata"]["generation"] == 1

    # Through the main resource, status is ignored (that is what /status is for) ...
    ignored = await widgets.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "w", {"status": {"phase": "Hacked"}}, _content_type=MERGE
    )
    assert ignored["status"] == {"phase": "Ready"}
    assert ignored["metadata"]["generation"] == 1

    # ... while a spec change bumps the generation and keeps the status.
    changed = await widgets.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "w", {"spec": {"size": 4}}, _content_type=MERGE
    )
    assert changed["metadata"]["generation"] == 2
    assert changed["spec"]["size"] == 4
    assert changed["status"] == {"phase": "Ready"}


async def test_structural_schema_rejects_invalid_objects_and_prunes_unknown_fields(
    widgets: client.CustomObjectsApi, namespace: str
) -> None:
    with pytest.raises(ApiException) as too_big:
        await widgets.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, widget("big", size=11)
        )
    assert too_big.value.status == 422
    assert "spec.size" in too_big.value.body
    body = widget("green")
    body["spec"]["color"] = "green"
    with pytest.raises(ApiException) as bad_color:
        await widgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert bad_color.value.status == 422
    assert "spec.color" in bad_color.value.body

    body = widget("pruned")
    body["spec"]["unknown"] = "dropped"
    created = await widgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert "unknown" not in created["spec"]


async def test_finalizer_holds_deletion_until_removed(
    widgets: client.CustomObjectsApi, namespace: str
) -> None:
    await widgets.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, widget("held", finalizers=["smoke.wt.dev/hold"])
    )
    await widgets.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "held")
    still = await widgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "held")
    assert still["metadata"]["deletionTimestamp"]
    assert still["metadata"]["finalizers"] == ["smoke.wt.dev/hold"]

    await widgets.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "held",
        {"metadata": {"finalizers": None}},
        _content_type=MERGE,
    )
    with pytest.raises(ApiException) as gone:
        await widgets.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "held")
    assert gone.value.status == 404


async def test_watch_sees_added_modified_deleted(
    widgets: client.CustomObjectsApi, namespace: str
) -> None:
    start = await widgets.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    await widgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget("w"))
    await widgets.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "w", {"spec": {"size": 5}}, _content_type=MERGE
    )
    await widgets.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w")

    seen: list[tuple[str, int]] = []
    async with watch.Watch() as w:
        async for event in w.stream(
            widgets.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            resource_version=start["metadata"]["resourceVersion"],
            timeout_seconds=10,
        ):
            seen.append((event["type"], event["object"]["spec"]["size"]))
            if event["type"] == "DELETED":
                break
    assert seen == [("ADDED", 3), ("MODIFIED", 5), ("DELETED", 5)]


async def test_service_account_token_is_confined_to_its_role(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube_api)
    await rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    await rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    sa_config = await asyncio.to_thread(
        control_plane.service_account_kubeconfig, namespace, "reader"
    )

    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(sa_config), client_configuration=cfg)
    async with client.ApiClient(cfg) as sa_api:
        core = client.CoreV1Api(sa_api)
        listed = await core.list_namespaced_config_map(namespace)
        assert listed.items == []
        for forbidden in (
            core.list_namespaced_secret(namespace),
            core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}}),
            core.list_namespaced_config_map("default"),
        ):
            with pytest.raises(ApiException) as denied:
                await forbidden
            assert denied.value.status == 403

    whoami = await asyncio.to_thread(
        control_plane.kubectl, "--kubeconfig", sa_config, "auth", "whoami", "-o", "json"
    )
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:reader"


async def test_restart_apiserver_keeps_data(
    control_plane: ControlPlane, widgets: client.CustomObjectsApi, namespace: str
) -> None:
    before = await widgets.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, widget("durable")
    )
    await control_plane.restart_apiserver_async()

    # A fresh client: the old one's pooled connections died with the server.
    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(control_plane.kubeconfig), client_configuration=cfg
    )
    async with client.ApiClient(cfg) as api:
        after = await client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "durable"
        )
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"] == before["spec"]
    assert control_plane.startup_seconds < 15


def test_tools_and_metrics_reach_the_cluster(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert version["clientVersion"]["gitVersion"] == "v1.37.2"
    if not control_plane.external:  # an external cluster runs whatever it runs
        assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    releases = control_plane.helm("list", "-n", namespace, "-o", "json")
    assert json.loads(releases.stdout) == []
    assert "apiserver_request_total" in control_plane.metrics_text()
    assert control_plane.env()["KUBECONFIG"] == str(control_plane.kubeconfig)


def test_namespace_fixture_really_deletes_namespaces(control_plane: ControlPlane) -> None:
    control_plane.create_namespace("t-cleanup-probe")
    control_plane.kubectl("create", "configmap", "left-behind", "-n", "t-cleanup-probe")
    control_plane.delete_namespace("t-cleanup-probe")
    # The local control plane has no namespace controller: the fixture finishes the deletion
    # itself, so the namespace is gone at once. An external cluster's controller finishes
    # it on its own schedule.
    deadline = time.monotonic() + (120 if control_plane.external else 0)
    while True:
        gone = control_plane.kubectl("get", "namespace", "t-cleanup-probe", check=False)
        if gone.returncode != 0 or time.monotonic() >= deadline:
            break
        time.sleep(1)
    assert gone.returncode == 1
    assert "NotFound" in gone.stderr
    # Recreated with the same name, it starts empty: nothing was orphaned in etcd.
    control_plane.create_namespace("t-cleanup-probe")
    try:
        left = control_plane.kubectl("get", "configmaps", "-n", "t-cleanup-probe", "-o", "name")
        assert "left-behind" not in left.stdout
    finally:
        control_plane.delete_namespace("t-cleanup-probe")
