"""The chart on the real API server: accepted, installable, its RBAC exactly sufficient,
its admission policies enforced; and scanned by checkov, a policy tool nobody here wrote.

The operator process itself runs with a token of the chart's ServiceAccount
(TokenRequest API) and must reconcile runs to completion — and be refused
anything beyond the chart's rules.

Every release a test installs is uninstalled afterwards: its aggregated ClusterRoles and
admission policies are cluster-scoped and would otherwise outlive the test namespace.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from tests.integration.conftest import cloud_run_spec, local_spec
from wt_envtest import start_control_plane
from wt_envtest.runs import Runs

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "wt-operator"
EVERYTHING = CHART / "ci" / "everything-values.yaml"
CHART_DOC = ROOT / "docs" / "chart.md"


@pytest.fixture
def other_namespace(control_plane: Any) -> Iterator[str]:
    name = f"t-unwatched-{secrets.token_hex(3)}"
    control_plane.create_namespace(name)
    yield name
    control_plane.delete_namespace(name)


@pytest.fixture
def install(control_plane: Any, namespace: str, crds: Any) -> Iterator[Callable[..., str]]:
    """``install(*sets)``: helm-install the chart into the test namespace, watching only it,
    with the CRDs the session already applied; uninstalled after the test."""
    releases: list[str] = []

    def install(*sets: str, release: str = "wt") -> str:
        args = ["install", release, str(CHART), "--namespace", namespace, "--wait=false"]
        for s in (
            "crds.install=false",
            "watch.allNamespaces=false",
            f"watch.namespaces={{{namespace}}}",
            *sets,
        ):
            args += ["--set", s]
        proc = control_plane.helm(*args)
        releases.append(release)
        assert "STATUS: deployed" in proc.stdout
        return str(proc.stdout)

    yield install
    for release in releases:
        control_plane.helm("uninstall", release, "--namespace", namespace, check=False)


def _render(control_plane: Any, namespace: str, *sets: str, values: Path | None = None) -> str:
    # --include-crds: what helm install creates, kopf's CRDs from the chart's crds/ included.
    args = ["template", "wt", str(CHART), "--namespace", namespace, "--include-crds"]
    if values is not None:
        args += ["--values", str(values)]
    for s in sets:
        args += ["--set", s]
    return str(control_plane.helm(*args).stdout)


def _split_crds(manifest: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    return crds, [d for d in docs if d["kind"] != "CustomResourceDefinition"]


@pytest.mark.parametrize("mode", ["all-namespaces", "namespaced", "everything-on"])
def test_rendered_manifests_pass_server_side_apply(
    control_plane: Any, namespace: str, crds: Any, mode: str
) -> None:
    sets: list[str] = []
    values = None
    if mode == "namespaced":
        sets = [
            "watch.allNamespaces=false",
            f"watch.namespaces={{{namespace}}}",
            "replicaCount=2",
            "podDisruptionBudget.enabled=true",
            "workspace.image=x",
            "batch.allowedImages={us-docker.pkg.dev/acme/*}",
        ]
    elif mode == "everything-on":
        values = EVERYTHING  # without --api-versions: no Prometheus Operator API here
    crd_docs, rest = _split_crds(_render(control_plane, namespace, *sets, values=values))
    # CRDs first, as helm installs them: really applied (they are the session's CRDs, so
    # this changes nothing but the chart's labels), then Established before their objects.
    applied = control_plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=wt-chart-test",
        "-f",
        "-",
        input={"apiVersion": "v1", "kind": "List", "items": crd_docs},
    )
    assert (
        applied.stdout.count("serverside-applied") == len(crd_docs) == 4
    )  # runs, schedules, 2 peerings
    names = [f"crd/{d['metadata']['name']}" for d in crd_docs]
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    # The rest server-side applied as a dry run: validated and admitted by the API server
    # (schemas, CEL of the admission policies, RBAC escalation checks), nothing persisted,
    # so the cluster-scoped objects cannot leak into other tests.
    proc = control_plane.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=wt-chart-test",
        "-n",
        namespace,
        "-f",
        "-",
        input={"apiVersion": "v1", "kind": "List", "items": rest},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("serverside-applied (server dry run)") == len(rest), proc.stdout
    kinds = {d["kind"] for d in rest}
    assert {"Deployment", "NetworkPolicy", "ValidatingAdmissionPolicy"} <= kinds
    if mode != "all-namespaces":
        assert {"PodDisruptionBudget", "ValidatingAdmissionPolicyBinding"} <= kinds
        assert kinds & {"KopfPeering", "ClusterKopfPeering"}


def test_invalid_values_make_helm_fail(control_plane: Any) -> None:
    proc = control_plane.helm(
        "template", "wt", str(CHART), "--set", "replicaCount=two", check=False
    )
    assert proc.returncode != 0
    assert "replicaCount" in proc.stderr


# --------------------------------------------------------------------------- admission


def _run_manifest(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


def _batch(name: str, **cloud_batch: str) -> dict[str, Any]:
    return _run_manifest(
        name,
        {
            "workflow": "sample >=1",
            "invoker": "CloudBatch",
            "resultsUrl": "gs://acme/runs/",
            "cloudBatch": {"image": "us-docker.pkg.dev/acme/wf/sample:1", **cloud_batch},
        },
    )


def _apply(control_plane: Any, namespace: str, manifest: dict[str, Any]) -> Any:
    """``kubectl apply`` as a user would: the admission answer is in stderr."""
    return control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=False)


def _until_refused(control_plane: Any, namespace: str, manifest: dict[str, Any]) -> str:
    """A new policy takes effect once the API server's informer has seen it (~1 s)."""
    deadline = time.monotonic() + 30
    while True:
        proc = control_plane.kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifest, check=False
        )
        if proc.returncode != 0 or time.monotonic() > deadline:
            assert proc.returncode != 0, f"never refused: {proc.stdout}"
            return str(proc.stderr)
        time.sleep(0.2)


def test_batch_policy_refuses_runs_outside_the_lists_at_apply_time(
    control_plane: Any, namespace: str, other_namespace: str, install: Any
) -> None:
    install(
        "batch.allowedProjects={acme-prod,acme-*-sandbox}",
        "batch.allowedServiceAccounts={*@acme-prod.iam.gserviceaccount.com}",
        "batch.allowedImages={us-docker.pkg.dev/acme/*}",
    )
    evil = _batch("miner", image="docker.io/evil/miner:latest")
    err = _until_refused(control_plane, namespace, evil)
    assert "ValidatingAdmissionPolicy" in err
    assert (
        "spec.cloudBatch.image docker.io/evil/miner:latest is not allowed in this cluster; "
        "allowed values (* matches anything): us-docker.pkg.dev/acme/*"
    ) in err

    refused = {
        # A dot is a dot, not "any character": the glob's other characters are quoted.
        "dots": (_batch("dots", image="us-dockerXpkg.dev/acme/wf:1"), "spec.cloudBatch.image"),
        "project": (_batch("project", project="acme-prod-2"), "spec.cloudBatch.project"),
        "glob-project": (_batch("sandbox", project="acme-sandbox"), "spec.cloudBatch.project"),
        "account": (
            _batch("account", serviceAccount="root@other.iam.gserviceaccount.com"),
            "spec.cloudBatch.serviceAccount root@other.iam.gserviceaccount.com is not allowed",
        ),
    }
    for case, (manifest, message) in refused.items():
        proc = _apply(control_plane, namespace, manifest)
        assert proc.returncode != 0, case
        assert message in proc.stderr, (case, proc.stderr)

    accepted = [
        _batch(
            "inside",
            project="acme-team1-sandbox",
            serviceAccount="runner@acme-prod.iam.gserviceaccount.com",
        ),
        _batch("defaults"),  # project and account left to the operator's settings
        _run_manifest("local", local_spec()),
    ]
    for manifest in accepted:
        proc = _apply(control_plane, namespace, manifest)
        assert proc.returncode == 0, proc.stderr
        assert "workflowrun.wt.dev/" in proc.stdout and "created" in proc.stdout
    # Scoped to the watched namespaces: elsewhere this release's policy does not apply.
    elsewhere = _apply(control_plane, other_namespace, evil)
    assert elsewhere.returncode == 0, elsewhere.stderr


def test_the_env_allow_list_refuses_other_names_at_apply_time(
    control_plane: Any, namespace: str, install: Any
) -> None:
    install("operator.allowedEnv={APP_*,REGION}")
    spec = local_spec(env=[{"name": "APP_MODE", "value": "x"}, {"name": "DEBUG", "value": "1"}])
    err = _until_refused(control_plane, namespace, _run_manifest("debug", spec))
    assert "spec.env name DEBUG is not allowed in this cluster" in err
    assert "APP_*, REGION" in err
    listed = local_spec(env=[{"name": "APP_MODE", "value": "x"}, {"name": "REGION", "value": "n"}])
    for manifest in (_run_manifest("listed", listed), _run_manifest("none", local_spec())):
        proc = _apply(control_plane, namespace, manifest)
        assert proc.returncode == 0, proc.stderr


def test_the_results_bucket_list_refuses_other_buckets_at_apply_time(
    control_plane: Any, namespace: str, install: Any
) -> None:
    install("batch.allowedResultsBuckets={acme-*}")
    exfil = _run_manifest("exfil", local_spec(resultsUrl="gs://attacker/loot/"))
    err = _until_refused(control_plane, namespace, exfil)
    assert "names a bucket that is not allowed in this cluster" in err and "acme-*" in err
    for name, url in (("inside", "gs://acme-results/r/"), ("local", "file:///results/r/")):
        proc = _apply(control_plane, namespace, _run_manifest(name, local_spec(resultsUrl=url)))
        assert proc.returncode == 0, proc.stderr


def test_cloud_run_policy_refuses_other_jobs_and_projects_at_apply_time(
    control_plane: Any, namespace: str, install: Any
) -> None:
    install("cloudRun.allowedJobs={wt-sandbox-*}", "cloudRun.allowedProjects={acme-prod}")

    def run(name: str, **cloud_run: str) -> dict[str, Any]:
        spec = cloud_run_spec()
        spec["cloudRun"].update(cloud_run)
        return _run_manifest(name, spec)

    err = _until_refused(control_plane, namespace, run("other-job", jobName="miner"))
    assert (
        "spec.cloudRun.jobName miner is not allowed in this cluster; "
        "allowed values (* matches anything): wt-sandbox-*"
    ) in err
    proc = _apply(
        control_plane, namespace, run("other-project", jobName="wt-sandbox-1", project="acme-dev")
    )
    assert proc.returncode != 0
    assert "spec.cloudRun.project acme-dev is not allowed" in proc.stderr
    accepted = _apply(
        control_plane, namespace, run("inside", jobName="wt-sandbox-gpu", project="acme-prod")
    )
    assert accepted.returncode == 0, accepted.stderr


GITOPS_MARKERS = [
    ("annotations", "argocd.argoproj.io/tracking-id", "app:wt.dev/WorkflowRun:ns/r"),
    ("labels", "app.kubernetes.io/instance", "workflows"),
    ("labels", "argocd.argoproj.io/instance", "workflows"),
    ("labels", "kustomize.toolkit.fluxcd.io/name", "workflows"),
    ("labels", "helm.toolkit.fluxcd.io/name", "workflows"),
]


def test_gitops_guard_refuses_a_ttl_on_runs_a_gitops_tool_manages(
    control_plane: Any, namespace: str, other_namespace: str, install: Any
) -> None:
    install()  # gitopsGuard.enabled is the default
    ttl = {**local_spec(), "ttlSecondsAfterFinished": 60}

    def managed(name: str, field: str, key: str, value: str, spec: Any) -> dict[str, Any]:
        return _run_manifest(name, spec, **{field: {key: value}})

    first = managed("argo-ttl", *GITOPS_MARKERS[0], ttl)
    err = _until_refused(control_plane, namespace, first)
    assert (
        "spec.ttlSecondsAfterFinished is refused on a WorkflowRun managed by a GitOps tool" in err
    )
    assert "would re-create it from Git, and it would run again" in err
    assert "Remove the field" in err
    for i, (field, key, value) in enumerate(GITOPS_MARKERS):
        proc = _apply(control_plane, namespace, managed(f"ttl-{i}", field, key, value, ttl))
        assert proc.returncode != 0, key
        assert "managed by a GitOps tool" in proc.stderr, key

    # Accepted: a managed run without a TTL, a TTL on a run no tool manages, and a TTL on a
    # run Helm installed (Helm sets app.kubernetes.io/instance too, and re-creates nothing).
    helm_installed = _run_manifest(
        "helm-ttl",
        ttl,
        labels={"app.kubernetes.io/instance": "workflows", "app.kubernetes.io/managed-by": "Helm"},
        annotations={"meta.helm.sh/release-name": "workflows"},
    )
    ok = [
        managed("argo-no-ttl", *GITOPS_MARKERS[1], local_spec()),
        _run_manifest("plain-ttl", ttl),
        helm_installed,
    ]
    for manifest in ok:
        proc = _apply(control_plane, namespace, manifest)
        assert proc.returncode == 0, proc.stderr
    # A tool adopting a run that has a TTL is refused too (labels can change, spec cannot).
    adopt = control_plane.kubectl(
        "label", "-n", namespace, "workflowrun.wt.dev/plain-ttl",
        "kustomize.toolkit.fluxcd.io/name=workflows", check=False,
    )  # fmt: skip
    assert adopt.returncode != 0
    assert "managed by a GitOps tool" in adopt.stderr
    relabel = control_plane.kubectl(
        "label", "-n", namespace, "workflowrun.wt.dev/argo-no-ttl", "team=data"
    )
    assert "labeled" in relabel.stdout
    # Other namespaces are not this release's business.
    assert _apply(control_plane, other_namespace, first).returncode == 0


# --------------------------------------------------------------------------- RBAC


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


def test_peering_object_is_installed_upgraded_and_uninstalled_with_the_release(
    control_plane: Any, namespace: str, install: Any
) -> None:
    install("replicaCount=2")

    def peering() -> dict[str, Any] | None:
        proc = control_plane.kubectl(
            "get", "kopfpeering", "wt-operator", "-n", namespace, "-o", "json", check=False
        )
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    before = peering()
    assert before is not None
    assert before["metadata"]["annotations"]["meta.helm.sh/release-name"] == "wt"
    control_plane.helm(
        "upgrade", "wt", str(CHART), "-n", namespace, "--reuse-values",
        "--set", "operator.verbose=true", "--wait=false",
    )  # fmt: skip
    after = peering()
    assert after is not None
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # kept, not re-created
    control_plane.helm("uninstall", "wt", "-n", namespace)
    assert peering() is None  # nothing left behind


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


# --------------------------------------------------------------------------- checkov


def _checkov() -> Path:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "checkov.sh")], capture_output=True, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:  # never a skip: the scan is part of the proof
        pytest.fail(f"hack/checkov.sh failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return Path(lines[-1])


def documented_exceptions() -> dict[str, str]:
    """The checkov checks docs/chart.md lists as not applying, with their reasons."""
    rows = re.findall(r"^\| `(CKV\w+)` \| [^|]+ \| ([^|]+) \|$", CHART_DOC.read_text(), re.M)
    return {check: reason.strip() for check, reason in rows}


@pytest.mark.timeout(300)
def test_checkov_finds_nothing_but_the_documented_exceptions(
    control_plane: Any, tmp_path: Path
) -> None:
    renders = {
        "default.yaml": _render(control_plane, "wt-system"),
        "everything.yaml": str(
            control_plane.helm(
                "template", "wt", str(CHART), "--namespace", "wt-system",
                "--values", str(EVERYTHING), "--api-versions", "monitoring.coreos.com/v1",
            ).stdout
        ),
    }  # fmt: skip
    for name, text in renders.items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        [
            str(_checkov()),
            "--directory", str(tmp_path),
            "--framework", "kubernetes",
            "--output", "json",
            "--quiet",
            "--compact",
            "--skip-download",  # no Bridgecrew platform: the bundled checks only
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: dict[str, set[str]] = {}
    passed = 0
    for rep in reports:
        passed += rep["summary"]["passed"]
        for check in rep["results"]["failed_checks"]:
            failed.setdefault(check["check_id"], set()).add(
                f"{check['file_path']}:{check['resource']}"
            )
    assert passed > 50, report  # it really scanned the manifests
    exceptions = documented_exceptions()
    assert exceptions, f"no exceptions table found in {CHART_DOC}"
    undocumented = {c: sorted(r) for c, r in failed.items() if c not in exceptions}
    assert not undocumented, f"checkov failures not listed in docs/chart.md: {undocumented}"
    stale = sorted(set(exceptions) - set(failed))
    assert not stale, f"docs/chart.md lists checks that no longer fail: {stale}"


def test_a_first_ha_install_into_an_empty_cluster_works(control_plane: Any, tmp_path: Path) -> None:
    # Helm resolves every kind of a release before creating anything: the peering object of
    # an HA release needs its CRD to exist first. A cluster of its own, so it has none yet.
    with start_control_plane(
        data_dir=tmp_path / "empty-cluster", bin_dir=control_plane.bin_dir
    ) as empty:
        proc = empty.helm(
            "install",
            "wt",
            str(CHART),
            "--namespace",
            "wt-system",
            "--create-namespace",
            "--wait=false",
            "--set",
            "replicaCount=2",
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        crds = empty.kubectl("get", "crd", "-o", "name").stdout.split()
        assert {
            "customresourcedefinition.apiextensions.k8s.io/workflowruns.wt.dev",
            "customresourcedefinition.apiextensions.k8s.io/clusterkopfpeerings.kopf.dev",
        } <= set(crds)
        peering = empty.kubectl("get", "clusterkopfpeering", "wt-operator", "-o", "name")
        assert peering.stdout.strip() == "clusterkopfpeering.kopf.dev/wt-operator"
