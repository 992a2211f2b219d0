"""The Helm chart rendered by the real helm binary: what an admin gets from each value.

Alert rules and dashboard queries are checked by the real Prometheus ``promtool``
(built once by hack/promtool.sh), and their metric names against the operator's own
registry, so renaming a series breaks these tests rather than an on-call's night.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from wt_operator.api import GITOPS_MARKERS
from wt_operator.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "wt-operator"
EVERYTHING = CHART / "ci" / "everything-values.yaml"
MONITORING = "monitoring.coreos.com/v1"
"""The Prometheus Operator's API: ServiceMonitor and PrometheusRule render only when it exists."""


@pytest.fixture(scope="module")
def helm(bin_dir: Path) -> Path:
    """The pinned helm binary (``bin_dir`` fails the test, never skips, when it is missing)."""
    return bin_dir / "helm"


@pytest.fixture(scope="module")
def promtool() -> Path:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "promtool.sh")], capture_output=True, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:  # never a skip: the alerts must be checked
        pytest.fail(f"hack/promtool.sh failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return Path(lines[-1])


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


@pytest.mark.parametrize(
    ("sets", "values"),
    [([], None), (NON_DEFAULT, None), ([], EVERYTHING)],
    ids=["default", "namespaced", "everything-on"],
)
def test_lint_is_clean(helm: Path, sets: list[str], values: Path | None) -> None:
    args = ["lint", str(CHART), "--strict"]
    if values is not None:
        args += ["--values", str(values)]
    for s in sets:
        args += ["--set", s]
    proc = run(helm, *args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_install_watches_all_namespaces_standalone(helm: Path) -> None:
    docs = render(helm)
    deploy = by_kind(docs, "Deployment")[0]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    # One replica: --standalone, so no peering object to wait for, and none rendered.
    assert container["args"] == ["--all-namespaces", "--standalone", "--log-format=full"]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"]["type"] == "Recreate"
    assert container["image"] == "ghcr.io/wt-dev/wt-operator:0.1.0"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    grace = deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    env = env_of(docs)
    assert grace > float(env["WT_OPERATOR_KILL_GRACE_SECONDS"] or 0)
    assert by_kind(docs, "ClusterRole")
    assert not by_kind(docs, "ClusterKopfPeering")
    assert not by_kind(docs, "KopfPeering")
    assert not by_kind(docs, "Role")
    assert not by_kind(docs, "ServiceMonitor")  # no Prometheus Operator API here
    assert not by_kind(docs, "PrometheusRule")
    assert not by_kind(docs, "PodDisruptionBudget")
    assert by_kind(docs, "NetworkPolicy")


def test_operator_settings_have_their_defaults(helm: Path) -> None:
    env = env_of(render(helm))
    assert env["WT_OPERATOR_LOCAL_ENABLED"] == "true"
    assert env["WT_OPERATOR_LOCAL_LAUNCHER"] == "prefix"  # works on the read-only root
    assert env["WT_OPERATOR_LOG_MAX_BYTES"] == "524288"
    assert env["WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS"] == "false"
    unset = {
        "WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED",
        "WT_OPERATOR_BATCH_ALLOWED_PROJECTS",
        "WT_OPERATOR_BATCH_ALLOWED_SERVICE_ACCOUNTS",
        "WT_OPERATOR_BATCH_ALLOWED_IMAGES",
        "GOOGLE_CLOUD_PROJECT",
    }
    assert not unset & env.keys()


def test_operator_settings_reach_the_operator(helm: Path) -> None:
    docs = render(
        helm,
        "operator.localEnabled=false",
        "operator.ttlSecondsAfterFinished=0",  # 0 is a setting ("delete at once"), not unset
        "operator.logFormat=json",
        "operator.logMaxBytes=1000000",
        "batch.allowedProjects={acme-prod,acme-*}",
        "batch.allowedServiceAccounts={*@acme.iam.gserviceaccount.com}",
        "batch.allowedImages={us-docker.pkg.dev/acme/*}",
        "batch.allowPlaintextSecrets=true",
        "extraArgs={--priority=7}",
    )
    env = env_of(docs)
    assert env["WT_OPERATOR_LOCAL_ENABLED"] == "false"
    assert env["WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED"] == "0"
    assert env["WT_OPERATOR_LOG_MAX_BYTES"] == "1000000"  # not 1e+06
    assert env["WT_OPERATOR_BATCH_ALLOWED_PROJECTS"] == "acme-prod,acme-*"
    assert env["WT_OPERATOR_BATCH_ALLOWED_SERVICE_ACCOUNTS"] == "*@acme.iam.gserviceaccount.com"
    assert env["WT_OPERATOR_BATCH_ALLOWED_IMAGES"] == "us-docker.pkg.dev/acme/*"
    assert env["WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS"] == "true"
    args = pod_of(docs)["containers"][0]["args"]
    assert "--log-format=json" in args
    assert args[-1] == "--priority=7"
    ttl = env_of(render(helm, "operator.ttlSecondsAfterFinished=86400"))
    assert ttl["WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED"] == "86400"


def test_image_digest_wins_over_the_tag(helm: Path) -> None:
    digest = "sha256:" + "ab" * 32
    pod = pod_of(render(helm, "image.tag=1.2.3", f"image.digest={digest}"))
    assert pod["containers"][0]["image"] == f"ghcr.io/wt-dev/wt-operator@{digest}"
    tagged = pod_of(render(helm, "image.tag=1.2.3"))
    assert tagged["containers"][0]["image"] == "ghcr.io/wt-dev/wt-operator:1.2.3"
    assert "digest" in render_error(helm, "image.digest=latest")


def test_pod_security_is_restricted(helm: Path) -> None:
    pod = pod_of(render(helm, "workspace.image=x"))
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


def test_security_contexts_can_be_overridden_for_openshift(helm: Path) -> None:
    pod = pod_of(
        render(
            helm,
            "workspace.image=x",
            # OpenShift's restricted SCC assigns the uid and group: drop the fixed ones.
            "podSecurityContext.runAsUser=null",
            "podSecurityContext.runAsGroup=null",
            "podSecurityContext.fsGroup=null",
            # The runner then needs both uids named, within the project's range.
            "runner.operatorUid=1000700000",
            "runner.runAsUser=1000700001",
            "securityContext.readOnlyRootFilesystem=false",
        )
    )
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for c in pod["containers"] + pod["initContainers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_pod_extras_are_rendered(helm: Path) -> None:
    docs = render(helm, values=EVERYTHING)
    pod = pod_of(docs)
    container = pod["containers"][0]
    assert {"name": "gcp-ca", "configMap": {"name": "corporate-ca"}} in pod["volumes"]
    assert {"name": "gcp-ca", "mountPath": "/etc/ssl/corporate", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert container["args"][-1] == "--priority=100"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    # Left out in the values: filled with a selector of this release's operator pods.
    assert spread["labelSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "wt-operator", "app.kubernetes.io/instance": "wt"}
    }
    assert pod["priorityClassName"] == "platform-critical"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_extra_objects_are_templated(helm: Path) -> None:
    docs = render(helm, values=EVERYTHING, release="acme")
    maps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    assert maps["acme-wt-operator-extra"]["data"] == {"release": "acme"}
    assert maps["acme-wt-operator-extra-string"]["data"] == {"chart": "wt-operator"}
    assert maps["acme-wt-operator-extra"]["metadata"]["namespace"] == "wt-system"


def test_umbrella_chart_keys_are_accepted_and_nothing_else(helm: Path) -> None:
    docs = render(helm, "global.imageRegistry=r.example", "enabled=false")
    assert by_kind(docs, "Deployment")  # accepted, and read by the parent, not here
    assert "additional properties 'unknown' not allowed" in render_error(helm, "unknown=1")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            ["workspace.volume.persistentVolumeClaim.claimName=workflows"],
            {"persistentVolumeClaim": {"claimName": "workflows"}},
        ),
        (
            [
                "workspace.volume.image.reference=registry.example/workflows:2",
                "workspace.volume.image.pullPolicy=IfNotPresent",
            ],
            {"image": {"reference": "registry.example/workflows:2", "pullPolicy": "IfNotPresent"}},
        ),
    ],
    ids=["pvc", "image-volume"],
)
def test_workspace_volume_is_mounted_as_the_workspace(
    helm: Path, source: list[str], expected: dict[str, Any]
) -> None:
    pod = pod_of(render(helm, "workspace.path=/srv/ws", *source))
    (volume,) = [v for v in pod["volumes"] if v["name"] == "workspace"]
    assert volume == {"name": "workspace", **expected}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["workspace"] == "/srv/ws"
    assert "initContainers" not in pod  # nothing copied: the volume is the workspace
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD"] == "/srv/ws"


def test_workspace_volume_and_image_together_are_refused(helm: Path) -> None:
    err = render_error(
        helm, "workspace.image=x", "workspace.volume.persistentVolumeClaim.claimName=w"
    )
    assert "workspace.image and workspace.volume both set" in err


def test_namespaced_mode_has_one_role_per_namespace_and_no_operator_cluster_role(
    helm: Path,
) -> None:
    docs = render(helm, *NON_DEFAULT)
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    # Only the aggregated view/edit/admin roles are cluster-wide (they grant nothing alone).
    assert sorted(r["metadata"]["name"] for r in by_kind(docs, "ClusterRole")) == [
        "wt-wt-operator-admin",
        "wt-wt-operator-edit",
        "wt-wt-operator-view",
    ]
    assert not by_kind(docs, "ClusterRoleBinding")
    args = pod_of(docs)["containers"][0]["args"]
    assert args == ["--namespace=team-a", "--namespace=team-b", "--log-format=full"]
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


def test_replicas_peer_through_a_normal_release_object(helm: Path) -> None:
    docs = render(helm, "replicaCount=2", "podDisruptionBudget.enabled=true")
    (peering,) = by_kind(docs, "ClusterKopfPeering")
    # Not a hook: installed, upgraded and uninstalled with the release like the rest.
    assert not any(k.startswith("helm.sh/hook") for k in peering["metadata"]["annotations"])
    assert "--standalone" not in pod_of(docs)["containers"][0]["args"]
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    # One replica: a PDB would block every drain, so none even when asked for.
    assert not by_kind(render(helm, "podDisruptionBudget.enabled=true"), "PodDisruptionBudget")


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


def test_operator_rbac_is_exactly_what_it_needs(helm: Path) -> None:
    for sets in ([], NON_DEFAULT):
        roles = operator_roles(render(helm, *sets))
        assert roles
        for role in roles:
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], rule
            # delete: retention; create/update configmaps: each Local run's log ConfigMap;
            # create runs: WorkflowSchedules (tests/unit/test_schedule_chart.py).
            assert verbs_on(role, "wt.dev", "workflowruns") == {
                "get",
                "list",
                "watch",
                "create",
                "patch",
                "delete",
            }
            assert verbs_on(role, "", "configmaps") == {"get", "create", "update"}
            assert verbs_on(role, "wt.dev", "workflowruns/status") == {"get", "patch"}
            assert verbs_on(role, "", "events") == {"create"}
            writes = {"delete", "deletecollection", "update", "create"}
            for rule in role["rules"]:
                if rule["resources"] not in (["workflowruns"], ["configmaps"], ["events"]):
                    assert not writes & set(rule["verbs"]), rule


def test_view_edit_admin_gain_workflowruns_through_aggregation(helm: Path) -> None:
    docs = render(helm)
    roles = {
        label.removeprefix("rbac.authorization.k8s.io/aggregate-to-"): role
        for role in by_kind(docs, "ClusterRole")
        for label, value in role["metadata"]["labels"].items()
        if label.startswith("rbac.authorization.k8s.io/aggregate-to-") and value == "true"
    }
    assert roles.keys() == {"view", "edit", "admin"}
    assert verbs_on(roles["view"], "wt.dev", "workflowruns") == {"get", "list", "watch"}
    for name in ("edit", "admin"):
        assert {"create", "delete", "get", "list", "watch"} <= verbs_on(
            roles[name], "wt.dev", "workflowruns"
        )
        assert not verbs_on(roles[name], "wt.dev", "workflowruns/status") - {"get", "list", "watch"}
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    assert operator_roles(docs) != by_kind(docs, "ClusterRole")
    off = render(helm, "rbac.aggregateToDefaultRoles=false")
    assert operator_roles(off) == by_kind(off, "ClusterRole")


def test_network_policy_admits_only_metrics_and_health(helm: Path) -> None:
    (policy,) = by_kind(render(helm), "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "wt"
    assert spec["policyTypes"] == ["Ingress"]  # egress open: workflows fetch their data
    (rule,) = spec["ingress"]
    assert sorted(p["port"] for p in rule["ports"]) == [8080, 9090]
    assert "from" not in rule
    assert "egress" not in spec

    (restricted,) = by_kind(render(helm, values=EVERYTHING), "NetworkPolicy")
    assert restricted["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for r in restricted["spec"]["egress"] for p in r["ports"]] == [53, 53, 443]
    (rule,) = restricted["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert not by_kind(render(helm, "networkPolicy.enabled=false"), "NetworkPolicy")


def test_service_monitor_labels_and_annotations(helm: Path) -> None:
    docs = render(helm, values=EVERYTHING, api_versions=(MONITORING,))
    (monitor,) = by_kind(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["metadata"]["annotations"] == {"example.com/owner": "platform"}
    (service,) = by_kind(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()


# --------------------------------------------------------------------------- alerts


def operator_metric_names() -> set[str]:
    """Every series name the operator exports, from its own registry."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\bwt_[a-z_]+\b", expr))


def prometheus_rule_groups(helm: Path, *sets: str) -> list[dict[str, Any]]:
    docs = render(helm, "metrics.prometheusRule.enabled=true", *sets, api_versions=(MONITORING,))
    (rule,) = by_kind(docs, "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def promtool_check(promtool: Path, groups: list[dict[str, Any]], path: Path) -> None:
    path.write_text(yaml.safe_dump({"groups": groups}))
    proc = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheus_rule_passes_promtool_check_rules(
    helm: Path, promtool: Path, tmp_path: Path
) -> None:
    groups = prometheus_rule_groups(helm)
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    assert alerts == {
        "WTWorkflowRunsFailing",
        "WTBackendErrors",
        "WTWorkflowRunsQueuedLong",
        "WTOperatorDown",
        "WTWorkflowScheduleNotSucceeding",  # tests/unit/test_schedule_chart.py
    }
    promtool_check(promtool, groups, tmp_path / "rules.yaml")
    exported = operator_metric_names()
    for rule in (r for g in groups for r in g["rules"]):
        assert metric_names_in(rule["expr"]) <= exported, rule["expr"]
    # The everything-on values (alert labels, an extra recording rule) pass as well.
    docs = render(helm, values=EVERYTHING, api_versions=(MONITORING,))
    (everything,) = by_kind(docs, "PrometheusRule")
    assert everything["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = [r for g in everything["spec"]["groups"] for r in g["rules"]]
    assert all(r["labels"]["team"] == "data" for r in rules if "alert" in r)
    assert rules[-1]["record"] == "wt:workflowruns_finished:rate5m"
    promtool_check(promtool, everything["spec"]["groups"], tmp_path / "everything.yaml")


def series(metric: str, values: str, job: str = "wt-wt-operator-metrics", **labels: str) -> Any:
    """One promtool input series of the release rendered by prometheus_rule_groups()."""
    pairs = {"job": job, "namespace": "wt-system", **labels}
    text = ",".join(f'{k}="{v}"' for k, v in pairs.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


RUNS, ERRORS = "wt_workflowruns_total", "wt_backend_errors_total"
ALERT_TESTS = {
    "rule_files": ["rules.yaml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "name": "an operator in trouble",
            "interval": "1m",
            "input_series": [
                # Local: every run fails.
                series(RUNS, "0+1x60", invoker="Local", outcome="Failed"),
                series(RUNS, "0x60", invoker="Local", outcome="Succeeded"),
                # CloudBatch: a third fails, and many are cancelled (deleted on purpose).
                series(RUNS, "0+1x60", invoker="CloudBatch", outcome="Failed"),
                series(RUNS, "0+2x60", invoker="CloudBatch", outcome="Succeeded"),
                series(RUNS, "0+9x60", invoker="CloudBatch", outcome="Cancelled"),
                series(ERRORS, "0+60x60", backend="CloudBatch"),
                series(ERRORS, "0+1x60", backend="Local"),
                series("wt_workflowruns_queued", "3x60"),
                series("up", "1x9 0x50"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "40m",
                    "alertname": "WTWorkflowRunsFailing",
                    "exp_alerts": [{"exp_labels": {"severity": "warning", "invoker": "Local"}}],
                },
                {
                    "eval_time": "40m",
                    "alertname": "WTBackendErrors",
                    "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "backend": "CloudBatch"}}
                    ],
                },
                {
                    "eval_time": "40m",
                    "alertname": "WTWorkflowRunsQueuedLong",
                    "exp_alerts": [{"exp_labels": {"severity": "warning"}}],
                },
                {
                    "eval_time": "40m",
                    "alertname": "WTOperatorDown",
                    "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                },
                # Queued for 20 minutes only: not yet.
                {"eval_time": "20m", "alertname": "WTWorkflowRunsQueuedLong", "exp_alerts": []},
            ],
        },
        {
            "name": "a healthy operator, and another release's troubles",
            "interval": "1m",
            "input_series": [
                series(RUNS, "0+5x60", invoker="Local", outcome="Succeeded"),
                series(RUNS, "0+1x60", invoker="Local", outcome="Failed"),
                series("wt_workflowruns_queued", "0 2 0 4 0x56"),
                series("up", "1x60"),
                series(RUNS, "0+9x60", job="other", invoker="Local", outcome="Failed"),
                series(ERRORS, "0+60x60", job="other", backend="Local"),
            ],
            "alert_rule_test": [
                {"eval_time": "40m", "alertname": name, "exp_alerts": []}
                for name in (
                    "WTWorkflowRunsFailing",
                    "WTBackendErrors",
                    "WTWorkflowRunsQueuedLong",
                    "WTOperatorDown",
                )
            ],
        },
    ],
}


def test_alerts_fire_when_they_should_and_only_then(
    helm: Path, promtool: Path, tmp_path: Path
) -> None:
    groups = prometheus_rule_groups(helm)
    for rule in (r for g in groups for r in g["rules"]):
        # promtool's unit tests compare annotations verbatim; their templates were already
        # checked by `promtool check rules`. Here only when an alert fires matters.
        rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(ALERT_TESTS))
    proc = subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- dashboard


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$job": ".+"}


def test_dashboard_configmap_shows_phases_outcomes_durations_queue_and_errors(
    helm: Path, promtool: Path, tmp_path: Path
) -> None:
    assert not by_kind(render(helm), "ConfigMap")
    docs = render(
        helm,
        "metrics.dashboard.enabled=true",
        "metrics.dashboard.namespace=grafana",
        "metrics.dashboard.annotations.grafana_folder=Workflows",
    )
    (cm,) = by_kind(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"  # the sidecar's convention
    assert cm["metadata"]["namespace"] == "grafana"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Workflows"}
    (raw,) = cm["data"].values()
    dashboard = json.loads(raw)
    panels = dashboard["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    titles = " ".join(p["title"] for p in panels)
    for shown in ("phase", "outcome", "duration", "Queued", "errors"):
        assert shown.lower() in titles.lower(), shown
    assert len({p["id"] for p in panels}) == len(panels)
    # Every query parses with Prometheus' own parser (as recording rules, Grafana's
    # variables replaced by what Grafana would put there) and names only real series.
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:panel_query_{i}", "expr": expr})
    promtool_check(promtool, [{"name": "dashboard", "rules": rules}], tmp_path / "dash.yaml")
    used = set().union(*(metric_names_in(e) for e in exprs))
    assert used == operator_metric_names()  # every series shown, and nothing invented

    relabelled = render(
        helm,
        "metrics.dashboard.enabled=true",
        "metrics.dashboard.labels.grafana_dashboard=null",
        "metrics.dashboard.labels.dashboards=wt",
    )
    labels = by_kind(relabelled, "ConfigMap")[0]["metadata"]["labels"]
    assert labels["dashboards"] == "wt" and "grafana_dashboard" not in labels


# --------------------------------------------------------------------------- admission


def policies(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in by_kind(docs, "ValidatingAdmissionPolicy")}


def test_batch_policy_only_when_a_list_is_set(helm: Path) -> None:
    assert "wt-wt-operator-batch-policy" not in policies(render(helm))
    docs = render(
        helm,
        "batch.allowedImages={us-docker.pkg.dev/acme/*,gcr.io/x.y/z}",
        "batch.allowedProjects={acme-prod}",
    )
    policy = policies(docs)["wt-wt-operator-batch-policy"]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["operations"] == ["CREATE"] and rule["resources"] == ["workflowruns"]
    checks = {v["message"].split(" ")[0]: v for v in policy["spec"]["validations"]}
    assert checks.keys() == {"spec.cloudBatch.image", "spec.cloudBatch.project"}
    image = checks["spec.cloudBatch.image"]
    # Globs become anchored regexes, every other character quoted.
    assert '["^us-docker\\\\.pkg\\\\.dev/acme/.*$","^gcr\\\\.io/x\\\\.y/z$"]' in image["expression"]
    assert "us-docker.pkg.dev/acme/*, gcr.io/x.y/z" in image["message"]
    (binding,) = by_kind(docs, "ValidatingAdmissionPolicyBinding")[:1]
    assert binding["spec"]["policyName"] == "wt-wt-operator-batch-policy"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"]  # all namespaces are watched


def test_workflows_get_a_results_volume_and_only_the_admins_variables(helm: Path) -> None:
    docs = render(helm)
    env = env_of(docs)
    assert env["WT_OPERATOR_LOCAL_RESULTS_ROOT"] == "/results"
    assert not {"WT_OPERATOR_ALLOWED_ENV", "WT_OPERATOR_WORKFLOW_ENV"} & env.keys()
    pod = pod_of(docs)
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["results"] == "/results"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["results"]["emptyDir"] == {"sizeLimit": "10Gi"}
    assert (
        not {"wt-wt-operator-env-policy", "wt-wt-operator-results-policy"} & policies(docs).keys()
    )
    docs = render(
        helm,
        "operator.localResultsRoot=",
        "operator.allowedEnv={APP_*,REGION}",
        "operator.workflowEnv.HTTPS_PROXY=http://proxy.infra:3128",
        "batch.allowedResultsBuckets={acme-*}",
    )
    env = env_of(docs)
    assert "WT_OPERATOR_LOCAL_RESULTS_ROOT" not in env
    assert "results" not in {v["name"] for v in pod_of(docs)["volumes"]}
    assert env["WT_OPERATOR_ALLOWED_ENV"] == "APP_*,REGION"
    assert json.loads(env["WT_OPERATOR_WORKFLOW_ENV"]) == {"HTTPS_PROXY": "http://proxy.infra:3128"}
    assert env["WT_OPERATOR_BATCH_ALLOWED_RESULTS_BUCKETS"] == "acme-*"
    (check,) = policies(docs)["wt-wt-operator-env-policy"]["spec"]["validations"]
    assert '["^APP_.*$","^REGION$"]' in check["expression"]
    (check,) = policies(docs)["wt-wt-operator-results-policy"]["spec"]["validations"]
    assert '["^acme-.*$"]' in check["expression"]


def test_cloud_run_policy_only_when_a_list_is_set(helm: Path) -> None:
    assert "wt-wt-operator-cloud-run-policy" not in policies(render(helm))
    docs = render(helm, "cloudRun.allowedJobs={wt-sandbox-*}", "cloudRun.allowedProjects={acme}")
    policy = policies(docs)["wt-wt-operator-cloud-run-policy"]
    checks = {v["message"].split(" ")[0]: v for v in policy["spec"]["validations"]}
    assert checks.keys() == {"spec.cloudRun.jobName", "spec.cloudRun.project"}
    job = checks["spec.cloudRun.jobName"]
    assert '["^wt-sandbox-.*$"]' in job["expression"]
    assert "cloudRun.allowedJobs of the wt-operator chart" in job["message"]
    env = env_of(docs)
    assert env["WT_OPERATOR_CLOUD_RUN_ALLOWED_JOBS"] == "wt-sandbox-*"
    assert env["WT_OPERATOR_CLOUD_RUN_ALLOWED_PROJECTS"] == "acme"
    bindings = [
        d
        for d in by_kind(docs, "ValidatingAdmissionPolicyBinding")
        if d["spec"]["policyName"] == "wt-wt-operator-cloud-run-policy"
    ]
    assert len(bindings) == 1


def test_gitops_guard_is_on_by_default_and_names_every_marker(helm: Path) -> None:
    policy = policies(render(helm))["wt-wt-operator-gitops-guard"]
    managed = policy["spec"]["variables"][0]["expression"]
    for _where, marker, _tool in GITOPS_MARKERS:  # the operator's list: both must agree
        assert f'"{marker}"' in managed
    # Each marker once, plus Argo CD's tracking label unless Helm installed the run.
    assert managed.count(".io/") == len(GITOPS_MARKERS) + 1
    assert '"app.kubernetes.io/instance" in object.metadata.labels' in managed
    assert '"meta.helm.sh/release-name" in object.metadata.annotations))' in managed
    (validation,) = policy["spec"]["validations"]
    assert "ttlSecondsAfterFinished" in validation["expression"]
    assert "run again" in validation["message"]
    # Left: the bounds on the operator's own writes (runs: tests/unit/test_schedule_chart.py).
    assert policies(render(helm, "gitopsGuard.enabled=false")).keys() == {
        "wt-wt-operator-operator-runs",
        "wt-wt-operator-configmap-writes",
    }


def test_policies_bind_to_the_watched_namespaces_only(helm: Path) -> None:
    docs = render(helm, *NON_DEFAULT, "batch.allowedProjects={p}")
    bindings = by_kind(docs, "ValidatingAdmissionPolicyBinding")
    # The ConfigMap guard is about the operator's identity, wherever it writes: unscoped.
    (guard,) = [b for b in bindings if b["metadata"]["name"].endswith("-configmap-writes")]
    assert "matchResources" not in guard["spec"]
    bindings.remove(guard)
    assert len(bindings) == 3  # batch policy, GitOps guard, the operator's own creates
    for binding in bindings:
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-a", "team-b"],
                }
            ]
        }


# --------------------------------------------------------------------------- names, CRDs, schema


@pytest.mark.parametrize(
    "sets",
    [[], ["nameOverride=" + "n" * 70], ["fullnameOverride=" + "f" * 70]],
    ids=["release", "nameOverride", "fullnameOverride"],
)
def test_names_are_truncated_to_63_characters(helm: Path, sets: list[str]) -> None:
    docs = render(
        helm,
        *sets,
        # Every object the chart names (extraObjects are named by their author).
        "replicaCount=2",
        "podDisruptionBudget.enabled=true",
        "batch.allowedProjects={p}",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.dashboard.enabled=true",
        release="r" * 53,  # helm's maximum release name
        api_versions=(MONITORING,),
    )
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
    # Cut before the suffix: the view/edit/admin roles, policies, ... stay distinct.
    for kind in {d["kind"] for d in docs}:
        same_kind = [
            (d["metadata"].get("namespace"), d["metadata"]["name"])
            for d in docs
            if d["kind"] == kind
        ]
        assert len(same_kind) == len(set(same_kind)), kind


def test_a_70_character_release_name_is_refused_by_helm(helm: Path) -> None:
    proc = run(helm, "template", "r" * 70, str(CHART), check=False)
    assert proc.returncode != 0
    assert "release name" in proc.stderr and "53" in proc.stderr


def test_crds_install_keep_and_opt_out(helm: Path) -> None:
    crds = by_kind(render(helm), "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in crds} == {
        "workflowruns.wt.dev",
        "workflowschedules.wt.dev",
    }
    # kopf's peering CRDs come from crds/: installed by helm before anything else.
    first = by_kind(render(helm, "replicaCount=2", include_crds=True), "CustomResourceDefinition")
    assert {c["metadata"]["name"] for c in first} == {
        "workflowruns.wt.dev",
        "workflowschedules.wt.dev",
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
    templated = {p.name: p for p in (CHART / "files" / "crds").glob("*.yaml")}
    first = {p.name: p for p in (CHART / "crds").glob("*.yaml")}
    fix = "run `make crds` (hack/sync_chart_crds.sh)"
    assert sorted([*templated, *first]) == sources, fix
    assert set(first) == {n for n in sources if n.startswith("kopf.")}
    for name, copy in {**templated, **first}.items():
        assert copy.read_text() == (ROOT / "crds" / name).read_text(), f"{copy} is stale: {fix}"


def test_every_value_is_documented_in_values_and_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    leaves: set[str] = set()

    def walk(node: dict[str, Any], vals: dict[str, Any], path: str) -> None:
        props = node["properties"]
        assert props.keys() == vals.keys(), path
        for key, sub in props.items():
            assert sub.get("description"), f"{path}{key} has no description"
            if sub.get("additionalProperties") is False:
                walk(sub, vals[key], f"{path}{key}.")
            else:
                leaves.add(f"{path}{key}")

    assert schema["additionalProperties"] is False
    walk(schema, values, "")
    # Each value in values.yaml has a `# --` doc comment right above it (helm-docs' style).
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    documented = set()
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        found = re.match(r"^(\s*)([A-Za-z_]\w*):", line)
        if found:
            indent = len(found[1])
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, found[2])]
            path = ".".join(k for _, k in stack)
            if path in leaves and any(c.startswith("# --") for c in comment):
                documented.add(path)
        comment = []
    assert leaves - documented == set()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicaCount=two", "replicaCount"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("operator.localLauncher=docker", "localLauncher"),
        ("operator.logFormat=xml", "logFormat"),
        ("watch.namespaces={Bad_Name}", "namespaces"),
        ("batch.allowedImages={a,b,a}", "allowedImages"),
        ("operator.allowedEnv={A.B}", "allowedEnv"),
        ("operator.workflowEnv.A-B=x", "invalid propertyName 'A-B'"),
        ("operator.localResultsRoot=results", "localResultsRoot"),
        ("networkPolicy.ingress=[]", "additional properties 'ingress' not allowed"),
        ("metrics.prometheusRule.runsFailing.for=soon", "for"),
    ],
)
def test_invalid_values_fail_with_a_schema_error(helm: Path, value: str, message: str) -> None:
    assert message in render_error(helm, value)


def test_the_peering_identity_is_the_pod_name(helm: Path) -> None:
    # kopf otherwise derives it from the user name, which an arbitrary uid (OpenShift) lacks.
    [pod_id] = [e for e in pod_of(render(helm))["containers"][0]["env"] if e["name"] == "POD_ID"]
    assert pod_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_the_configmap_guard_names_the_operators_service_account(helm: Path) -> None:
    policy = policies(render(helm))["wt-wt-operator-configmap-writes"]
    (condition,) = policy["spec"]["matchConditions"]
    assert "'system:serviceaccount:wt-system:wt-wt-operator'" in condition["expression"]
    (validation,) = policy["spec"]["validations"]
    assert ".startsWith('wt-log-')" in validation["expression"]
    assert "wt-wt-operator-configmap-writes" not in policies(
        render(helm, "rbac.limitConfigMapWrites=false")
    )
