"""Decisions of a CloudBatch run: Pending → Submitted → a terminal phase.

Idempotent by construction: the job id derives from the run's uid and a job
found under it is adopted only when its ``wt-run-uid`` label says it is this
run's, so a crash between submitting and recording can neither create a second
job nor make a copied manifest report another run's job. A run already
``Submitted`` is only tracked. A deleted run keeps its finalizer until its job
is really deleted (NOT_FOUND counts): a failed delete is recorded and retried,
never reported as done.
"""

from __future__ import annotations

import dataclasses

from wt_invokers.cloud_batch import BatchJobInfo, job_logs_query, job_logs_url
from wt_operator.api import CloudBatchStatus, Phase, Reason
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition

__all__ = [
    "DELETED",
    "Submit",
    "Track",
    "cancelled",
    "cancelling",
    "deadline_exceeded",
    "job_status",
    "next_poll",
    "observe",
    "resume",
    "submitted",
]

DELETED = "DELETED"
"""``status.cloudBatch.state`` once the operator deleted the job (Batch has no such state)."""

_TERMINAL = {
    "SUCCEEDED": (Phase.SUCCEEDED, Reason.SUCCEEDED),
    "FAILED": (Phase.FAILED, Reason.FAILED),
    "DELETION_IN_PROGRESS": (Phase.FAILED, Reason.INVOKER_LOST),
    "CANCELLED": (Phase.CANCELLED, Reason.CANCELLED),
}


@dataclasses.dataclass(frozen=True)
class Submit:
    """No job recorded yet: submit (or adopt) it."""


@dataclasses.dataclass(frozen=True)
class Track:
    """A job is recorded: follow it, reading its state at once (it may have moved on)."""

    job: CloudBatchStatus


def resume(job: CloudBatchStatus | None) -> Submit | Track:
    """A run with a recorded job (an earlier operator submitted it) is only tracked."""
    if job and job.get("jobName"):
        return Track(job=job)
    return Submit()


def job_status(name: str, *, uid: str = "", state: str = "QUEUED") -> CloudBatchStatus:
    """``status.cloudBatch`` for a job: identity, state, and where its logs are."""
    job: CloudBatchStatus = {"jobName": name, "jobUid": uid, "state": state}
    parts = name.split("/")
    if len(parts) == 6:
        job["logsUrl"] = job_logs_url(name)
        if uid:
            job["logsQuery"] = job_logs_query(parts[1], uid)
    return job


def submitted(job: CloudBatchStatus, req: RunRequest, *, trace_id: str) -> Transition:
    name = job.get("jobName", "")
    return Transition(
        Phase.SUBMITTED,
        Reason.SUBMITTED,
        f"submitted Cloud Batch job {name}",
        result=name.rsplit("/", 1)[-1],
        cloud_batch=job,
        workflow_run_id=req.workflow_run_id,
        trace_id=trace_id,
    )


def observe(job: CloudBatchStatus, info: BatchJobInfo) -> Transition | None:
    """What a polled job state means: a transition to record, or None when nothing changed."""
    if info.state == job.get("state"):
        return None
    updated = job_status(
        job.get("jobName", info.name), uid=info.uid or job.get("jobUid", ""), state=info.state
    )
    ended = _TERMINAL.get(info.state)
    if ended is None:
        return Transition(
            Phase.SUBMITTED,
            Reason.SUBMITTED,
            f"the Batch job is {info.state}",
            cloud_batch=updated,
        )
    phase, reason = ended
    detail = f"; {info.last_event}" if info.last_event else ""
    return Transition(
        phase, reason, f"the Batch job {info.state.lower()}{detail}", cloud_batch=updated
    )


def next_poll(interval: float, remaining: float | None) -> float:
    """Seconds until the next poll: the interval, cut short by activeDeadlineSeconds."""
    return interval if remaining is None else min(interval, remaining)


def deadline_exceeded(job: CloudBatchStatus, req: RunRequest) -> Transition:
    state = job.get("state") or "QUEUED"
    return Transition(
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        f"activeDeadlineSeconds={req.active_deadline_seconds} exceeded in state {state}; "
        "the Batch job was cancelled",
        cloud_batch=job,
    )


def cancelled(job: CloudBatchStatus | None, how: str, *, verb: str = "deleted") -> Transition:
    """The run was deleted (or cancelled) and its job (if any) is really gone."""
    return Transition(
        Phase.CANCELLED,
        Reason.CANCELLED,
        f"{verb}; {how}",
        cloud_batch={**job, "state": DELETED} if job else None,
    )


def cancelling(phase: str, job: CloudBatchStatus | None, error: str, retry_in: float) -> Transition:
    """Deleting the job failed: say so and keep the run (and its finalizer) until it works."""
    return Transition(
        Phase(phase) if phase in set(Phase) else Phase.SUBMITTED,
        Reason.CANCELLING,
        f"the run was deleted but its Batch job could not be deleted yet ({error}); "
        f"retrying in {retry_in:.0f}s. The run is kept until the job is gone.",
        cloud_batch=job,
    )
