"""The chart's RBAC on the real API server: users' roles, and an operator fenced to its rules.

The operator process itself runs with a token of the chart's ServiceAccount
(TokenRequest API) and must reconcile runs to completion — and be refused
anything beyond the chart's rules.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.integration.chart.support import _run_manifest
from tests.integration.conftest import local_spec
from wt_envtest.runs import Runs

pytestmark = pytest.mark.timeout(180)


def test_view_and_edit_roles_let_namespace_users_read_and_run_workflows(
    control_plane: Any, namespace: str, install: Any
) -> None:
    install()
    # kube-controller-manager aggregates the chart's roles into the built-in view/edit/admin
    # by their labels (observed in test_controllers.py); here, without it, bind the chart's
    # roles directly, as that aggregation makes a RoleBinding to view/edit do.
    for user, role in (("viewer", "view"), ("editor", "edit")):
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{user}-wt", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"wt-wt-operator-{role}",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
        control_plane.kubectl("apply", "-f", "-", input=binding)
        labels = json.loads(
            control_plane.kubectl(
                "get", "clusterrole", f"wt-wt-operator-{role}", "-o", "json"
            ).stdout
        )["metadata"]["labels"]
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true"

    def can(user: str, verb: str, *extra: str) -> bool:
        answer = control_plane.kubectl(
            "auth", "can-i", verb, "workflowruns.wt.dev", *extra, "-n", namespace,
            "--as", user, check=False,
        )  # fmt: skip
        return bool(answer.stdout.strip() == "yes")

    assert all(can("viewer", v) for v in ("get", "list", "watch"))
    assert not any(can("viewer", v) for v in ("create", "delete", "patch"))
    assert all(can("editor", v) for v in ("get", "list", "create", "delete"))
    assert not can("editor", "patch", "--subresource=status")  # status is the operator's
    created = control_plane.kubectl(
        "--as", "editor", "apply", "-n", namespace, "-f", "-",
        input=_run_manifest("by-editor", local_spec()),
    )  # fmt: skip
    assert "created" in created.stdout


async def test_operator_with_the_charts_service_account_token_runs_and_is_fenced(
    control_plane: Any,
    namespace: str,
    other_namespace: str,
    install: Any,
    start_operator: Any,
    kube_api: Any,
) -> None:
    # Two replicas: the peering object and its RBAC are part of what is proven sufficient.
    await asyncio.to_thread(install, "replicaCount=2")
    # What the release created (no kubelet here, so the pod itself never starts).
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    sa = await core.read_namespaced_service_account("wt-wt-operator", namespace)
    deploy = await client.AppsV1Api(kube_api).read_namespaced_deployment(
        "wt-wt-operator", namespace
    )
    assert deploy.spec.template.spec.service_account_name == sa.metadata.name
    assert deploy.spec.template.spec.containers[0].args == [
        f"--namespace={namespace}",
        "--log-format=full",
    ]
    role = await rbac.read_namespaced_role("wt-wt-operator", namespace)
    assert {res for rule in role.rules for res in rule.resources} >= {"workflowruns", "secrets"}
    binding = await rbac.read_namespaced_role_binding("wt-wt-operator", namespace)
    assert [(s.kind, s.name) for s in binding.subjects] == [("ServiceAccount", sa.metadata.name)]
    sa_kubeconfig = await asyncio.to_thread(
        control_plane.service_account_kubeconfig, namespace, "wt-wt-operator"
    )

    # Sufficient: the operator, on that token and with peering on, runs a Secret-using run.
    await core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "abc123"}}
    )
    start_operator(kubeconfig=sa_kubeconfig, standalone=False)
    runs = Runs(kube_api, namespace)
    await runs.create(
        "rbac",
        local_spec(
            env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
        ),
    )
    obj = await runs.wait_for("rbac", ["Succeeded", "Failed"], timeout=60)
    assert obj["status"]["phase"] == "Succeeded", obj["status"]

    # Not more than needed: the same token is refused outside the chart's rules.
    def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
        return control_plane.kubectl("--kubeconfig", str(sa_kubeconfig), *args, check=False)

    allowed = [
        ("list", "workflowruns.wt.dev"),
        ("watch", "workflowruns.wt.dev"),
        ("patch", "workflowruns.wt.dev"),
        ("delete", "workflowruns.wt.dev"),  # retention (TTL)
        ("create", "workflowruns.wt.dev"),  # a schedule's runs (bounded by a policy, below)
        ("patch", "workflowschedules.wt.dev"),
        ("patch", "workflowschedules.wt.dev/status"),
        ("create", "configmaps"),  # a Local run's log ConfigMap
        ("update", "configmaps"),
    ]
    for verb, resource in allowed:
        answer = as_operator("auth", "can-i", verb, resource, "-n", namespace)
        assert answer.stdout.strip() == "yes", (verb, resource)
    listed = as_operator("get", "workflowruns.wt.dev", "-n", namespace, "-o", "name")
    assert listed.stdout.split() == ["workflowrun.wt.dev/rbac"], listed.stderr
    denied = [
        ("get", "secrets", "-n", other_namespace),
        ("get", "workflowruns.wt.dev", "-n", other_namespace),
        ("create", "configmaps", "-n", other_namespace),
        ("delete", "configmaps", "-n", namespace),
        ("create", "pods", "-n", namespace),
        ("list", "secrets", "-n", namespace),
        ("update", "workflowruns.wt.dev", "-n", namespace),
        ("create", "workflowruns.wt.dev", "-n", other_namespace),
        ("delete", "workflowschedules.wt.dev", "-n", namespace),
    ]
    for verb_and_resource in denied:
        answer = as_operator("auth", "can-i", *verb_and_resource).stdout.strip()
        assert answer == "no", verb_and_resource
    forbidden = as_operator("get", "secrets", "-n", other_namespace)
    assert forbidden.returncode != 0
    assert "Forbidden" in forbidden.stderr
    # Its create right serves schedules only: a run not owned by one is refused.
    stray = {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": "stray"},
        "spec": local_spec(),
    }
    loose = await asyncio.to_thread(
        control_plane.kubectl,
        "--kubeconfig", str(sa_kubeconfig), "create", "-n", namespace, "-f", "-",
        input=json.dumps(stray), check=False,
    )  # fmt: skip
    assert loose.returncode != 0
    assert "only as a WorkflowSchedule's runs" in loose.stderr
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "0", "controller": True}
    stray["metadata"]["ownerReferences"] = [owner]
    adopted = await asyncio.to_thread(
        control_plane.kubectl,
        "--kubeconfig", str(sa_kubeconfig), "create", "-n", namespace, "-f", "-",
        input=json.dumps(stray), check=False,
    )  # fmt: skip
    assert "only as a WorkflowSchedule's runs" in adopted.stderr


async def test_the_operators_configmap_writes_are_limited_to_log_configmaps(
    control_plane: Any,
    namespace: str,
    other_namespace: str,
    install: Any,
    start_operator: Any,
    kube_api: Any,
) -> None:
    await asyncio.to_thread(install)
    sa = f"system:serviceaccount:{namespace}:wt-wt-operator"
    sa_kubeconfig = await asyncio.to_thread(
        control_plane.service_account_kubeconfig, namespace, "wt-wt-operator"
    )

    def as_operator(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return control_plane.kubectl("--kubeconfig", str(sa_kubeconfig), *args, check=False, **kw)

    # A namespaced install: Roles in the watched namespace only, no Secret access elsewhere.
    for where in (["-n", other_namespace], ["--all-namespaces"]):
        answer = control_plane.kubectl(
            "auth", "can-i", "get", "secrets", "--as", sa, *where, check=False
        )
        assert answer.stdout.strip() == "no", where
    assert (
        control_plane.kubectl(
            "auth", "can-i", "create", "configmaps", "--as", sa, "-n", namespace, check=False
        ).stdout.strip()
        == "yes"
    )

    # RBAC lets it create ConfigMaps; the admission policy only log ConfigMaps. The policy
    # takes effect a moment after it is created.
    refused = None
    for _ in range(100):
        refused = as_operator("create", "configmap", "app-settings", "-n", namespace)
        if refused.returncode != 0:
            break
        control_plane.kubectl("delete", "configmap", "app-settings", "-n", namespace)
        await asyncio.sleep(0.3)
    assert refused is not None and refused.returncode != 0
    assert "may write only log ConfigMaps (wt-log-*), not app-settings" in refused.stderr
    control_plane.kubectl("create", "configmap", "app-config", "-n", namespace)
    replaced = as_operator(
        "create",
        "configmap",
        "app-config",
        "-n",
        namespace,
        "--from-literal=k=v",
        "--dry-run=client",
        "-o",
        "yaml",
    )
    overwrite = as_operator("replace", "-f", "-", input=replaced.stdout)
    assert overwrite.returncode != 0 and "not app-config" in overwrite.stderr
    assert as_operator("create", "configmap", "wt-log-x", "-n", namespace).returncode == 0
    generated = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "wt-log-y-", "namespace": namespace},
    }
    made = as_operator("create", "-f", "-", input=json.dumps(generated))
    assert made.returncode == 0, made.stderr  # the name the server generates is checked

    # The operator on that token: a run in the watched namespace succeeds, its output
    # stored; one in an unwatched namespace is never touched.
    start_operator(kubeconfig=sa_kubeconfig)
    runs, elsewhere = Runs(kube_api, namespace), Runs(kube_api, other_namespace)
    await elsewhere.create("unwatched", local_spec({"stdout_lines": 2}))
    await runs.create("watched", local_spec({"stdout_lines": 2}))
    done = await runs.wait_for("watched", ["Succeeded", "Failed"], timeout=60)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["log"]["configMap"] == f"wt-log-{done['metadata']['uid']}"
    untouched = await elsewhere.get("unwatched") or {}
    assert "status" not in untouched or not untouched["status"].get("startTime")
    assert not untouched["metadata"].get("finalizers")
