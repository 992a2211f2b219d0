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
from wt_invokers.cloud_run_jobs import ExecutionInfo, execution_console_url
from wt_operator.api import CloudRunStatus, Phase, Reason
from wt_operator.core.errors import Terminal, Verdict, classify
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition

__all__ = [
    "DELETED",
    "Track",
    "Trigger",
    "cancelled",
    "cancelling",
    "deadline_exceeded",
    "execution_status",
    "observe",
    "resume",
    "trigger_failed",
    "triggered",
]

DELETED = "DELETED"
"""``status.cloudRun.state`` once the run was deleted and its execution stopped."""

_TERMINAL = {
    "SUCCEEDED": (Phase.SUCCEEDED, Reason.SUCCEEDED),
    "FAILED": (Phase.FAILED, Reason.FAILED),
    "CANCELLED": (Phase.CANCELLED, Reason.CANCELLED),
}


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
    name = status.get("executionName", "")
    return Transition(
        Phase.SUBMITTED,
        Reason.SUBMITTED,
        f"started Cloud Run execution {name}",
        result=name.rsplit("/", 1)[-1],
        cloud_run=status,
        workflow_run_id=req.workflow_run_id,
        trace_id=trace_id,
    )


def observe(status: CloudRunStatus, info: ExecutionInfo) -> Transition | None:
    """What a polled execution means: a transition to record, or None when nothing changed."""
    if info.state == status.get("state"):
        return None
    updated = execution_status(status.get("jobName", ""), info)
    ended = _TERMINAL.get(info.state)
    if ended is None:
        return Transition(
            Phase.SUBMITTED,
            Reason.SUBMITTED,
            f"the Cloud Run execution is {info.state}",
            cloud_run=updated,
        )
    phase, reason = ended
    detail = f"; {info.message}" if info.message else ""
    return Transition(
        phase, reason, f"the Cloud Run execution {info.state.lower()}{detail}", cloud_run=updated
    )


def gone(status: CloudRunStatus, exc: BaseException) -> Transition:
    """The recorded execution vanished (deleted behind the operator's back)."""
    return Transition(
        Phase.FAILED,
        Reason.INVOKER_LOST,
        f"the Cloud Run execution is gone: {exc}",
        cloud_run={**status, "state": "NOT_FOUND"},
    )


def deadline_exceeded(status: CloudRunStatus, req: RunRequest) -> Transition:
    state = status.get("state") or "PENDING"
    return Transition(
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        f"activeDeadlineSeconds={req.active_deadline_seconds} exceeded in state {state}; "
        "the Cloud Run execution was cancelled",
        cloud_run=status,
    )


def cancelled(status: CloudRunStatus | None, how: str, *, verb: str = "deleted") -> Transition:
    """The run was deleted (or cancelled) and its execution (if any) has stopped."""
    return Transition(
        Phase.CANCELLED,
        Reason.CANCELLED,
        f"{verb}; {how}",
        cloud_run={**status, "state": DELETED} if status else None,
    )


def cancelling(
    phase: str, status: CloudRunStatus | None, error: str, retry_in: float
) -> Transition:
    """Stopping the execution failed: say so and keep the run (and its finalizer) until it works."""
    return Transition(
        Phase(phase) if phase in set(Phase) else Phase.SUBMITTED,
        Reason.CANCELLING,
        f"the run was deleted but its Cloud Run execution could not be stopped yet ({error}); "
        f"retrying in {retry_in:.0f}s. The run is kept until the execution has stopped.",
        cloud_run=status,
    )
