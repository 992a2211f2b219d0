"""Promises kept by Kubernetes' own controllers, observed with them running.

The rest of the suite runs a bare API server; this module asks for the ``controllers``
fixture (kube-controller-manager's garbage collector, namespace controller and role
aggregation, plus kube-scheduler), so what the README and the chart promise about them
is seen happening rather than taken on trust: a deleted run's log ConfigMap is collected,
the built-in ``edit``/``view`` roles carry the chart's WorkflowRun permissions, and a
namespace deleted with active runs in it ends with nothing left running.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import batch_spec, create_tree, local_spec
from tests.integration.kubectl_plugin import kubectl_wt, plugin_env
from wt_envtest.runs import Runs
from wt_operator.api import log_configmap_name
from wt_testkit.workflows import process_is_alive, wait_process_gone

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("controllers")]
CHART = Path(__file__).resolve().parents[2] / "charts" / "wt-operator"


def _exists(control_plane: Any, *what: str) -> bool:
    return bool(control_plane.kubectl("get", *what, check=False).returncode == 0)


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` (run in a thread) until true or ``timeout``; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(predicate):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.5)


async def test_deleting_a_finished_run_garbage_collects_its_log(
    start_operator: Any, runs: Runs, control_plane: Any, namespace: str
) -> None:
    start_operator()
    created = await runs.create("done", local_spec({"stdout_lines": 3}))
    await runs.wait_for("done", ["Succeeded"])
    log = ("configmap", log_configmap_name(created["metadata"]["uid"]), "-n", namespace)
    assert await _until(lambda: _exists(control_plane, *log), 10), "no log ConfigMap"
    await runs.delete("done")
    await runs.wait_gone("done")
    gone = await _until(lambda: not _exists(control_plane, *log), 30)
    assert gone, "the log ConfigMap outlived its run (no owner the garbage collector follows)"


@pytest.fixture
def chart_roles(control_plane: Any, namespace: str) -> Iterator[None]:
    """The chart installed into the test namespace (its aggregated ClusterRoles with it)."""
    release = "wt-roles"
    control_plane.helm(
        "install", release, str(CHART), "--namespace", namespace, "--wait=false",
        "--set", "crds.install=false", "--set", "watch.allNamespaces=false",
        "--set", f"watch.namespaces={{{namespace}}}",
    )  # fmt: skip
    yield
    control_plane.helm("uninstall", release, "--namespace", namespace, check=False)


def _bind(control_plane: Any, namespace: str, user: str, cluster_role: str) -> None:
    control_plane.kubectl(
        "create", "rolebinding", f"{user}-{cluster_role}", "-n", namespace,
        f"--clusterrole={cluster_role}", f"--user={user}",
    )  # fmt: skip


@pytest.mark.usefixtures("chart_roles")
async def test_the_builtin_edit_and_view_roles_run_and_read_workflows(
    start_operator: Any, runs: Runs, control_plane: Any, namespace: str
) -> None:
    # Bound to the built-in roles only, never to the chart's: the aggregation controller
    # is what gives them WorkflowRun permissions.
    _bind(control_plane, namespace, "editor", "edit")
    _bind(control_plane, namespace, "viewer", "view")

    def can(user: str, verb: str) -> bool:
        answer = control_plane.kubectl(
            "auth", "can-i", verb, "workflowruns.wt.dev", "-n", namespace, "--as", user,
            check=False,
        )  # fmt: skip
        return bool(answer.stdout.strip() == "yes")

    assert await _until(lambda: can("editor", "create"), 30), "edit never got WorkflowRuns"
    start_operator()
    manifest = {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": "by-editor", "namespace": namespace},
        "spec": local_spec({"stdout_lines": 2}),
    }
    created = control_plane.kubectl("--as", "editor", "create", "-f", "-", input=manifest)
    assert "created" in created.stdout
    done = await runs.wait_for("by-editor", ["Succeeded"])

    assert await _until(lambda: can("viewer", "list"), 30), "view never got WorkflowRuns"
    seen = control_plane.kubectl("--as", "viewer", "get", "workflowrun", "by-editor", "-n",
                                 namespace, "-o", "json")  # fmt: skip
    assert json.loads(seen.stdout)["status"]["phase"] == "Succeeded"
    log = log_configmap_name(done["metadata"]["uid"])
    assert await _until(lambda: _exists(control_plane, "configmap", log, "-n", namespace), 10)
    # What a user bound to view types: kubectl wt logs, with a ServiceAccount's own token.
    reader = control_plane.service_account_kubeconfig(namespace, "reader")
    control_plane.kubectl(
        "create", "rolebinding", "reader-view", "-n", namespace, "--clusterrole=view",
        f"--serviceaccount={namespace}:reader",
    )  # fmt: skip
    env = {**plugin_env(control_plane), "KUBECONFIG": str(reader)}
    logs = await kubectl_wt(control_plane, "logs", "by-editor", "-n", namespace, env=env)
    assert logs.returncode == 0, logs.stderr
    assert "stdout line 2" in logs.stdout
    refused = control_plane.kubectl(
        "--as", "viewer", "create", "-f", "-", check=False,
        input={**manifest, "metadata": {"name": "by-viewer", "namespace": namespace}},
    )  # fmt: skip
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()


async def test_a_namespace_deleted_with_active_runs_ends_with_nothing_left_running(
    start_operator: Any,
    runs: Runs,
    control_plane: Any,
    namespace: str,
    batch_server: Any,
    tmp_path: Path,
) -> None:
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    grandchild = await create_tree(runs, "local", tmp_path / "grandchild.pid")
    await runs.create("batch", batch_spec())
    submitted = await runs.wait_for("batch", ["Submitted", "Running"])
    job_name = submitted["status"]["cloudBatch"]["jobName"]
    assert job_name in batch_server.jobs

    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")
    # The namespace controller deletes the runs, waits for the operator to release their
    # finalizers, then removes the namespace: gone means every finalizer was released.
    gone = await _until(lambda: not _exists(control_plane, "namespace", namespace), 90)
    assert gone, control_plane.kubectl("get", "namespace", namespace, "-o", "yaml").stdout
    await wait_process_gone(grandchild)
    assert not process_is_alive(grandchild)
    assert job_name not in batch_server.jobs  # not left running (and billing) in Batch
