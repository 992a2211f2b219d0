"""CloudRunJob runs: the real operator process, the real API server, the real google-cloud-run
clients over gRPC — to the Cloud Run stand-in (``wt_testkit.cloudrun``), as GCP cannot run here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.conftest import CLOUD_RUN_JOB, cloud_run_spec
from wt_envtest.runs import Runs, condition
from wt_invokers.cloud_run_jobs import CORRELATION_ENV_VAR
from wt_testkit.cloudrun import InProcessCloudRunServer

pytestmark = pytest.mark.timeout(180)

FAST = {"WT_OPERATOR_BATCH_POLL_INTERVAL": "0.2"}


def started(server: InProcessCloudRunServer) -> list[Any]:
    return [type(e).pb(e) for e in server.executions(CLOUD_RUN_JOB)]


async def test_a_cloud_run_job_run_is_triggered_once_and_followed_to_success(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    cloud_run_server.lifecycle = [("RUNNING", 0.5), ("SUCCEEDED", 1.5)]
    start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    spec = cloud_run_spec({"a": 1}, workflowRunId="cr-1")
    spec["cloudRun"]["environmentArchiveDigest"] = "sha256:" + "0f" * 32
    created = await runs.create("sandboxed", spec)
    submitted = await runs.wait_for("sandboxed", ["Submitted", "Succeeded"])
    execution = submitted["status"]["cloudRun"]["executionName"]
    assert execution.startswith(f"{CLOUD_RUN_JOB}/executions/")
    assert submitted["status"]["result"] == execution.rsplit("/", 1)[-1]
    assert submitted["status"]["cloudRun"]["consoleUrl"].startswith(
        "https://console.cloud.google.com/run/jobs/executions/details/us-central1/"
    )
    obj = await runs.wait_for("sandboxed", ["Succeeded"], timeout=30)
    assert obj["status"]["cloudRun"]["state"] == "SUCCEEDED"
    [pb] = started(cloud_run_server)
    container = pb.template.containers[0]
    args = list(container.args)
    assert args[args.index("--workflow-run-id") + 1] == "cr-1"
    assert args[args.index("--environment-tar-url") + 1] == "https://example.test/envs/sample.tar"
    assert args[args.index("--config-json") + 1] == '{"a":1}'
    assert args[args.index("--environment-tar-digest") + 1] == "sha256:" + "0f" * 32
    env = {v.name: v.value for v in container.env}
    assert env[CORRELATION_ENV_VAR] == created["metadata"]["uid"]
    assert cloud_run_server.calls["RunJob"] == 1


async def test_a_failed_execution_fails_the_run_with_cloud_runs_message(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("broken", cloud_run_spec())
    submitted = await runs.wait_for("broken", ["Submitted"])
    cloud_run_server.set_execution_state(
        submitted["status"]["cloudRun"]["executionName"], "FAILED", "Task exited with code 3"
    )
    obj = await runs.wait_for("broken", ["Failed"], timeout=30)
    assert condition(obj, "Succeeded")["reason"] == "Failed"
    assert "Task exited with code 3" in obj["status"]["message"]
    assert obj["status"]["cloudRun"]["state"] == "FAILED"


async def test_deleting_a_submitted_run_cancels_its_execution_before_the_run_goes(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    cloud_run_server.cancel_delay = 1.5  # Cloud Run takes a while to stop the tasks
    start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("drop", cloud_run_spec())
    submitted = await runs.wait_for("drop", ["Submitted"])
    execution = submitted["status"]["cloudRun"]["executionName"]
    assert cloud_run_server.execution_state(execution) == "PENDING"
    await runs.delete("drop")
    await runs.wait_gone("drop")
    # Gone only once the execution has stopped, and no alarm while it was stopping.
    assert cloud_run_server.execution_state(execution) == "CANCELLED"
    reasons = [e.reason for e in await runs.events("drop")]
    assert "Cancelled" in reasons and "Cancelling" not in reasons


async def test_cancel_in_place_cancels_the_execution_and_keeps_the_run(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    # spec.cancel (kubectl wt cancel) stops the execution as a delete would, but the run
    # stays, Cancelled, with its record.
    start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("halt", cloud_run_spec())
    submitted = await runs.wait_for("halt", ["Submitted"])
    execution = submitted["status"]["cloudRun"]["executionName"]
    await runs.patch("halt", {"spec": {"cancel": True}})
    obj = await runs.wait_for("halt", ["Cancelled", "Failed", "Succeeded"])
    assert obj["status"]["phase"] == "Cancelled", obj["status"]
    assert obj["status"]["message"].startswith("cancelled (spec.cancel)")
    assert cloud_run_server.execution_state(execution) == "CANCELLED"
    assert obj["status"]["cloudRun"]["executionName"] == execution
    assert await runs.get("halt") is not None


async def test_a_job_nobody_deployed_fails_once_with_reason_job_not_found(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    spec = cloud_run_spec()
    spec["cloudRun"]["jobName"] = "not-deployed"
    await runs.create("orphan", spec)
    obj = await runs.wait_for("orphan", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "JobNotFound"
    assert "jobs/not-deployed does not exist" in obj["status"]["message"]
    await asyncio.sleep(1)
    assert cloud_run_server.started_executions == 0
    assert cloud_run_server.calls.get("RunJob", 0) == 0


async def test_unavailable_and_quota_are_retried_and_one_execution_starts(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    cloud_run_server.fail_next("RunJob", "UNAVAILABLE", times=2)
    cloud_run_server.fail_next("RunJob", "RESOURCE_EXHAUSTED", times=1)
    cloud_run_server.lose_reply_after_commit("RunJob", code="UNAVAILABLE")
    start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("patient", cloud_run_spec())
    submitted = await runs.wait_for("patient", ["Submitted"], timeout=60)
    assert cloud_run_server.calls["RunJob"] == 4  # three refused, one stored (reply lost)
    assert cloud_run_server.started_executions == 1
    [pb] = started(cloud_run_server)
    assert submitted["status"]["cloudRun"]["executionName"] == pb.name


async def test_operator_restart_adopts_the_execution_instead_of_starting_another(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    op = start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("adopt", cloud_run_spec())
    submitted = await runs.wait_for("adopt", ["Submitted"])
    execution = submitted["status"]["cloudRun"]["executionName"]
    op.kill9()
    cloud_run_server.set_execution_state(execution, "RUNNING")
    # The status is wiped as if the record had never been written: only the correlation
    # (the run's uid in the execution) can stop a second execution now.
    await runs.patch_status("adopt", {"phase": "Pending", "cloudRun": None, "result": None})
    op.start()
    obj = await runs.wait_for("adopt", ["Submitted"], timeout=30)
    assert obj["status"]["cloudRun"]["executionName"] == execution
    cloud_run_server.set_execution_state(execution, "SUCCEEDED")
    obj = await runs.wait_for("adopt", ["Succeeded"], timeout=30)
    assert obj["status"]["cloudRun"]["executionName"] == execution
    assert cloud_run_server.started_executions == 1


async def test_the_admins_allow_lists_deny_other_jobs_and_projects(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    start_operator(
        CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address,
        WT_OPERATOR_CLOUD_RUN_ALLOWED_JOBS="wt-sandbox-*",
        WT_OPERATOR_CLOUD_RUN_ALLOWED_PROJECTS="wt-test-*",
        **FAST,
    )
    await runs.create("off-list", cloud_run_spec())
    obj = await runs.wait_for("off-list", ["Failed", "Submitted"])
    assert condition(obj, "Succeeded")["reason"] == "PolicyDenied"
    assert "Cloud Run job 'wt-sandbox' is not allowed here" in obj["status"]["message"]
    assert cloud_run_server.calls == {}


async def test_the_api_server_refuses_a_cloud_run_job_run_without_its_options(
    start_operator: Any, runs: Runs
) -> None:
    spec = cloud_run_spec()
    del spec["cloudRun"]
    with pytest.raises(ApiException) as err:
        await runs.create("bare", spec)
    assert err.value.status == 422
    assert "cloudRun (with jobName and environmentArchiveUrl) is required" in err.value.body
    spec = cloud_run_spec()
    spec["cloudRun"]["skipResultsArchiveUpload"] = True
    with pytest.raises(ApiException) as err:
        await runs.create("both", spec)
    assert "set exactly one of resultsUploadUrl" in err.value.body


async def test_a_run_deleted_while_the_operator_is_down_has_its_execution_cancelled(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    op = start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("left", cloud_run_spec())
    submitted = await runs.wait_for("left", ["Submitted"])
    execution = submitted["status"]["cloudRun"]["executionName"]
    op.kill9()
    await runs.delete("left")
    op.start()
    await runs.wait_gone("left", timeout=30)
    assert cloud_run_server.execution_state(execution) == "CANCELLED"  # not left running
    assert cloud_run_server.started_executions == 1


async def test_the_deadline_cancels_the_execution_and_is_the_executions_timeout(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("late", cloud_run_spec(activeDeadlineSeconds=3))
    submitted = await runs.wait_for("late", ["Submitted"])
    execution = submitted["status"]["cloudRun"]["executionName"]
    [pb] = started(cloud_run_server)
    assert 0 < pb.template.timeout.seconds <= 3  # Cloud Run enforces it too
    obj = await runs.wait_for("late", ["Failed"], timeout=30)
    assert condition(obj, "Succeeded")["reason"] == "DeadlineExceeded"
    assert cloud_run_server.execution_state(execution) == "CANCELLED"


async def test_metrics_count_cloud_run_job_runs_under_their_own_invoker(
    start_operator: Any, runs: Runs, cloud_run_server: InProcessCloudRunServer
) -> None:
    cloud_run_server.lifecycle = [("SUCCEEDED", 0.3)]
    op = start_operator(CLOUD_RUN_EMULATOR_HOST=cloud_run_server.address, **FAST)
    await runs.create("counted", cloud_run_spec())
    await runs.wait_for("counted", ["Succeeded"], timeout=30)
    text = op.metrics()
    assert 'wt_workflowruns_total{invoker="CloudRunJob",outcome="Succeeded"} 1.0' in text
    assert 'wt_workflowruns_active{invoker="CloudRunJob"} 0.0' in text
