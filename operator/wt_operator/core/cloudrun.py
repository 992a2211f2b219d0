"""Decisions of a CloudRunJob run: Pending → Submitted → a terminal phase.

Started once per run uid: the execution carries the run's uid in its
environment and the library looks for it before triggering, so a crash
between triggering and recording adopts the execution instead of starting a
second one; a run deleted before its execution was recorded is searched for
the same way and its execution cancelled. A run already ``Submitted`` with an
execution is only tracked. A deleted run keeps
its finalizer until its execution has really stopped (cancelled, ended, or gone).
"""

from __future__ import annotations

import contextlib
import dataclasses

from wt_invokers import PermanentSubmissionError
from wt_invokers.cloud_run_jobs import (
    TERMINAL_EXECUTION_STATES,
    ExecutionInfo,
    execution_console_url,
)
from wt_operator.api import CloudRunStatus, Reason
from wt_operator.core import remote
from wt_operator.core.errors import Terminal, Verdict, classify
from wt_operator.core.remote import DELETED
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition

__all__ = [
    "DELETED",
    "KIND",
    "Track",
    "Trigger",
    "adopted_ended",
    "cancelled",
    "cancelling",
    "deadline_exceeded",
    "execution_status",
    "observe",
    "resume",
    "stopped",
    "trigger_failed",
    "triggered",
]

KIND = remote.Kind(
    thing="Cloud Run execution",
    field="cloud_run",
    first_state="PENDING",
    started="started Cloud Run execution",
    stop_verb="stopped",
    terminal=TERMINAL_EXECUTION_STATES,
    kept_until="the execution has stopped",
)


@dataclasses.dataclass(frozen=True)
class Trigger:
    """No execution recorded yet: trigger (or adopt) it."""


@dataclasses.dataclass(frozen=True)
class Track:
    """An execution is recorded: follow it, reading its state at once (it may have moved on)."""

    execution: CloudRunStatus


def resume(recorded: CloudRunStatus | None) -> Trigger | Track:
    """A run with a recorded execution (an earlier operator triggered it) is only tracked."""
    if recorded and recorded.get("executionName"):
        return Track(execution=recorded)
    return Trigger()


def execution_status(job_name: str, info: ExecutionInfo | None = None) -> CloudRunStatus:
    """``status.cloudRun``: the job, and once known the execution and where to look at it."""
    out: CloudRunStatus = {"jobName": job_name}
    if info is not None:
        out["executionName"] = info.name
        out["executionUid"] = info.uid
        out["state"] = info.state
        # A name Cloud Run would not give: no link rather than a wrong one.
        with contextlib.suppress(ValueError):
            out["consoleUrl"] = execution_console_url(info.name)
        if info.log_uri:
            out["logsUrl"] = info.log_uri
    return out


def trigger_failed(exc: BaseException, job_name: str) -> Verdict:
    """What a failed trigger means; Cloud Run's refusals named as such."""
    match exc:
        case PermanentSubmissionError(code="NOT_FOUND"):
            return Terminal(
                Reason.JOB_NOT_FOUND,
                f"the Cloud Run Job {job_name} does not exist or the operator may not see it; "
                "an admin deploys it beforehand (spec.cloudRun.jobName names it). "
                f"The workflow was not started. ({exc})",
            )
        case PermanentSubmissionError():
            return Terminal(
                Reason.SUBMISSION_REJECTED,
                f"Cloud Run refused to start the job {job_name} ({exc.code}): {exc}",
            )
    return classify(exc)


def triggered(status: CloudRunStatus, req: RunRequest, *, trace_id: str) -> Transition:
    return remote.submitted(KIND, status, status.get("executionName", ""), req, trace_id=trace_id)


def observe(status: CloudRunStatus, info: ExecutionInfo) -> Transition | None:
    """What a polled execution means: a transition to record, or None when nothing changed."""
    updated = execution_status(status.get("jobName", ""), info)
    return remote.observe(KIND, status.get("state"), updated, info.state, info.message)


def adopted_ended(status: CloudRunStatus, info: ExecutionInfo) -> Transition | None:
    """An execution found at trigger that had already ended: its outcome; None to track it."""
    updated = execution_status(status.get("jobName", ""), info)
    return remote.adopted_ended(KIND, updated, info.state, info.message)


def deadline_exceeded(
    status: CloudRunStatus, req: RunRequest, *, error: str | None = None
) -> Transition:
    return remote.deadline_exceeded(KIND, status, req, error=error)


def stopped(
    status: CloudRunStatus | None, *, ended: str | None, job_missing: bool, verb: str
) -> Transition:
    """Cloud Run shows the run's execution stopped: the run is Cancelled.

    ``ended`` is the execution's final state, None when Cloud Run does not know it:
    gone (a recorded one), never started, or its whole Job missing (``job_missing``).
    """
    if ended is not None:
        how = f"its Cloud Run execution is {ended.lower()}"
    elif status and status.get("executionName"):
        how = "its Cloud Run execution is gone"
    elif job_missing:
        how = "its Cloud Run Job does not exist; nothing was started"
    else:
        how = "no execution of it was started"
    return cancelled(status, how, verb=verb)


def cancelled(status: CloudRunStatus | None, how: str, *, verb: str = "deleted") -> Transition:
    """The run was deleted (or cancelled) and its execution (if any) has stopped."""
    return remote.cancelled(KIND, status, how, verb=verb)


def cancelling(
    phase: str, status: CloudRunStatus | None, error: str, retry_in: float, *, verb: str = "deleted"
) -> Transition:
    """Stopping the execution failed: say so and keep the run (and its finalizer) until it works."""
    return remote.cancelling(KIND, phase, status, error, retry_in, verb=verb)
