"""What a CloudBatch run promises, each failing by assertion (never by a timeout) when broken.

Loops that should end (a deadline, a terminal state) are driven under a watchdog: a
Batch double that stops the run as an operator would after a bounded number of polls.
A loop that never ends then ends anyway, and the test says which promise was broken.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest

from tests.unit.fakes import FakeBatch, FakeInvokers, make_runtime, reconcile
from wt_invokers import TransientSubmissionError, retry
from wt_invokers.cloud_batch import BatchJobInfo
from wt_operator.api import Phase, Reason
from wt_operator.core import batch
from wt_operator.core.policy import BatchPolicy
from wt_operator.core.spec import parse_spec
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
JOB = "projects/p/locations/us-central1/jobs/wt-nightly-0b5f3c4e"
MAX_POLLS = 20


@dataclasses.dataclass
class WatchedBatch(FakeBatch):
    """A Batch double that notes when it was polled and stops a run that polls forever."""

    clock: Any = None
    stop: StopFlag | None = None
    polled_at: list[float] = dataclasses.field(default_factory=list)

    async def get_job(self, job_name: str | None = None) -> BatchJobInfo:
        self.polled_at.append(self.clock.now())
        if self.polls >= MAX_POLLS and self.stop is not None:
            self.stop.set(Stopping.OPERATOR)  # the watchdog: a run that never ends
        return await super().get_job(job_name)


def watched(states: list[str], **settings: Any) -> tuple[Any, Any, WatchedBatch, StopFlag]:
    settings.setdefault("batch_poll_interval", 30.0)
    stop = StopFlag()
    fake = WatchedBatch(states=states, stop=stop)
    runtime, kube, _, clock = make_runtime(invokers=FakeInvokers(batch_invoker=fake), **settings)
    fake.clock = clock
    return runtime, kube, fake, stop


def started(runtime: Any, seconds_ago: float = 0) -> dict[str, Any]:
    moment = dt.datetime.fromtimestamp(runtime.clock.now() - seconds_ago, dt.UTC)
    return {"startTime": now_iso(moment)}


async def test_a_new_job_is_first_polled_one_interval_after_its_submission() -> None:
    runtime, kube, fake, stop = watched(["QUEUED", "SUCCEEDED"])
    submitted_at = runtime.clock.now()
    await reconcile(runtime, SPEC, stop=stop)
    assert kube.phases[-1] == "Succeeded"
    assert fake.polled_at[0] - submitted_at == 30.0  # not at once: it is QUEUED by construction


async def test_an_adopted_job_that_already_ended_is_recorded_without_tracking() -> None:
    runtime, kube, fake, stop = watched(["SUCCEEDED"])
    fake.submit_state = "SUCCEEDED"  # found under the run's id, already over
    await reconcile(runtime, SPEC, stop=stop)
    assert stop.why() is None, "the ended job was tracked (the watchdog stopped it)"
    assert fake.polls == 0
    assert kube.phases == ["Submitted", "Succeeded"]


async def test_a_recorded_job_is_polled_at_once_after_a_restart() -> None:
    runtime, kube, fake, stop = watched(["SUCCEEDED"])
    now = runtime.clock.now()
    job = {"jobName": JOB, "state": "RUNNING"}
    await reconcile(runtime, SPEC, {"phase": "Submitted", "cloudBatch": job}, stop=stop)
    assert fake.polled_at == [now]  # it may have ended while no operator watched
    assert fake.submitted == []
    assert kube.phases == ["Succeeded"]


async def test_the_deadline_cancels_a_queued_job_by_assertion_not_by_timeout() -> None:
    runtime, kube, fake, stop = watched(["QUEUED"])
    await reconcile(runtime, {**SPEC, "activeDeadlineSeconds": 45}, started(runtime), stop=stop)
    assert fake.polls < MAX_POLLS, "the deadline never fired: the watchdog stopped the run"
    assert kube.reasons == ["Submitted", "DeadlineExceeded"]
    assert fake.cancelled == [kube.status["cloudBatch"]["jobName"]]
    # Polls are cut short by the deadline: 30 s, then the 15 s left, then it fires.
    assert runtime.clock.slept == [30.0, 15.0]
    assert "activeDeadlineSeconds=45 exceeded in state QUEUED" in kube.status["message"]


async def test_a_deadline_already_passed_when_picked_up_cancels_without_waiting() -> None:
    runtime, kube, fake, stop = watched(["RUNNING"])
    job = {"jobName": JOB, "state": "RUNNING"}
    status = {"phase": "Submitted", "cloudBatch": job, **started(runtime, seconds_ago=100)}
    await reconcile(runtime, {**SPEC, "activeDeadlineSeconds": 60}, status, stop=stop)
    assert kube.reasons == ["DeadlineExceeded"]
    assert fake.cancelled == [JOB] and fake.polls == 0


async def test_a_deadline_whose_cancel_fails_still_ends_the_run_and_says_so() -> None:
    @dataclasses.dataclass
    class Uncancellable(WatchedBatch):
        async def cancel_job(self, job_name: str | None = None) -> None:
            raise RuntimeError("PERMISSION_DENIED: batch.jobs.cancel")

    stop = StopFlag()
    fake = Uncancellable(states=["QUEUED"], stop=stop)
    runtime, kube, _, clock = make_runtime(invokers=FakeInvokers(batch_invoker=fake))
    fake.clock = clock
    await reconcile(runtime, {**SPEC, "activeDeadlineSeconds": 5}, started(runtime), stop=stop)
    assert kube.reasons[-1] == "DeadlineExceeded"
    assert "could not be cancelled (PERMISSION_DENIED" in kube.status["message"]
    assert "was cancelled" not in kube.status["message"]


async def test_an_unchanged_state_writes_nothing() -> None:
    runtime, kube, fake, stop = watched(["QUEUED", "QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"])
    await reconcile(runtime, SPEC, stop=stop)
    assert fake.polls == 5
    # Submitted (QUEUED), Submitted (RUNNING), Succeeded: one write per change, not per poll.
    assert [p["cloudBatch"]["state"] for p in kube.patches] == ["QUEUED", "RUNNING", "SUCCEEDED"]


@pytest.mark.parametrize(
    ("state", "phase", "reason"),
    [
        ("SUCCEEDED", Phase.SUCCEEDED, Reason.SUCCEEDED),
        ("FAILED", Phase.FAILED, Reason.FAILED),
        ("CANCELLED", Phase.CANCELLED, Reason.CANCELLED),
        ("DELETION_IN_PROGRESS", Phase.FAILED, Reason.INVOKER_LOST),
    ],
)
async def test_a_terminal_job_state_ends_tracking(state: str, phase: Phase, reason: Reason) -> None:
    runtime, kube, fake, stop = watched([state])
    job = {"jobName": JOB, "state": "RUNNING"}
    await reconcile(runtime, SPEC, {"phase": "Submitted", "cloudBatch": job}, stop=stop)
    assert fake.polls == 1, "tracking went on after the job ended"
    assert (kube.phases, kube.reasons) == ([phase], [reason])


def test_the_poll_interval_is_cut_short_by_the_deadline() -> None:
    assert batch.next_poll(30.0, None) == 30.0
    assert batch.next_poll(30.0, 12.5) == 12.5
    assert batch.next_poll(30.0, 90.0) == 30.0


def test_a_recorded_job_is_tracked_never_submitted_again() -> None:
    assert isinstance(batch.resume({"jobName": JOB, "state": "QUEUED"}), batch.Track)
    assert isinstance(batch.resume(None), batch.Submit)
    assert isinstance(batch.resume({"jobName": "", "state": ""}), batch.Submit)


def test_a_job_records_where_its_logs_are() -> None:
    job = batch.job_status(JOB, uid="job-uid-9", state="RUNNING")
    assert job["logsUrl"] == (
        "https://console.cloud.google.com/batch/jobsDetail/regions/us-central1"
        "/jobs/wt-nightly-0b5f3c4e/logs?project=p"
    )
    assert 'labels.job_uid="job-uid-9"' in job["logsQuery"]


def test_submitted_names_the_job_and_the_run_id() -> None:
    req = parse_spec({**SPEC, "workflowRunId": "told-id"}, uid="u-1")
    t = batch.submitted(batch.job_status(JOB, uid="j"), req, trace_id="t" * 32)
    assert (t.phase, t.result, t.workflow_run_id) == (
        Phase.SUBMITTED,
        "wt-nightly-0b5f3c4e",
        "told-id",
    )
    assert t.trace_id == "t" * 32 and JOB in t.message


def test_a_failed_delete_never_claims_the_job_is_gone() -> None:
    job = batch.job_status(JOB, state="RUNNING")
    t = batch.cancelling("Submitted", job, "PERMISSION_DENIED", 4.0)
    assert (t.phase, t.reason, t.terminal) == (Phase.SUBMITTED, Reason.CANCELLING, False)
    assert t.cloud_batch is not None and t.cloud_batch["state"] == "RUNNING"
    assert "retrying in 4s" in t.message
    done = batch.cancelled(job, "the Batch job was deleted")
    assert (done.phase, done.terminal) == (Phase.CANCELLED, True)
    assert done.cloud_batch is not None and done.cloud_batch["state"] == batch.DELETED


async def test_a_batch_runs_status_and_events_never_carry_its_secrets() -> None:
    @dataclasses.dataclass
    class Leaky(WatchedBatch):
        async def get_job(self, job_name: str | None = None) -> BatchJobInfo:
            await super().get_job(job_name)
            return BatchJobInfo(job_name or "", "u", "FAILED", "task printed batch-secret-value")

    fake = Leaky(states=["FAILED"])
    runtime, kube, _, clock = make_runtime(
        invokers=FakeInvokers(batch_invoker=fake),
        batch_policy=BatchPolicy(allow_plaintext_secrets=True),
    )
    fake.clock = clock
    kube.values[("Secret", "creds", "token")] = "batch-secret-value"
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    await reconcile(runtime, {**SPEC, "env": env})
    assert fake.submitted[0][0].extra_env["T"] == "batch-secret-value"  # the job gets it
    assert kube.reasons == ["Submitted", "Failed"]
    assert "batch-secret-value" not in str(kube.patches) + str(kube.events)
    assert kube.status["message"].endswith("task printed ***")


@pytest.mark.parametrize("cap", [4.0, 60.0])
async def test_a_failing_job_delete_is_retried_with_capped_backoff(
    cap: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each pause is drawn from [0, bound]; taking the bound itself shows the bound.
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)
    errors = [RuntimeError(f"UNAVAILABLE {i}") for i in range(6)]
    fake = FakeBatch(states=["QUEUED"], delete_errors=errors)
    runtime, kube, _, clock = make_runtime(
        invokers=FakeInvokers(batch_invoker=fake), retry_backoff_max=cap
    )
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, SPEC, stop=stop))
    await kube.reached("Submitted")
    before = len(clock.slept)
    stop.set(Stopping.DELETED)
    await task
    assert kube.reasons[-1] == "Cancelled" and len(fake.deleted) == 7
    expected = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] if cap == 60.0 else [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert clock.slept[before:][-6:] == expected


async def test_a_poll_failing_transiently_says_retrying_and_leaves_the_run_submitted() -> None:
    fake = FakeBatch(
        states=["RUNNING"],
        get_error=TransientSubmissionError("Batch GetJob: UNAVAILABLE", code="UNAVAILABLE"),
    )
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(batch_invoker=fake))
    with pytest.raises(TransientSubmissionError):
        await reconcile(runtime, SPEC)  # re-raised: kopf retries the run with backoff
    assert kube.reasons[-1] == "Retrying"
    assert kube.status["phase"] == Phase.SUBMITTED  # not failed, still followed
    assert "has not failed" in kube.status["message"]


async def test_a_job_delete_is_not_retried_inside_the_loop_that_retries_it() -> None:
    # The loop that keeps deleting is the only retry: it asks the client for one attempt.
    fake = FakeBatch(states=["QUEUED"], delete_errors=[RuntimeError("UNAVAILABLE")])
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(batch_invoker=fake))
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, SPEC, stop=stop))
    await kube.reached("Submitted")
    stop.set(Stopping.DELETED)
    await task
    assert fake.delete_policies and all(p.max_attempts == 1 for p in fake.delete_policies)
