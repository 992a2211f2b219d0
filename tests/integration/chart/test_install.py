"""The chart on the real API server: accepted by server-side apply, installable, upgradable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.chart.support import CHART, EVERYTHING, _render
from wt_envtest import start_control_plane

pytestmark = pytest.mark.timeout(180)


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
