"""Every transition and text the two remote invokers record, one table.

The two runners share one loop (:mod:`wt_operator.shell.remote_runner`); what
they record is decided in :mod:`wt_operator.core.remote` and worded per invoker
by its :class:`~wt_operator.core.remote.Kind`. The table lists each decision
for both, so a changed word or phase shows here first.
"""

from __future__ import annotations

from typing import Any

import pytest

from wt_invokers import PermanentSubmissionError, TransientSubmissionError
from wt_invokers.cloud_batch import BatchJobInfo
from wt_invokers.cloud_run_jobs import ExecutionInfo
from wt_operator.api import Phase, Reason
from wt_operator.core import batch, cloudrun, remote
from wt_operator.core.spec import parse_spec
from wt_operator.core.status import Transition

JOB = "projects/p/locations/us-central1/jobs/wt-nightly-u1"
EXECUTION = "projects/p/locations/us-central1/jobs/wt-sandbox/executions/wt-sandbox-x1"
BJOB = batch.job_status(JOB, uid="j-1", state="RUNNING")
CRUN = {"jobName": "wt-sandbox", "executionName": EXECUTION, "state": "RUNNING"}
REQ = parse_spec(
    {
        "workflow": "sample >=1",
        "invoker": "Local",
        "resultsUrl": "file:///r",
        "activeDeadlineSeconds": 90,
    },
    uid="u1",
)


def b(state: str, event: str = "") -> Transition | None:
    return batch.observe(BJOB, BatchJobInfo(name=JOB, uid="j-1", state=state, last_event=event))


def c(state: str, message: str = "") -> Transition | None:
    return cloudrun.observe(
        CRUN, ExecutionInfo(name=EXECUTION, uid="e-1", state=state, message=message)
    )


TABLE: list[tuple[str, Any, Phase, Reason, str]] = [
    (
        "batch submitted",
        batch.submitted(BJOB, REQ, trace_id="t"),
        Phase.SUBMITTED,
        Reason.SUBMITTED,
        f"submitted Cloud Batch job {JOB}",
    ),
    (
        "batch moves on",
        b("SCHEDULED"),
        Phase.SUBMITTED,
        Reason.SUBMITTED,
        "the Batch job is SCHEDULED",
    ),
    (
        "batch succeeds",
        b("SUCCEEDED"),
        Phase.SUCCEEDED,
        Reason.SUCCEEDED,
        "the Batch job succeeded",
    ),
    (
        "batch fails",
        b("FAILED", "exit code 3"),
        Phase.FAILED,
        Reason.FAILED,
        "the Batch job failed; exit code 3",
    ),
    (
        "batch cancelled",
        b("CANCELLED"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "the Batch job cancelled",
    ),
    (
        "batch deleted behind us",
        b("DELETION_IN_PROGRESS"),
        Phase.FAILED,
        Reason.INVOKER_LOST,
        "the Batch job deletion_in_progress",
    ),
    (
        "batch deadline",
        batch.deadline_exceeded(BJOB, REQ),
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        "activeDeadlineSeconds=90 exceeded in state RUNNING; the Batch job was cancelled",
    ),
    (
        "batch deadline, cancel refused",
        batch.deadline_exceeded(BJOB, REQ, error="DENIED"),
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        "activeDeadlineSeconds=90 exceeded in state RUNNING; the Batch job could not be cancelled (DENIED)",  # noqa: E501 (a table row reads whole)
    ),
    (
        "batch delete refused",
        batch.cancelling("Submitted", BJOB, "DENIED", 4.0),
        Phase.SUBMITTED,
        Reason.CANCELLING,
        "the run was deleted but its Batch job could not be deleted yet (DENIED); retrying in 4s. The run is kept until the job is gone.",  # noqa: E501 (a table row reads whole)
    ),
    (
        "batch cancel refused",
        batch.cancelling("Submitted", BJOB, "DENIED", 4.0, verb="cancelled (spec.cancel)"),
        Phase.SUBMITTED,
        Reason.CANCELLING,
        "the run was cancelled (spec.cancel) but its Batch job could not be deleted yet (DENIED); retrying in 4s. The run is kept until the job is gone.",  # noqa: E501 (a table row reads whole)
    ),
    (
        "batch deleted",
        batch.cancelled(BJOB, "the Batch job was deleted"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted; the Batch job was deleted",
    ),
    (
        "cloud run started",
        cloudrun.triggered(CRUN, REQ, trace_id="t"),
        Phase.SUBMITTED,
        Reason.SUBMITTED,
        f"started Cloud Run execution {EXECUTION}",
    ),
    (
        "cloud run moves on",
        c("PENDING"),
        Phase.SUBMITTED,
        Reason.SUBMITTED,
        "the Cloud Run execution is PENDING",
    ),
    (
        "cloud run succeeds",
        c("SUCCEEDED"),
        Phase.SUCCEEDED,
        Reason.SUCCEEDED,
        "the Cloud Run execution succeeded",
    ),
    (
        "cloud run fails",
        c("FAILED", "task 0 exited 2"),
        Phase.FAILED,
        Reason.FAILED,
        "the Cloud Run execution failed; task 0 exited 2",
    ),
    (
        "cloud run cancelled",
        c("CANCELLED"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "the Cloud Run execution cancelled",
    ),
    (
        "cloud run deadline",
        cloudrun.deadline_exceeded(CRUN, REQ),
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        "activeDeadlineSeconds=90 exceeded in state RUNNING; the Cloud Run execution was cancelled",
    ),
    (
        "cloud run deadline, cancel refused",
        cloudrun.deadline_exceeded(CRUN, REQ, error="DENIED"),
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        "activeDeadlineSeconds=90 exceeded in state RUNNING; the Cloud Run execution could not be cancelled (DENIED)",  # noqa: E501 (a table row reads whole)
    ),
    (
        "cloud run stop refused",
        cloudrun.cancelling("Submitted", CRUN, "DENIED", 2.0, verb="cancelled (spec.cancel)"),
        Phase.SUBMITTED,
        Reason.CANCELLING,
        "the run was cancelled (spec.cancel) but its Cloud Run execution could not be stopped yet (DENIED); retrying in 2s. The run is kept until the execution has stopped.",  # noqa: E501 (a table row reads whole)
    ),
    (
        "cloud run cancelled in place",
        cloudrun.cancelled(
            CRUN, "its Cloud Run execution is cancelled", verb="cancelled (spec.cancel)"
        ),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "cancelled (spec.cancel); its Cloud Run execution is cancelled",
    ),
    (
        "batch deleted, none recorded",
        batch.deleted(None, JOB, verb="deleted"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted; no job was recorded; any job under its name was deleted",
    ),
    (
        "batch job lost",
        remote.poll_failed(batch.KIND, BJOB, PermanentSubmissionError("no job", code="NOT_FOUND")),
        Phase.FAILED,
        Reason.INVOKER_LOST,
        "the Batch job is gone: no job",
    ),
    (
        "cloud run stopped, ended",
        cloudrun.stopped(CRUN, ended="CANCELLED", job_missing=False, verb="deleted"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted; its Cloud Run execution is cancelled",
    ),
    (
        "cloud run stopped, gone",
        cloudrun.stopped(CRUN, ended=None, job_missing=False, verb="deleted"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted; its Cloud Run execution is gone",
    ),
    (
        "cloud run never started",
        cloudrun.stopped(None, ended=None, job_missing=False, verb="deleted"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted; no execution of it was started",
    ),
    (
        "cloud run job missing",
        cloudrun.stopped(None, ended=None, job_missing=True, verb="deleted"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted; its Cloud Run Job does not exist; nothing was started",
    ),
    (
        "unowned, invalid spec",
        remote.unowned_invalid(batch.KIND, "bad"),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted; no operator was reconciling it and nothing was started (bad)",
    ),
]


@pytest.mark.parametrize(
    ("t", "phase", "reason", "message"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_each_transition_and_its_text(
    t: Transition | None, phase: Phase, reason: Reason, message: str
) -> None:
    assert t is not None
    assert (t.phase, t.reason, t.message) == (phase, reason, message)


def test_an_unchanged_state_records_nothing() -> None:
    assert b("RUNNING") is None and c("RUNNING") is None


@pytest.mark.parametrize("state", ["QUEUED", "SCHEDULED", "RUNNING"])
def test_an_adopted_job_still_running_is_tracked_not_ended(state: str) -> None:
    info = BatchJobInfo(name=JOB, uid="j-1", state=state)
    assert batch.adopted_ended(batch.job_status(JOB, state=state), info) is None


def test_an_adopted_job_that_already_ended_is_recorded_ended() -> None:
    # Recorded Submitted with the same state it already has: the outcome must still come.
    job = batch.job_status(JOB, uid="j-1", state="SUCCEEDED")
    ended = batch.adopted_ended(job, BatchJobInfo(name=JOB, uid="j-1", state="SUCCEEDED"))
    assert ended is not None and ended.phase is Phase.SUCCEEDED
    run = {**CRUN, "state": "FAILED"}
    info = ExecutionInfo(name=EXECUTION, uid="e-1", state="FAILED")
    ended = cloudrun.adopted_ended(run, info)
    assert ended is not None and ended.phase is Phase.FAILED


def test_a_job_being_deleted_by_someone_else_is_over_for_the_library_too() -> None:
    info = BatchJobInfo(name=JOB, uid="j-1", state="DELETION_IN_PROGRESS")
    assert info.is_terminal


def test_the_job_id_is_the_last_part_of_its_name() -> None:
    assert remote.job_id(JOB) == "wt-nightly-u1"
    assert batch.submitted(BJOB, REQ, trace_id="t").result == "wt-nightly-u1"
    assert cloudrun.triggered(CRUN, REQ, trace_id="t").result == "wt-sandbox-x1"


def test_a_failed_poll_ends_the_run_only_when_the_job_is_gone_or_refused() -> None:
    crun: dict[str, Any] = {"jobName": "projects/p/locations/r/jobs/j", "executionName": "e"}
    gone = remote.poll_failed(cloudrun.KIND, crun, PermanentSubmissionError("x", code="NOT_FOUND"))
    assert gone is not None and gone.reason is Reason.INVOKER_LOST
    assert gone.cloud_run is not None and gone.cloud_run["state"] == "NOT_FOUND"
    refused = remote.poll_failed(
        cloudrun.KIND, crun, PermanentSubmissionError("denied", code="PERMISSION_DENIED")
    )
    # Before, a Cloud Run refusal escaped the loop and left the run Submitted for good.
    assert refused is not None and refused.phase is Phase.FAILED
    assert refused.reason is Reason.SUBMISSION_REJECTED and refused.cloud_run == crun
    later = TransientSubmissionError("x", code="UNAVAILABLE")
    assert remote.poll_failed(batch.KIND, BJOB, later) is None  # said Retrying, kopf retries
