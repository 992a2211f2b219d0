"""Rendering the Helm chart with the real helm binary, for the chart's test modules."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "wt-operator"
EVERYTHING = CHART / "ci" / "everything-values.yaml"
MONITORING = "monitoring.coreos.com/v1"
"""The Prometheus Operator's API: ServiceMonitor and PrometheusRule render only when it exists."""


def run(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=check)


def render(
    helm: Path,
    *sets: str,
    release: str = "wt",
    values: Path | None = None,
    api_versions: tuple[str, ...] = (),
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", "wt-system"]
    if include_crds:
        args.append("--include-crds")
    if values is not None:
        args += ["--values", str(values)]
    for s in sets:
        args += ["--set", s]
    for api in api_versions:
        args += ["--api-versions", api]
    out = run(helm, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render_error(helm: Path, *sets: str) -> str:
    args = ["template", "wt", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = run(helm, *args, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    return spec


def env_of(docs: list[dict[str, Any]]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in pod_of(docs)["containers"][0]["env"]}


NON_DEFAULT = [
    "watch.allNamespaces=false",
    "watch.namespaces={team-a,team-b}",
    "rbac.secretAccess=false",
    "replicaCount=2",
    "podDisruptionBudget.enabled=true",
    "workspace.image=registry.example/workflows:1",
    "gcp.project=my-proj",
    "serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=op@p.iam.gserviceaccount.com",
]


def operator_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's own (Cluster)Roles, not the aggregated ones for users."""
    return [
        d
        for d in by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
        if not any(
            k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in d["metadata"]["labels"]
        )
    ]


def verbs_on(role: dict[str, Any], group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in role["rules"]
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def prometheus_rule_groups(helm: Path, *sets: str) -> list[dict[str, Any]]:
    docs = render(helm, "metrics.prometheusRule.enabled=true", *sets, api_versions=(MONITORING,))
    (rule,) = by_kind(docs, "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups
