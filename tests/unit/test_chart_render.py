"""The Helm chart rendered by the real helm binary: what an admin gets from each value."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "wt-operator"


@pytest.fixture(scope="module")
def helm(bin_dir: Path) -> Path:
    """The pinned helm binary (``bin_dir`` fails the test, never skips, when it is missing)."""
    return bin_dir / "helm"


def run(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=check)


def render(helm: Path, *sets: str, release: str = "wt") -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", "wt-system"]
    for s in sets:
        args += ["--set", s]
    out = run(helm, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


NON_DEFAULT = [
    "watch.allNamespaces=false",
    "watch.namespaces={team-a,team-b}",
    "rbac.secretAccess=false",
    "podDisruptionBudget.enabled=true",
    "workspace.image=registry.example/workflows:1",
    "gcp.project=my-proj",
    "serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=op@p.iam.gserviceaccount.com",
]


@pytest.mark.parametrize("sets", [[], NON_DEFAULT], ids=["default", "namespaced"])
def test_lint_is_clean(helm: Path, sets: list[str]) -> None:
    args = ["lint", str(CHART), "--strict"]
    for s in sets:
        args += ["--set", s]
    proc = run(helm, *args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_install_watches_all_namespaces_with_a_cluster_role(helm: Path) -> None:
    docs = render(helm)
    deploy = by_kind(docs, "Deployment")[0]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--all-namespaces"]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"]["type"] == "Recreate"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    grace = deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert grace > float(env["WT_OPERATOR_KILL_GRACE_SECONDS"])
    assert by_kind(docs, "ClusterRole")
    assert by_kind(docs, "ClusterKopfPeering")
    assert not by_kind(docs, "Role")
    assert not by_kind(docs, "ServiceMonitor")  # no Prometheus Operator API here
    assert not by_kind(docs, "PodDisruptionBudget")


def test_pod_security_is_restricted(helm: Path) -> None:
    pod = by_kind(render(helm, "workspace.image=x"), "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/tmp", "/workspace"} <= mounts  # writable temp and the copied workspace
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["TMPDIR"] == env["HOME"] == "/tmp"  # nothing writes to the read-only root
    assert "resources" in pod["containers"][0]


def test_namespaced_mode_has_one_role_per_namespace_and_no_cluster_role(helm: Path) -> None:
    docs = render(helm, *NON_DEFAULT)
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert not by_kind(docs, "ClusterRole")
    args = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--namespace=team-a", "--namespace=team-b"]
    assert sorted(p["metadata"]["namespace"] for p in by_kind(docs, "KopfPeering")) == [
        "team-a",
        "team-b",
    ]
    resources = {res for r in roles for rule in r["rules"] for res in rule["resources"]}
    assert "secrets" not in resources  # rbac.secretAccess=false
    sa = by_kind(docs, "ServiceAccount")[0]
    assert sa["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "op@p.iam.gserviceaccount.com"
    }


def test_rbac_has_no_wildcards_and_no_write_access_beyond_patch(helm: Path) -> None:
    for sets in ([], NON_DEFAULT):
        for role in by_kind(render(helm, *sets), "ClusterRole") + by_kind(
            render(helm, *sets), "Role"
        ):
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], rule
                assert not {"delete", "deletecollection", "update", "*"} & set(rule["verbs"])


@pytest.mark.parametrize(
    "sets",
    [[], ["nameOverride=" + "n" * 70], ["fullnameOverride=" + "f" * 70]],
    ids=["release", "nameOverride", "fullnameOverride"],
)
def test_names_are_truncated_to_63_characters(helm: Path, sets: list[str]) -> None:
    docs = render(helm, *sets, release="r" * 53)  # helm's maximum release name
    names = [d["metadata"]["name"] for d in docs]
    names += [
        d["spec"]["template"]["spec"]["serviceAccountName"]
        for d in docs
        if d["kind"] == "Deployment"
    ]
    labels = [v for d in docs for v in (d["metadata"].get("labels") or {}).values()]
    assert max(len(n) for n in names) == 63  # truncated, not merely short
    assert all(len(v) <= 63 for v in labels), labels
    assert all(not n.endswith("-") for n in names)


def test_a_70_character_release_name_is_refused_by_helm(helm: Path) -> None:
    proc = run(helm, "template", "r" * 70, str(CHART), check=False)
    assert proc.returncode != 0
    assert "release name" in proc.stderr and "53" in proc.stderr


def test_crds_install_keep_and_opt_out(helm: Path) -> None:
    crds = by_kind(render(helm), "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in crds} == {
        "workflowruns.wt.dev",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    }
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)
    unkept = by_kind(render(helm, "crds.keep=false"), "CustomResourceDefinition")
    assert all(
        "helm.sh/resource-policy" not in (c["metadata"].get("annotations") or {}) for c in unkept
    )
    assert not by_kind(render(helm, "crds.install=false"), "CustomResourceDefinition")


def test_chart_crds_are_the_ones_in_crds() -> None:
    sources = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    copies = sorted(p.name for p in (CHART / "files" / "crds").glob("*.yaml"))
    fix = "run `make crds` (hack/sync_chart_crds.sh)"
    assert copies == sources, fix
    for name in sources:
        copy = CHART / "files" / "crds" / name
        assert copy.read_text() == (ROOT / "crds" / name).read_text(), f"{copy} is stale: {fix}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicaCount=two", "replicaCount"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("operator.localLauncher=docker", "localLauncher"),
        ("watch.namespaces={Bad_Name}", "namespaces"),
    ],
)
def test_invalid_values_fail_with_a_schema_error(helm: Path, value: str, message: str) -> None:
    proc = run(helm, "template", "wt", str(CHART), "--set", value, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
