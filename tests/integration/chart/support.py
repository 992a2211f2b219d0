"""Where the chart is, and rendering it with the cluster's pinned helm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]  # tests/integration/chart/ → the repository
CHART = ROOT / "charts" / "wt-operator"
EVERYTHING = CHART / "ci" / "everything-values.yaml"


def _render(control_plane: Any, namespace: str, *sets: str, values: Path | None = None) -> str:
    # --include-crds: what helm install creates, kopf's CRDs from the chart's crds/ included.
    args = ["template", "wt", str(CHART), "--namespace", namespace, "--include-crds"]
    if values is not None:
        args += ["--values", str(values)]
    for s in sets:
        args += ["--set", s]
    return str(control_plane.helm(*args).stdout)


def _run_manifest(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }
