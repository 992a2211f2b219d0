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

from wt_invokers.cloud_batch import (
    TERMINAL_JOB_STATES,
    BatchJobInfo,
    job_logs_query,
    job_logs_url,
)
from wt_operator.api import CloudBatchStatus
from wt_operator.core import remote
from wt_operator.core.remote import DELETED, job_id
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition

__all__ = [
    "DELETED",
    "KIND",
    "Submit",
    "Track",
    "adopted_ended",
    "cancelled",
    "cancelling",
    "deadline_exceeded",
    "deleted",
    "job_id",
    "job_status",
    "next_poll",
    "observe",
    "resume",
    "submitted",
]

KIND = remote.Kind(
    thing="Batch job",
    field="cloud_batch",
    first_state="QUEUED",
    started="submitted Cloud Batch job",
    stop_verb="deleted",
    terminal=TERMINAL_JOB_STATES,
    kept_until="the job is gone",
)
next_poll = remote.next_poll


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
    return remote.submitted(KIND, job, job.get("jobName", ""), req, trace_id=trace_id)


def _updated(job: CloudBatchStatus, info: BatchJobInfo) -> CloudBatchStatus:
    return job_status(
        job.get("jobName", info.name), uid=info.uid or job.get("jobUid", ""), state=info.state
    )


def observe(job: CloudBatchStatus, info: BatchJobInfo) -> Transition | None:
    """What a polled job state means: a transition to record, or None when nothing changed."""
    return remote.observe(KIND, job.get("state"), _updated(job, info), info.state, info.last_event)


def adopted_ended(job: CloudBatchStatus, info: BatchJobInfo) -> Transition | None:
    """A job found at submit that had already ended: its outcome; None when it is to be tracked."""
    return remote.adopted_ended(KIND, _updated(job, info), info.state, info.last_event)


def deadline_exceeded(
    job: CloudBatchStatus, req: RunRequest, *, error: str | None = None
) -> Transition:
    return remote.deadline_exceeded(KIND, job, req, error=error)


def deleted(job: CloudBatchStatus | None, name: str, *, verb: str) -> Transition:
    """Batch confirmed the delete (NOT_FOUND counts): the run is Cancelled.

    With no job recorded a create may still have been stored unseen, so the job was
    deleted by the name derived from the run's uid.
    """
    if job:
        return cancelled(job, "the Batch job was deleted", verb=verb)
    return cancelled(
        job_status(name, state=""),
        "no job was recorded; any job under its name was deleted",
        verb=verb,
    )


def cancelled(job: CloudBatchStatus | None, how: str, *, verb: str = "deleted") -> Transition:
    """The run was deleted (or cancelled) and its job (if any) is really gone."""
    return remote.cancelled(KIND, job, how, verb=verb)


def cancelling(
    phase: str, job: CloudBatchStatus | None, error: str, retry_in: float, *, verb: str = "deleted"
) -> Transition:
    """Deleting the job failed: say so and keep the run (and its finalizer) until it works."""
    return remote.cancelling(KIND, phase, job, error, retry_in, verb=verb)
