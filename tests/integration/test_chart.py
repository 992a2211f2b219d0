"""The chart on the real API server: accepted, installable, and its RBAC exactly sufficient.

The operator process itself runs with a token of the chart's ServiceAccount
(TokenRequest API) and must reconcile runs to completion — and be refused
anything beyond the chart's rules.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.integration.conftest import local_spec
from wt_envtest.runs import Runs

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "wt-operator"


@pytest.fixture
def other_namespace(control_plane: Any) -> Iterator[str]:
    name = f"t-unwatched-{secrets.token_hex(3)}"
    control_plane.create_namespace(name)
    yield name
    control_plane.delete_namespace(name)


def _render(control_plane: Any, namespace: str, *sets: str) -> str:
    args = ["template", "wt", str(CHART), "--namespace", namespace]
    for s in sets:
        args += ["--set", s]
    return str(control_plane.helm(*args).stdout)


@pytest.mark.parametrize("mode", ["all-namespaces", "namespaced"])
def test_rendered_manifests_pass_server_side_validation(
    control_plane: Any, namespace: str, crds: Any, mode: str
) -> None:
    sets = (
        []
        if mode == "all-namespaces"
        else [
            "watch.allNamespaces=false",
            f"watch.namespaces={{{namespace}}}",
            "podDisruptionBudget.enabled=true",
            "workspace.image=x",
        ]
    )
    manifest = _render(control_plane, namespace, *sets)
    proc = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifest, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "deployment.apps/wt-wt-operator created (server dry run)" in proc.stdout


def test_invalid_values_make_helm_fail(control_plane: Any) -> None:
    proc = control_plane.helm(
        "template", "wt", str(CHART), "--set", "replicaCount=two", check=False
    )
    assert proc.returncode != 0
    assert "replicaCount" in proc.stderr


async def test_operator_with_the_charts_service_account_token_runs_and_is_fenced(
    control_plane: Any,
    namespace: str,
    other_namespace: str,
    crds: Any,
    start_operator: Any,
    kube_api: Any,
) -> None:
    proc = await asyncio.to_thread(
        control_plane.helm,
        "install",
        "wt",
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "crds.install=false",
        "--set",
        "watch.allNamespaces=false",
        "--set",
        f"watch.namespaces={{{namespace}}}",
        "--wait=false",
    )
    assert "STATUS: deployed" in proc.stdout
    # What the release created (no kubelet here, so the pod itself never starts).
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    sa = await core.read_namespaced_service_account("wt-wt-operator", namespace)
    deploy = await client.AppsV1Api(kube_api).read_namespaced_deployment(
        "wt-wt-operator", namespace
    )
    assert deploy.spec.template.spec.service_account_name == sa.metadata.name
    assert deploy.spec.template.spec.containers[0].args == [f"--namespace={namespace}"]
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

    for verb in ("list", "watch", "patch"):
        answer = as_operator("auth", "can-i", verb, "workflowruns.wt.dev", "-n", namespace)
        assert answer.stdout.strip() == "yes", verb
    listed = as_operator("get", "workflowruns.wt.dev", "-n", namespace, "-o", "name")
    assert listed.stdout.split() == ["workflowrun.wt.dev/rbac"], listed.stderr
    denied = [
        ("get", "secrets", "-n", other_namespace),
        ("get", "workflowruns.wt.dev", "-n", other_namespace),
        ("delete", "workflowruns.wt.dev", "-n", namespace),
        ("create", "pods", "-n", namespace),
        ("list", "secrets", "-n", namespace),
        ("update", "workflowruns.wt.dev", "-n", namespace),
    ]
    for verb_and_resource in denied:
        answer = as_operator("auth", "can-i", *verb_and_resource).stdout.strip()
        assert answer == "no", verb_and_resource
    forbidden = as_operator("get", "secrets", "-n", other_namespace)
    assert forbidden.returncode != 0
    assert "Forbidden" in forbidden.stderr
