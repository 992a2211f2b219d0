"""Every transition of a CloudBatch run, driven through the real runtime with doubles.

``tests/unit/fakes.py`` stands in for the Kubernetes API, Cloud Batch (as the
invoker reports it) and the clock; the real google-cloud-batch client against
the gRPC Batch stand-in is exercised by the integration and chaos tiers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from tests.unit.fakes import REF, UID, FakeBatch, FakeInvokers, make_runtime, reconcile
from wt_invokers import PermanentSubmissionError
from wt_operator.core.policy import BatchPolicy
from wt_operator.core.status import now_iso
from wt_operator.core.stopping import Stopping
from wt_operator.shell.stop import StopFlag

IMAGE = "us-docker.pkg.dev/acme/wf/sample:1.2"
SPEC: dict[str, Any] = {
    "workflow": "wt-sample-workflow >=1.2",
    "invoker": "CloudBatch",
    "resultsUrl": "gs://b/r/",
    "cloudBatch": {"image": IMAGE},
}


def spec(**extra: Any) -> dict[str, Any]:
    return {**SPEC, **extra}


def runtime_with(batch: FakeBatch, **settings: Any) -> Any:
    settings.setdefault("batch_poll_interval", 30.0)
    return make_runtime(invokers=FakeInvokers(batch_invoker=batch), **settings)


async def test_submitted_then_tracked_to_success_with_where_the_logs_are() -> None:
    batch = FakeBatch(states=["RUNNING", "SUCCEEDED"])
    runtime, kube, _, clock = runtime_with(batch)
    await reconcile(runtime, spec(workflowRunId="copied-id"))
    assert kube.phases == ["Submitted", "Submitted", "Succeeded"]
    assert clock.slept[0] == 30.0  # a new job is first polled one interval later
    [(invocation, options, job_id, _)] = batch.submitted
    assert invocation.workflow_run_id == "copied-id" and invocation.run_uid == UID
    assert job_id == f"wt-nightly-{UID[:8]}"  # named after the run's uid, readable prefix
    assert options.docker_image_uri == IMAGE
    job = kube.status["cloudBatch"]
    assert job["state"] == "SUCCEEDED" and job["jobUid"] == "job-uid-1"
    assert job["logsUrl"].startswith("https://console.cloud.google.com/batch/jobsDetail/")
    assert 'labels.job_uid="job-uid-1"' in job["logsQuery"]
    assert kube.status["result"] == job_id


async def test_an_adopted_job_that_already_ended_is_recorded_at_once() -> None:
    batch = FakeBatch(submit_state="SUCCEEDED")
    runtime, kube, _, _ = runtime_with(batch)
    await reconcile(runtime, spec())
    assert kube.phases == ["Submitted", "Succeeded"]
    assert batch.polls == 0


@pytest.mark.parametrize(
    ("code", "reason"),
    [("ALREADY_EXISTS", "JobConflict"), ("PERMISSION_DENIED", "SubmissionRejected")],
)
async def test_a_refused_submission_fails_once(code: str, reason: str) -> None:
    batch = FakeBatch(submit_error=PermanentSubmissionError(f"{code}: no", code=code))
    runtime, kube, _, _ = runtime_with(batch)
    await reconcile(runtime, spec())
    assert kube.reasons == [reason]
    assert batch.polls == 0


async def test_a_job_that_vanishes_is_invoker_lost() -> None:
    batch = FakeBatch(get_error=PermanentSubmissionError("gone", code="NOT_FOUND"))
    runtime, kube, _, _ = runtime_with(batch)
    await reconcile(runtime, spec())
    assert kube.reasons == ["Submitted", "InvokerLost"]
    assert kube.status["cloudBatch"]["state"] == "NOT_FOUND"


async def test_the_deadline_cancels_a_job_stuck_in_the_queue() -> None:
    batch = FakeBatch(states=["QUEUED"])
    runtime, kube, _, clock = runtime_with(batch)
    started = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    await reconcile(runtime, spec(activeDeadlineSeconds=90), {"startTime": now_iso(started)})
    assert kube.reasons == ["Submitted", "DeadlineExceeded"]
    assert batch.cancelled == [kube.status["cloudBatch"]["jobName"]]
    assert clock.slept == [30.0, 30.0, 30.0]
    assert batch.submitted[0][1].timeout == 90  # Batch enforces it too (max_run_duration)


async def test_a_restarted_operator_tracks_the_recorded_job_without_resubmitting() -> None:
    batch = FakeBatch(states=["FAILED"])
    runtime, kube, _, _ = runtime_with(batch)
    job = {"jobName": "projects/p/locations/us-central1/jobs/wt-x", "state": "RUNNING"}
    await reconcile(runtime, spec(), {"phase": "Submitted", "cloudBatch": job})
    assert batch.submitted == []
    assert kube.reasons == ["Failed"]
    assert "exit code 0" in kube.status["message"]  # the job's last status event


async def test_deleting_keeps_the_run_until_the_job_is_really_deleted() -> None:
    denied = PermanentSubmissionError("PERMISSION_DENIED: no delete", code="PERMISSION_DENIED")
    batch = FakeBatch(states=["QUEUED"], delete_errors=[denied, denied])
    runtime, kube, _, _ = runtime_with(batch)
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await kube.reached("Submitted")
    stop.set(Stopping.DELETED)
    await task
    assert kube.reasons == ["Submitted", "Cancelling", "Cancelled"]  # one per distinct error
    assert len(batch.deleted) == 3
    cancelling = kube.patches[1]
    assert "could not be deleted yet" in cancelling["message"]
    assert cancelling["cloudBatch"]["state"] != "DELETED"  # never claimed before it is true
    assert kube.status["cloudBatch"]["state"] == "DELETED"
    assert [w for _, _, w in kube.events] == [False, True, True]


async def test_a_cancelled_run_whose_job_resists_says_cancelled_not_deleted() -> None:
    denied = PermanentSubmissionError("PERMISSION_DENIED: no delete", code="PERMISSION_DENIED")
    batch = FakeBatch(states=["QUEUED"], delete_errors=[denied])
    runtime, kube, _, _ = runtime_with(batch)
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await kube.reached("Submitted")
    stop.set(Stopping.CANCELLED)  # spec.cancel: the run stays, so its words must be right
    await task
    assert kube.reasons == ["Submitted", "Cancelling", "Cancelled"]
    assert kube.patches[1]["message"].startswith("the run was cancelled (spec.cancel) but")
    assert kube.status["message"].startswith("cancelled (spec.cancel);")


async def test_deleted_during_the_submission_deletes_by_the_derived_name() -> None:
    batch = FakeBatch(hold_submit=True)
    runtime, kube, _, _ = runtime_with(batch)
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await batch.submit_started.wait()
    stop.set(Stopping.DELETED)
    await task
    assert batch.deleted == [batch.job_name_for(UID, readable="nightly")]
    assert kube.reasons == ["Cancelled"]


async def test_an_operator_leaving_a_submitted_run_leaves_the_job_running() -> None:
    batch = FakeBatch(states=["RUNNING"])
    runtime, kube, _, _ = runtime_with(batch)
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await kube.reached("Submitted")
    stop.set(Stopping.OPERATOR)
    await task
    assert batch.deleted == [] and batch.cancelled == []
    assert kube.phases[-1] == "Submitted"


@pytest.mark.parametrize(
    ("policy", "cloud_batch", "fragment"),
    [
        (BatchPolicy(allowed_projects=("acme-*",)), {"project": "evil"}, "project 'evil'"),
        (BatchPolicy(allowed_images=("us-docker.pkg.dev/acme/*",)), {"image": "evil/x"}, "image"),
        (
            BatchPolicy(allowed_service_accounts=("runner@acme-prod.iam.gserviceaccount.com",)),
            {"serviceAccount": "owner@acme-prod.iam.gserviceaccount.com"},
            "service account",
        ),
    ],
)
async def test_a_run_outside_the_admins_policy_is_denied_before_any_batch_call(
    policy: BatchPolicy, cloud_batch: dict[str, str], fragment: str
) -> None:
    batch = FakeBatch()
    runtime, kube, _, _ = runtime_with(batch, batch_policy=policy)
    await reconcile(runtime, spec(cloudBatch={"image": IMAGE, **cloud_batch}))
    assert kube.reasons == ["PolicyDenied"]
    assert fragment in kube.status["message"]
    assert batch.submitted == [] and not batch.submit_started.is_set()


async def test_kubernetes_secrets_are_not_copied_into_a_job_unless_the_admin_allows_it() -> None:
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "t"}}}]
    batch = FakeBatch()
    runtime, kube, _, _ = runtime_with(batch)
    kube.values[("Secret", "creds", "t")] = "s3cret"
    await reconcile(runtime, spec(env=env))
    assert kube.reasons == ["PolicyDenied"]
    assert "gcpSecretVersion" in kube.status["message"]
    assert batch.submitted == []
    allowed, kube2, _, _ = runtime_with(
        FakeBatch(), batch_policy=BatchPolicy(allow_plaintext_secrets=True)
    )
    kube2.values[("Secret", "creds", "t")] = "s3cret"
    await reconcile(allowed, spec(env=env))
    assert kube2.phases[-1] == "Succeeded"


async def test_secret_manager_versions_are_handed_to_batch_not_read() -> None:
    version = "projects/p/secrets/api/versions/2"
    batch = FakeBatch()
    runtime, _, _, _ = runtime_with(batch)
    await reconcile(
        runtime, spec(env=[{"name": "API", "valueFrom": {"gcpSecretVersion": version}}])
    )
    [(invocation, _, _, secret_env)] = batch.submitted
    assert secret_env == {"API": version}
    assert "API" not in invocation.extra_env


async def test_finalizing_a_batch_run_deleted_while_no_operator_ran() -> None:
    batch = FakeBatch()
    runtime, kube, _, _ = runtime_with(batch)
    await runtime.finalize_unowned(REF, spec(), {"phase": "Pending"})
    assert batch.deleted == [batch.job_name_for(UID, readable="nightly")]
    assert kube.reasons == ["Cancelled"]
    assert "no job was recorded" in kube.status["message"]
