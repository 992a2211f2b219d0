"""The oldest Kubernetes minor the chart declares (Chart.yaml ``kubeVersion``) and the current
one, side by side: the CRD (schema, CEL rules, printer columns), the chart's objects with
both ValidatingAdmissionPolicies enforcing, and a Local run end to end.

The oldest minor's kube-apiserver comes from ``hack/envtest-oldest.sh`` (built once into
the cache, like the others) and runs as a second local control plane for this module;
etcd, kubectl and helm are the current ones. docs/chart.md says why that minor is the floor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client, config

from tests.integration.conftest import local_spec
from wt_envtest import ControlPlane, OperatorProcess, apply_crds
from wt_envtest.binaries import find_bin_dir
from wt_envtest.namespaces import namespace_name
from wt_envtest.runs import Runs

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "wt-operator"
CRD = ROOT / "crds" / "wt.dev_workflowruns.yaml"
OLDEST_SCRIPT = ROOT / "hack" / "envtest-oldest.sh"


def _floor() -> tuple[int, int]:
    """The minor Chart.yaml's kubeVersion starts at (``>=1.32.0-0`` → (1, 32))."""
    declared = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    major, minor = declared.removeprefix(">=").split(".")[:2]
    return int(major), int(minor)


@pytest.fixture(scope="module")
def oldest_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A local control plane of the oldest supported minor, for this module only (a second
    API server would hold its memory through the rest of the session for nothing).

    Always local (also when WT_TEST_KUBECONFIG names a cluster): the point is the version.
    """
    folder = find_bin_dir(OLDEST_SCRIPT, assets_env=False)
    plane = ControlPlane(bin_dir=folder, data_dir=tmp_path_factory.mktemp("oldest-plane"))
    try:
        yield plane.start(timeout=60)
    finally:
        plane.stop()


@pytest.fixture(scope="module", params=["current", "oldest"])
def plane(request: pytest.FixtureRequest, crd_paths: list[Path]) -> ControlPlane:
    """The session's control plane, then the oldest minor's, with the CRDs applied."""
    name = "control_plane" if request.param == "current" else "oldest_control_plane"
    chosen: ControlPlane = request.getfixturevalue(name)
    apply_crds(chosen, crd_paths)
    return chosen


@pytest.fixture
def ns(plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    name = namespace_name(request.node.name)
    plane.create_namespace(name)
    yield name
    plane.delete_namespace(name)


def _server_minor(plane: ControlPlane) -> tuple[int, int]:
    version = json.loads(plane.kubectl("version", "-o", "json").stdout)["serverVersion"]
    return int(version["major"]), int(version["minor"].rstrip("+"))


def _run(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


def _apply(plane: ControlPlane, ns: str, manifest: dict[str, Any]) -> Any:
    return plane.kubectl("apply", "-n", ns, "-f", "-", input=manifest, check=False)


def test_the_matrix_runs_the_declared_floor_and_the_current_minor(
    plane: ControlPlane, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["plane"] == "oldest":
        assert _server_minor(plane) == _floor()
    elif not plane.external:
        assert _server_minor(plane) == (1, 37)


def test_helm_refuses_a_cluster_older_than_the_floor(control_plane: ControlPlane) -> None:
    major, minor = _floor()
    below = control_plane.helm(
        "template", "wt", str(CHART), "--kube-version", f"{major}.{minor - 1}.9", check=False
    )
    assert below.returncode != 0
    assert f"kubeVersion: >={major}.{minor}.0-0" in below.stderr
    at = control_plane.helm("template", "wt", str(CHART), "--kube-version", f"{major}.{minor}.0")
    assert "kind: Deployment" in at.stdout


def test_an_image_volume_workspace_is_refused_below_1_33_by_name(
    control_plane: ControlPlane,
) -> None:
    # Degraded on purpose: on 1.32 the API server would drop the unknown volume source and
    # the operator would start with an empty workspace; helm says so instead.
    image = "workspace.volume.image.reference=registry.example/workflows:2"
    old = control_plane.helm(
        "template", "wt", str(CHART), "--kube-version", "1.32.13", "--set", image, check=False
    )
    assert old.returncode != 0
    assert "workspace.volume.image needs Kubernetes 1.33 or newer" in old.stderr
    new = control_plane.helm(
        "template", "wt", str(CHART), "--kube-version", "1.33.0", "--set", image
    )
    assert "reference: registry.example/workflows:2" in new.stdout


def test_the_crd_validates_and_prints_runs(plane: ControlPlane, ns: str) -> None:
    ok = _apply(plane, ns, _run("fine", local_spec()))
    assert ok.returncode == 0, ok.stderr
    refused = {
        "both": (
            {**local_spec({"a": 1}), "configFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            "set config or configFrom, not both",
        ),
        "batch": ({**local_spec(), "invoker": "CloudBatch"}, "cloudBatch (with image) is required"),
        "reserved": (  # a messageExpression, not a fixed message
            {**local_spec(), "env": [{"name": "LD_PRELOAD", "value": "/x.so"}]},
            "env name LD_PRELOAD is reserved",
        ),
        "schema": ({**local_spec(), "invoker": "Elsewhere"}, "Unsupported value"),
    }
    for case, (spec, message) in refused.items():
        proc = _apply(plane, ns, _run(case, spec))
        assert proc.returncode != 0, case
        assert message in proc.stderr, (case, proc.stderr)
    changed = plane.kubectl(
        "patch", "workflowrun", "fine", "-n", ns, "--type=merge",
        "-p", '{"spec": {"workflow": "other"}}', check=False,
    )  # fmt: skip
    assert changed.returncode != 0 and "spec is immutable" in changed.stderr

    crd = yaml.safe_load(CRD.read_text())
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    listed = plane.kubectl("get", "workflowruns", "-n", ns, "-o", "wide").stdout
    header = listed.splitlines()[0].split()
    assert header == ["NAME", *(c["name"].upper() for c in columns)]
    assert "Local" in listed.splitlines()[1]


def _until_refused(plane: ControlPlane, ns: str, manifest: dict[str, Any]) -> str:
    """A new policy takes effect once the API server's informer has seen it (~1 s)."""
    deadline = time.monotonic() + 30
    while True:
        proc = plane.kubectl(
            "apply", "--dry-run=server", "-n", ns, "-f", "-", input=manifest, check=False
        )
        if proc.returncode != 0 or time.monotonic() > deadline:
            assert proc.returncode != 0, f"never refused: {proc.stdout}"
            return str(proc.stderr)
        time.sleep(0.2)


def test_the_chart_installs_and_both_admission_policies_enforce(
    plane: ControlPlane, ns: str
) -> None:
    release = f"wt-{ns[-6:]}"
    plane.helm(
        "install", release, str(CHART), "--namespace", ns, "--wait=false",
        "--values", str(CHART / "ci" / "everything-values.yaml"),
        "--set", "crds.install=false", "--set", "watch.allNamespaces=false",
        "--set", f"watch.namespaces={{{ns}}}", "--set", "gitopsGuard.enabled=true",
    )  # fmt: skip
    try:
        image = {"image": "docker.io/evil/miner:latest"}
        evil = _run("miner", {**local_spec(), "invoker": "CloudBatch", "cloudBatch": image})
        err = _until_refused(plane, ns, evil)
        assert "spec.cloudBatch.image docker.io/evil/miner:latest is not allowed" in err
        managed = _run(
            "argo",
            {**local_spec(), "ttlSecondsAfterFinished": 60},
            labels={"argocd.argoproj.io/instance": "workflows"},
        )
        err = _until_refused(plane, ns, managed)
        assert "refused on a WorkflowRun managed by a GitOps tool" in err
        allowed = _run(
            "inside",
            {
                **local_spec(),
                "invoker": "CloudBatch",
                "cloudBatch": {"image": "us-docker.pkg.dev/acme/wf:1", "project": "acme-prod"},
            },
        )
        proc = _apply(plane, ns, allowed)
        assert proc.returncode == 0, proc.stderr
    finally:
        plane.helm("uninstall", release, "--namespace", ns, check=False)


async def test_a_local_run_succeeds_end_to_end(
    plane: ControlPlane, ns: str, workspace: Path, pixi_bin: Path, tmp_path: Path
) -> None:
    operator = OperatorProcess(
        kubeconfig=plane.kubeconfig,
        namespaces=[ns],
        workspace=workspace,
        log_path=tmp_path / "operator.log",
        path_prepend=[pixi_bin],
    ).start()
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(plane.kubeconfig), client_configuration=cfg)
    try:
        async with client.ApiClient(cfg) as api:
            runs = Runs(api, ns)
            await runs.create("e2e", local_spec({"stdout_lines": 2}))
            done = await runs.wait_for("e2e", ["Succeeded", "Failed"], timeout=90)
            assert done["status"]["phase"] == "Succeeded", operator.logs()[-6000:]
    finally:
        operator.stop(timeout=15)
