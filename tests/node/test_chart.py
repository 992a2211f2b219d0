"""The chart on a real node: ``helm install`` gives a Ready operator pod whose containers
are laid out as the README says, and runs succeed through it — Local in the runner
container, CloudBatch against the Google Batch STAND-IN (``wt_testkit.batch``, GCP cannot
run here) listening where the pod reaches it. The pixi in the image is the image tier's
STAND-IN. Then what ``kubectl delete pod``, ``helm upgrade`` and ``helm uninstall`` do to
runs in flight (README "Operating it")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import batch_spec, local_spec
from tests.node.conftest import wait_for
from wt_envtest.node import GATEWAY, Node
from wt_testkit.batch import InProcessBatchServer

CHART = Path(__file__).resolve().parents[2] / "charts" / "wt-operator"
NS = "wt-system"
RUNS_NS = "runs"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def batch_server() -> Iterator[InProcessBatchServer]:
    """The Batch stand-in on every address: the pod reaches it at the bridge's gateway."""
    server = InProcessBatchServer(host="0.0.0.0", lifecycle=[("RUNNING", 1.0), ("SUCCEEDED", 2.0)])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _values(image: str, batch: InProcessBatchServer) -> list[str]:
    repository, _, tag = image.rpartition(":")
    env = [
        {"name": "BATCH_EMULATOR_HOST", "value": f"{GATEWAY}:{batch.port}"},
        {"name": "WT_OPERATOR_KILL_GRACE_SECONDS", "value": "2"},
    ]
    return [
        f"--set=image.repository={repository}",
        f"--set=image.tag={tag}",
        "--set=image.pullPolicy=Never",  # imported into the node, never pulled
        "--set=gcp.project=wt-test-project",
        "--set=operator.batchPollInterval=1",
        f"--set-json=extraEnv={json.dumps(env)}",
    ]


@pytest.fixture(scope="module")
def release(node: Node, node_image: str, batch_server: InProcessBatchServer) -> str:
    plane = node.plane
    plane.helm(
        "install", "wt", str(CHART), f"--namespace={NS}", "--create-namespace",
        *_values(node_image, batch_server), "--wait", "--timeout=180s",
    )  # fmt: skip
    plane.kubectl("create", "namespace", RUNS_NS)
    return node_image


def _operator_pod(node: Node) -> dict[str, Any]:
    pods = node.plane.api("GET", f"/api/v1/namespaces/{NS}/pods")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, [p["metadata"]["name"] for p in pods]
    return dict(live[0])


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _run(node: Node, name: str) -> dict[str, Any]:
    return dict(
        node.plane.api("GET", f"/apis/wt.dev/v1alpha1/namespaces/{RUNS_NS}/workflowruns/{name}")
    )


def _create_run(node: Node, name: str, spec: dict[str, Any]) -> None:
    node.plane.api(
        "POST",
        f"/apis/wt.dev/v1alpha1/namespaces/{RUNS_NS}/workflowruns",
        {"apiVersion": "wt.dev/v1alpha1", "kind": "WorkflowRun",
         "metadata": {"name": name}, "spec": spec},
    )  # fmt: skip


def _wait_phase(
    node: Node, name: str, phases: tuple[str, ...], timeout: float = 180
) -> dict[str, Any]:
    try:
        wait_for(
            f"run {name} to reach {phases}",
            lambda: _run(node, name).get("status", {}).get("phase") in phases,
            timeout=timeout,
        )
    except pytest.fail.Exception:
        logs = {
            c: node.plane.kubectl(
                "logs", f"--namespace={NS}", "deploy/wt-wt-operator", "-c", c, "--tail=40",
                check=False,
            ).stdout
            for c in ("operator", "runner")
        }  # fmt: skip
        pytest.fail(f"run {name}: {_run(node, name).get('status')}\n{logs}")
    return _run(node, name)


def test_helm_install_gives_a_ready_operator_pod_laid_out_as_the_readme_says(
    node: Node, release: str
) -> None:
    pod = _operator_pod(node)
    assert _ready(pod)
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    assert set(statuses) == {"operator", "runner"}
    assert all(c["ready"] and c["restartCount"] == 0 for c in statuses.values())
    name = pod["metadata"]["name"]

    def sh(container: str, script: str) -> str:
        return node.plane.kubectl(
            "exec", f"--namespace={NS}", name, "-c", container, "--", "sh", "-c", script
        ).stdout.strip()

    # The token only in the operator container; the runner has none to read.
    assert sh("operator", f"test -s {TOKEN_DIR}/token && echo present") == "present"
    assert sh("runner", f"test -e {TOKEN_DIR}/token && echo present || echo absent") == "absent"
    # Read-only root in both; each runs as its own uid.
    for container in ("operator", "runner"):
        assert sh(container, "touch /x 2>/dev/null && echo wrote || echo refused") == "refused"
    assert sh("operator", "id -u") == "10001"
    assert sh("runner", "id -u") == "10002"


def test_a_local_run_succeeds_in_the_runner_container(node: Node, release: str) -> None:
    _create_run(node, "local", local_spec({"sleep": 1}, resultsUrl="file:///results/local/"))
    run = _wait_phase(node, "local", ("Succeeded", "Failed"))
    assert run["status"]["phase"] == "Succeeded", run["status"]


def test_a_cloud_batch_run_succeeds_against_the_batch_stand_in(
    node: Node, release: str, batch_server: InProcessBatchServer
) -> None:
    _create_run(node, "batch", batch_spec())
    run = _wait_phase(node, "batch", ("Succeeded", "Failed"))
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert batch_server.created_jobs == 1


def _wait_operator_ready(node: Node, other_than: str = "") -> dict[str, Any]:
    def ready() -> bool:
        pods = node.plane.api("GET", f"/api/v1/namespaces/{NS}/pods")["items"]
        return any(
            p["metadata"]["name"] != other_than
            and not p["metadata"].get("deletionTimestamp")
            and _ready(p)
            for p in pods
        )

    wait_for("a Ready operator pod", ready, timeout=240, node=node)
    return _operator_pod(node)


def test_deleting_the_operator_pod_mid_run_fails_the_local_run_invoker_lost(
    node: Node, release: str
) -> None:
    """README "At most once": the run ends InvokerLost, never re-run; a new pod takes over."""
    _create_run(node, "cut", local_spec({"sleep": 300}, resultsUrl="file:///results/cut/"))
    _wait_phase(node, "cut", ("Running",))
    old = _operator_pod(node)["metadata"]["name"]
    node.plane.kubectl("delete", "pod", f"--namespace={NS}", old, "--wait=false")
    run = _wait_phase(node, "cut", ("Succeeded", "Failed"))
    assert (run["status"]["phase"], run["status"]["reason"]) == ("Failed", "InvokerLost")
    assert _wait_operator_ready(node, other_than=old)["metadata"]["name"] != old


def test_helm_upgrade_to_a_new_tag_loses_local_runs_and_tracks_batch_runs_on(
    node: Node, release: str, batch_server: InProcessBatchServer
) -> None:
    """README "Upgrade": the old pod records its Local runs InvokerLost before the new one
    starts; CloudBatch runs are tracked on by the new pod (one job, never a second)."""
    batch_server.lifecycle = ()  # jobs stay QUEUED until the test moves them
    created = batch_server.created_jobs
    _create_run(node, "up-local", local_spec({"sleep": 300}, resultsUrl="file:///results/u/"))
    _create_run(node, "up-batch", batch_spec())
    _wait_phase(node, "up-local", ("Running",))
    wait_for("the Batch job", lambda: batch_server.created_jobs == created + 1)
    old = _operator_pod(node)["metadata"]["name"]
    retagged = f"{release.rpartition(':')[0]}:upgraded"
    node.ctr("images", "tag", "--force", release, retagged)
    node.plane.helm(
        "upgrade", "wt", str(CHART), f"--namespace={NS}", "--reuse-values",
        f"--set=image.tag={retagged.rpartition(':')[2]}", "--wait", "--timeout=240s",
    )  # fmt: skip
    pod = _wait_operator_ready(node, other_than=old)
    assert {c["image"] for c in pod["spec"]["containers"]} == {retagged}
    run = _wait_phase(node, "up-local", ("Succeeded", "Failed"))
    assert (run["status"]["phase"], run["status"]["reason"]) == ("Failed", "InvokerLost")
    [job] = [j for j in batch_server.jobs if batch_server.job_state(j) == "QUEUED"]
    batch_server.set_job_state(job, "SUCCEEDED")
    run = _wait_phase(node, "up-batch", ("Succeeded", "Failed"))
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert batch_server.created_jobs == created + 1


def test_helm_uninstall_keeps_the_crds_and_runs_and_removes_the_rest(
    node: Node, release: str
) -> None:
    """README "Uninstall": the CRDs (and so all runs) stay; the operator's objects go."""
    before = node.plane.api("GET", f"/apis/wt.dev/v1alpha1/namespaces/{RUNS_NS}/workflowruns")
    names = sorted(r["metadata"]["name"] for r in before["items"])
    assert names  # the runs of the tests above
    node.plane.helm("uninstall", "wt", f"--namespace={NS}", "--wait", "--timeout=120s")
    after = node.plane.api("GET", f"/apis/wt.dev/v1alpha1/namespaces/{RUNS_NS}/workflowruns")
    assert sorted(r["metadata"]["name"] for r in after["items"]) == names
    left = node.plane.kubectl(
        "get", "deployments,serviceaccounts,roles,rolebindings,services,configmaps",
        f"--namespace={NS}", "-l", "app.kubernetes.io/instance=wt", "-o", "name",
    ).stdout.split()  # fmt: skip
    assert left == []
    cluster_left = node.plane.kubectl(
        "get", "clusterroles,clusterrolebindings,validatingadmissionpolicies",
        "-l", "app.kubernetes.io/instance=wt", "-o", "name",
    ).stdout.split()  # fmt: skip
    assert cluster_left == []
    wait_for("the operator pod to go", lambda: not node.plane.api(
        "GET", f"/api/v1/namespaces/{NS}/pods")["items"])  # fmt: skip
