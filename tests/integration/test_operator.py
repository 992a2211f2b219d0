"""The real operator process reconciling WorkflowRuns on the real API server.

Each test starts ``wt-operator --namespace <its namespace>`` and drives runs
through ``kubectl``/the API, asserting what a platform engineer would see.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.conftest import batch_spec, create_tree, local_spec, wait_file
from wt_envtest.processes import tcp_connections_to
from wt_envtest.runs import Runs, condition
from wt_testkit.workflows import process_is_alive, wait_process_gone

pytestmark = pytest.mark.timeout(180)


async def test_local_run_succeeds_and_kubectl_wait_returns(
    start_operator: Any, runs: Runs, control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    start_operator()
    results = tmp_path / "results dir"
    await runs.create(
        "ok", local_spec({"message": "hello"}, resultsUrl=f"file://{results}".replace(" ", "%20"))
    )
    proc = await asyncio.to_thread(
        control_plane.kubectl,
        "wait",
        "--for=condition=Succeeded",
        "wfr/ok",
        "-n",
        namespace,
        "--timeout=60s",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    obj = await runs.get("ok")
    assert obj is not None
    status = obj["status"]
    assert status["phase"] == "Succeeded"
    assert status["exitCode"] == 0
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["workflowRunId"] == obj["metadata"]["uid"]
    assert status["startTime"] <= status["completionTime"]
    assert condition(obj, "Ready")["status"] == "True"
    assert condition(obj, "Reconciling")["status"] == "False"
    assert results.is_dir()  # file:// results dir created, percent-decoded
    # The finalizer is released right after the run is terminal: deletion is then immediate.
    for _ in range(50):
        obj = await runs.get("ok")
        assert obj is not None
        if "wt.dev/finalizer" not in (obj["metadata"].get("finalizers") or []):
            break
        await asyncio.sleep(0.1)
    assert "wt.dev/finalizer" not in (obj["metadata"].get("finalizers") or [])
    reasons: list[str] = []
    for _ in range(50):  # Events are posted right after each transition
        reasons = [e.reason for e in await runs.events("ok")]
        if "Succeeded" in reasons:
            break
        await asyncio.sleep(0.1)
    assert "Running" in reasons
    assert "Succeeded" in reasons
    table = await asyncio.to_thread(control_plane.kubectl, "get", "wfr", "-n", namespace)
    assert "Succeeded" in table.stdout
    assert "wt-sample-workflow" in table.stdout


async def test_failure_records_exit_code_and_log_tail(start_operator: Any, runs: Runs) -> None:
    start_operator()
    await runs.create("bad", local_spec({"exit_code": 3, "stdout_lines": 5}))
    obj = await runs.wait_for("bad", ["Failed"])
    status = obj["status"]
    assert status["exitCode"] == 3
    assert status["result"] == "3"
    assert "exited with 3" in status["message"]
    assert "stdout line 5" in status["message"]  # the tail of the output
    assert condition(obj, "Succeeded")["reason"] == "Failed"
    assert condition(obj, "Stalled")["status"] == "True"


async def test_deadline_kills_the_whole_process_tree(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    start_operator()
    grandchild = await create_tree(
        runs, "slow", tmp_path / "grandchild.pid", activeDeadlineSeconds=3
    )
    assert process_is_alive(grandchild)
    obj = await runs.wait_for("slow", ["Failed"], timeout=30)
    assert condition(obj, "Succeeded")["reason"] == "DeadlineExceeded"
    assert "activeDeadlineSeconds=3" in obj["status"]["message"]
    await wait_process_gone(grandchild)
    assert not process_is_alive(grandchild)


async def test_delete_while_running_kills_the_tree_and_releases_the_finalizer(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    start_operator()
    grandchild = await create_tree(runs, "doomed", tmp_path / "grandchild.pid")
    running = await runs.wait_for("doomed", ["Running"])
    assert "wt.dev/finalizer" in running["metadata"]["finalizers"]
    await runs.delete("doomed")
    await runs.wait_gone("doomed", timeout=30)
    assert not process_is_alive(grandchild)
    reasons = [e.reason for e in await runs.events("doomed")]
    assert "Cancelled" in reasons


async def test_local_run_deleted_while_the_operator_is_down_has_its_orphan_killed(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    # kopf starts no daemon for an object already being deleted; without the operator's
    # own clean-up the finalizer would be released and the orphaned process left running.
    op = start_operator()
    grandchild = await create_tree(runs, "unwatched", tmp_path / "grandchild.pid")
    await runs.wait_for("unwatched", ["Running"])
    op.kill9()
    await runs.delete("unwatched")
    await asyncio.sleep(1)
    assert await runs.get("unwatched") is not None  # held by the finalizer
    assert process_is_alive(grandchild)
    op.start()
    await runs.wait_gone("unwatched", timeout=30)
    assert not process_is_alive(grandchild)
    cancelled = [e for e in await runs.events("unwatched") if e.reason == "Cancelled"]
    assert len(cancelled) == 1
    assert "process tree was killed" in cancelled[0].message


async def test_runs_beyond_the_concurrency_limit_queue(start_operator: Any, runs: Runs) -> None:
    start_operator(WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS="1")
    await runs.create("first", local_spec({"sleep": 3}))
    await runs.wait_for("first", ["Running"])
    await runs.create("second", local_spec({"sleep": 0}))
    queued = await runs.wait_for("second", ["Queued"], timeout=20)
    assert condition(queued, "Succeeded")["reason"] == "Queued"
    assert "limit 1" in queued["status"]["message"]
    first = await runs.wait_for("first", ["Succeeded"], timeout=30)
    second = await runs.wait_for("second", ["Succeeded"], timeout=30)
    # The queued run started only after the first finished.
    assert second["status"]["completionTime"] >= first["status"]["completionTime"]


async def test_operator_killed_mid_run_marks_it_invoker_lost_and_reaps_the_orphan(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    op = start_operator()
    grandchild = await create_tree(runs, "orphan", tmp_path / "grandchild.pid")
    await runs.wait_for("orphan", ["Running"])
    op.kill9()
    assert process_is_alive(grandchild)  # kill -9 leaves the workflow behind …
    op.start()
    obj = await runs.wait_for("orphan", ["Failed"], timeout=60)
    assert condition(obj, "Succeeded")["reason"] == "InvokerLost"
    assert "has been killed" in obj["status"]["message"]
    assert not process_is_alive(grandchild)  # … and the new operator reaps it: never runs twice


async def test_unknown_workflow_fails_once_as_not_installed(
    start_operator: Any, runs: Runs
) -> None:
    start_operator()
    await runs.create("missing", local_spec(workflow="no-such-workflow >=1"))
    obj = await runs.wait_for("missing", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "NotInstalled"
    assert "no-such-workflow" in obj["status"]["message"]
    await runs.create("too-new", local_spec(workflow="wt-sample-workflow >=99"))
    obj = await runs.wait_for("too-new", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "NotInstalled"
    await asyncio.sleep(1)
    events = [e for e in await runs.events("missing") if e.reason == "NotInstalled"]
    assert len(events) == 1  # reported once, no hot retry loop


async def test_missing_configmap_key_is_invalid_spec(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    start_operator()
    await client.CoreV1Api(kube_api).create_namespaced_config_map(
        namespace, {"metadata": {"name": "params"}, "data": {"other.yaml": "a: 1"}}
    )
    spec = local_spec(configFrom={"configMapKeyRef": {"name": "params", "key": "run.yaml"}})
    del spec["config"]
    await runs.create("nokey", spec)
    obj = await runs.wait_for("nokey", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "InvalidSpec"
    assert "'run.yaml'" in obj["status"]["message"]


async def test_secret_values_never_reach_status_events_or_logs(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    secret_value = "s3cr3t-VALUE-9f8e7d"
    await client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": secret_value}}
    )
    op = start_operator()
    envfile = tmp_path / "env.txt"
    spec = local_spec(
        {"exit_code": 1, "print_env": "API_TOKEN", "echo_file": str(envfile)},
        env=[
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
        ],
    )
    await runs.create("secretive", spec)
    obj = await runs.wait_for("secretive", ["Failed"])
    # The workflow did get the value …
    assert secret_value in await wait_file(envfile)
    # … but it is masked everywhere the operator writes, even though the workflow printed it.
    assert secret_value not in str(obj)
    assert "***" in obj["status"]["message"]
    events = await runs.events("secretive")
    assert events
    assert all(secret_value not in str(e.message) for e in events)
    assert secret_value not in op.logs()


async def test_crd_rejects_invalid_objects(runs: Runs, crds: Any) -> None:
    bad_specs = {
        "no-results": {"workflow": "w", "invoker": "Local"},
        "bad-invoker": {"workflow": "w", "invoker": "Docker", "resultsUrl": "x"},
        "batch-no-image": {"workflow": "w", "invoker": "CloudBatch", "resultsUrl": "x"},
        "bad-mode": local_spec(executionMode="parallel"),
        "both-configs": local_spec(configFrom={"configMapKeyRef": {"name": "a", "key": "b"}}),
        "bad-env": local_spec(env=[{"name": "A", "value": "1", "valueFrom": {}}]),
    }
    for name, spec in bad_specs.items():
        with pytest.raises(ApiException) as err:
            await runs.create(name, spec)
        assert err.value.status == 422, name
    await runs.create("good", local_spec())
    obj = await runs.get("good")
    assert obj is not None
    obj["spec"]["workflow"] = "something-else"
    with pytest.raises(ApiException) as err:
        await runs.custom.replace_namespaced_custom_object(
            "wt.dev", "v1alpha1", runs.namespace, "workflowruns", "good", obj
        )
    assert err.value.status == 422
    assert "immutable" in err.value.body


async def test_batch_run_is_submitted_and_tracked_to_success(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    batch_server.lifecycle = [("SCHEDULED", 0.3), ("RUNNING", 0.6), ("SUCCEEDED", 1.0)]
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("cloud", batch_spec({"a": 1}, workflowRunId="cloud-run-1"))
    submitted = await runs.wait_for("cloud", ["Submitted", "Succeeded"])
    job_name = submitted["status"]["cloudBatch"]["jobName"]
    assert job_name.startswith("projects/wt-test-project/locations/us-central1/jobs/")
    obj = await runs.wait_for("cloud", ["Succeeded"], timeout=30)
    assert obj["status"]["cloudBatch"]["state"] == "SUCCEEDED"
    assert batch_server.created_jobs == 1


async def test_a_new_batch_job_is_first_polled_one_interval_after_its_submission(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    # A job just created is QUEUED; asking Batch again at once would only cost a call.
    start_operator(BATCH_EMULATOR_HOST=batch_server.address, WT_OPERATOR_BATCH_POLL_INTERVAL="3")
    await runs.create("patient", batch_spec())
    await runs.wait_for("patient", ["Submitted"])
    submitted_at = asyncio.get_running_loop().time()
    await asyncio.sleep(1.5)
    assert batch_server.calls.get("GetJob", 0) == 0
    while batch_server.calls.get("GetJob", 0) == 0:
        assert asyncio.get_running_loop().time() - submitted_at < 10, "never polled"
        await asyncio.sleep(0.1)


async def test_a_burst_of_runs_opens_a_bounded_number_of_api_connections(
    start_operator: Any, runs: Runs, batch_server: Any, control_plane: Any
) -> None:
    # kopf's own HTTP session has no connection limit: 200 runs arriving at once made it
    # open a TLS connection per finalizer patch. The operator gives kopf a bounded pool.
    op = start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    assert op.proc is not None
    port = int(control_plane.server.rsplit(":", 1)[1])
    names = [f"burst-{i}" for i in range(200)]
    gate = asyncio.Semaphore(50)

    async def create(name: str) -> None:
        async with gate:
            await runs.create(name, batch_spec())

    await asyncio.gather(*(create(n) for n in names))
    peak = 0
    for name in names:
        await runs.wait_for(name, ["Submitted"], timeout=60)
        peak = max(peak, tcp_connections_to(op.proc.pid, port))
    # kubernetes_asyncio's pool (100) + kopf's (32 + its watch streams).
    assert 0 < peak <= 140
    assert batch_server.created_jobs == len(names)


async def test_operator_restart_adopts_the_batch_job_instead_of_resubmitting(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    op = start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("adopt", batch_spec())
    submitted = await runs.wait_for("adopt", ["Submitted"])
    job_name = submitted["status"]["cloudBatch"]["jobName"]
    op.kill9()
    batch_server.set_job_state(job_name, "RUNNING")
    op.start()
    await asyncio.sleep(1)
    batch_server.set_job_state(job_name, "SUCCEEDED")
    obj = await runs.wait_for("adopt", ["Succeeded"], timeout=30)
    assert obj["status"]["cloudBatch"]["jobName"] == job_name
    assert batch_server.created_jobs == 1


async def test_batch_permission_denied_fails_once_without_retrying(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    import grpc

    batch_server.deny(code=grpc.StatusCode.PERMISSION_DENIED, method="CreateJob")
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("denied", batch_spec())
    obj = await runs.wait_for("denied", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "SubmissionRejected"
    assert "PERMISSION_DENIED" in obj["status"]["message"]
    await asyncio.sleep(1)
    assert batch_server.create_calls == 1


async def test_deleting_a_submitted_batch_run_deletes_its_job(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("drop", batch_spec())
    submitted = await runs.wait_for("drop", ["Submitted"])
    job_name = submitted["status"]["cloudBatch"]["jobName"]
    await runs.delete("drop")
    await runs.wait_gone("drop")
    assert job_name not in batch_server.jobs


async def test_batch_run_deleted_while_the_operator_is_down_has_its_job_deleted(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    op = start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("left", batch_spec())
    submitted = await runs.wait_for("left", ["Submitted"])
    job_name = submitted["status"]["cloudBatch"]["jobName"]
    op.kill9()
    await runs.delete("left")
    op.start()
    await runs.wait_gone("left", timeout=30)
    assert job_name not in batch_server.jobs  # not left running (and billing) in Batch
    assert batch_server.created_jobs == 1
    reasons = [e.reason for e in await runs.events("left")]
    assert reasons.count("Cancelled") == 1


async def test_metrics_count_runs_by_invoker_and_outcome(start_operator: Any, runs: Runs) -> None:
    op = start_operator()
    await runs.create("m1", local_spec())
    await runs.create("m2", local_spec({"exit_code": 2}))
    await runs.wait_for("m1", ["Succeeded"])
    await runs.wait_for("m2", ["Failed"])
    text = op.metrics()
    assert 'wt_workflowruns_total{invoker="Local",outcome="Succeeded"} 1.0' in text
    assert 'wt_workflowruns_total{invoker="Local",outcome="Failed"} 1.0' in text
    assert "wt_workflowruns_queued 0.0" in text


async def test_only_one_of_two_replicas_acts(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    await client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "wt-operator"}},
    )
    low = start_operator(standalone=False, priority=10)
    high = start_operator(standalone=False, priority=20)
    await asyncio.sleep(3)  # let them see each other's heartbeats
    marker = tmp_path / "ran.txt"
    await runs.create("once", local_spec({"append_to": str(marker)}))
    await runs.wait_for("once", ["Succeeded"], timeout=60)
    assert marker.read_text().count("ran") == 1
    assert "Pausing operations in favour of" in low.logs()
    assert f"[{namespace}/once]" in high.logs()
    assert f"[{namespace}/once]" not in low.logs()


def test_cli_runs_as_a_console_script() -> None:
    script = Path(sys.executable).parent / "wt-operator"
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "--all-namespaces" in proc.stdout


def test_shipped_samples_are_valid_workflowruns(
    control_plane: Any, namespace: str, crds: Any
) -> None:
    samples = Path(__file__).resolve().parents[2] / "crds" / "samples"
    proc = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(samples), check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("created (server dry run)") == len(list(samples.glob("*.yaml")))


async def test_a_new_run_reads_as_pending_before_any_operator_writes(runs: Runs, crds: Any) -> None:
    # No operator runs here: the status comes from the CRD's schema default, so GitOps
    # tools see a run in progress (kstatus: Reconciling=True), never a healthy blank.
    await runs.create("fresh", local_spec())
    obj = await runs.get("fresh")
    assert obj is not None
    assert obj["status"]["phase"] == "Pending"
    assert condition(obj, "Reconciling")["status"] == "True"
    assert condition(obj, "Succeeded")["status"] == "Unknown"
    assert obj["metadata"]["generation"] == 1
