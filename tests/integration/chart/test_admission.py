"""The chart's admission policies, enforced by the real API server at apply time."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.chart.support import _run_manifest
from tests.integration.conftest import cloud_run_spec, local_spec

pytestmark = pytest.mark.timeout(180)


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
