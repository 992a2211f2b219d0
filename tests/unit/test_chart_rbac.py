"""The chart's access rules: the operator's RBAC, users' aggregated roles, the network policy."""

from __future__ import annotations

from pathlib import Path

from tests.unit.chart import (
    EVERYTHING,
    NON_DEFAULT,
    by_kind,
    operator_roles,
    pod_of,
    render,
    verbs_on,
)


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
