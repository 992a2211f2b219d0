"""`core/retention.py`: when a finished run is deleted, and never under a GitOps tool."""

from __future__ import annotations

from tests.unit.samples import NOW
from wt_operator.api import GITOPS_MARKERS
from wt_operator.core.retention import expiry, gitops_manager, ttl_for


def test_ttl_is_explicit_else_the_default_but_never_for_gitops_managed_runs() -> None:
    argo = {"annotations": {"argocd.argoproj.io/tracking-id": "app:wt.dev/WorkflowRun:ns/r"}}
    flux = {"labels": {"kustomize.toolkit.fluxcd.io/name": "runs"}}
    assert ttl_for({}, {}, 600) == 600
    assert ttl_for({}, argo, 600) is None and ttl_for({}, flux, 600) is None
    assert ttl_for({"ttlSecondsAfterFinished": 0}, flux, 600) == 0  # asked for explicitly
    assert ttl_for({}, {}, None) is None
    assert gitops_manager(argo) == "Argo CD" and gitops_manager({}) is None
    # Argo CD's tracking label counts, except on what Helm installed (Helm sets it too).
    label = {"labels": {"app.kubernetes.io/instance": "runs"}}
    helm = {**label, "annotations": {"meta.helm.sh/release-name": "runs"}}
    assert gitops_manager(label) == "Argo CD" and ttl_for({}, label, 600) is None
    assert gitops_manager(helm) is None and ttl_for({}, helm, 600) == 600
    assert len(GITOPS_MARKERS) >= 4
    assert expiry({"completionTime": "2026-11-28T12:00:00Z"}, 30) == NOW.timestamp() + 30
    assert expiry({}, 30) is None
