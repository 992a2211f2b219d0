"""The chart's ValidatingAdmissionPolicies: what the API server refuses before the operator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.unit.chart import NON_DEFAULT, by_kind, env_of, pod_of, render
from wt_operator.api import GITOPS_MARKERS


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


def test_the_configmap_guard_names_the_operators_service_account(helm: Path) -> None:
    policy = policies(render(helm))["wt-wt-operator-configmap-writes"]
    (condition,) = policy["spec"]["matchConditions"]
    assert "'system:serviceaccount:wt-system:wt-wt-operator'" in condition["expression"]
    (validation,) = policy["spec"]["validations"]
    assert ".startsWith('wt-log-')" in validation["expression"]
    assert "wt-wt-operator-configmap-writes" not in policies(
        render(helm, "rbac.limitConfigMapWrites=false")
    )
