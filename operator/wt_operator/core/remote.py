"""Decisions shared by the two remote invokers (a Batch job, a Cloud Run execution).

Both follow the same machine: submit or adopt a remote job once per run uid,
poll it until it ends or the deadline passes (then cancel it), and on a stop
that cancels, stop it until the service confirms. What differs is declarative:
the words (:class:`Kind`), which ``status`` field holds the job, its first state.
Every text the two runners record is built here, so a reader finds a message
(and a test can list them all) without reading the loops that record them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from wt_invokers import PermanentSubmissionError
from wt_operator.api import Phase, Reason
from wt_operator.core.errors import Terminal, classify
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition

__all__ = [
    "DELETED",
    "Kind",
    "adopted_ended",
    "cancelled",
    "cancelling",
    "deadline_exceeded",
    "job_id",
    "next_poll",
    "observe",
    "poll_failed",
    "submitted",
    "unowned_invalid",
]

DELETED = "DELETED"
"""The job's recorded ``state`` once the run was stopped and its job is gone or stopped
(neither service has such a state)."""

_OUTCOMES = {
    "SUCCEEDED": (Phase.SUCCEEDED, Reason.SUCCEEDED),
    "FAILED": (Phase.FAILED, Reason.FAILED),
    "CANCELLED": (Phase.CANCELLED, Reason.CANCELLED),
}
"""What an ended job means for its run; any other end state (a Batch job being
deleted behind the operator's back) means the run's invoker is lost."""


@dataclasses.dataclass(frozen=True)
class Kind:
    """What differs between the remote invokers: words, the status field, the first state."""

    thing: str
    """How messages name the job: ``Batch job``, ``Cloud Run execution``."""
    field: str
    """The :class:`Transition` field that records the job: ``cloud_batch`` or ``cloud_run``."""
    first_state: str
    """The state a job is assumed in before it was ever read (``QUEUED``, ``PENDING``)."""
    started: str
    """How the Submitted message begins: ``submitted Cloud Batch job``."""
    stop_verb: str
    """What stopping the job is called when a run is stopped: ``deleted``, ``stopped``."""
    terminal: frozenset[str]
    """The service's states after which the job does nothing more (the library's table)."""
    kept_until: str
    """Until when a run whose job could not be stopped is kept: ``the job is gone``."""


def _with(
    kind: Kind, job: Any, phase: Phase, reason: Reason, message: str, **rest: Any
) -> Transition:
    return Transition(phase, reason, message, **{kind.field: job}, **rest)


def job_id(name: str) -> str:
    """The short id at the end of a job's or execution's full resource name."""
    return name.rsplit("/", 1)[-1]


def next_poll(interval: float, remaining: float | None) -> float:
    """Seconds until the next poll: the interval, cut short by activeDeadlineSeconds."""
    return interval if remaining is None else min(interval, remaining)


def submitted(kind: Kind, job: Any, name: str, req: RunRequest, *, trace_id: str) -> Transition:
    """The job exists (submitted now, or adopted after a crash): the run is Submitted."""
    return _with(
        kind,
        job,
        Phase.SUBMITTED,
        Reason.SUBMITTED,
        f"{kind.started} {name}",
        result=job_id(name),
        workflow_run_id=req.workflow_run_id,
        trace_id=trace_id,
    )


def _moved(kind: Kind, updated: Any, state: str, detail: str) -> Transition:
    if state not in kind.terminal:
        return _with(
            kind, updated, Phase.SUBMITTED, Reason.SUBMITTED, f"the {kind.thing} is {state}"
        )
    phase, reason = _OUTCOMES.get(state, (Phase.FAILED, Reason.INVOKER_LOST))
    more = f"; {detail}" if detail else ""
    return _with(kind, updated, phase, reason, f"the {kind.thing} {state.lower()}{more}")


def observe(
    kind: Kind, recorded_state: str | None, updated: Any, state: str, detail: str
) -> Transition | None:
    """What a polled state means: a transition to record, or None when nothing changed."""
    if state == recorded_state:
        return None
    return _moved(kind, updated, state, detail)


def adopted_ended(kind: Kind, updated: Any, state: str, detail: str) -> Transition | None:
    """A job adopted at submit: its outcome when it had already ended, else None (track it)."""
    if state not in kind.terminal:
        return None
    return _moved(kind, updated, state, detail)


def deadline_exceeded(kind: Kind, job: Any, req: RunRequest, *, error: str | None) -> Transition:
    """The deadline passed: the job was cancelled, or (``error``) could not be.

    The service enforces the deadline itself too (Batch's max_run_duration, Cloud
    Run's timeout), except in Batch's queue, so a failed cancel is said, not retried.
    """
    state = (job or {}).get("state") or kind.first_state
    done = f"could not be cancelled ({error})" if error is not None else "was cancelled"
    return _with(
        kind,
        job,
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        f"activeDeadlineSeconds={req.active_deadline_seconds} exceeded in state {state}; "
        f"the {kind.thing} {done}",
    )


def cancelled(kind: Kind, job: Any, how: str, *, verb: str) -> Transition:
    """The run was deleted (or cancelled: ``verb``) and its job, if any, is gone or stopped."""
    return _with(
        kind,
        {**job, "state": DELETED} if job else None,
        Phase.CANCELLED,
        Reason.CANCELLED,
        f"{verb}; {how}",
    )


def cancelling(
    kind: Kind, phase: str, job: Any, error: str, retry_in: float, *, verb: str
) -> Transition:
    """Stopping the job failed: say so and keep the run (and its finalizer) until it works."""
    return _with(
        kind,
        job,
        Phase(phase) if phase in set(Phase) else Phase.SUBMITTED,
        Reason.CANCELLING,
        f"the run was {verb} but its {kind.thing} could not be {kind.stop_verb} yet ({error}); "
        f"retrying in {retry_in:.0f}s. The run is kept until {kind.kept_until}.",
    )


def poll_failed(kind: Kind, job: Any, exc: BaseException) -> Transition | None:
    """A poll that failed past the client's retries: the run's end when the job is gone or
    the service refuses for good (``classify``); None when it is worth trying again later
    (the reconciler then says ``Retrying`` and kopf retries it)."""
    if isinstance(exc, PermanentSubmissionError) and exc.code == "NOT_FOUND":
        return _with(
            kind,
            {**job, "state": "NOT_FOUND"},
            Phase.FAILED,
            Reason.INVOKER_LOST,
            f"the {kind.thing} is gone: {exc}",
        )
    verdict = classify(exc)
    if isinstance(verdict, Terminal):
        return verdict.transition(**{kind.field: job})
    return None


def unowned_invalid(kind: Kind, error: str) -> Transition:
    """A run deleted while no operator owned it, whose spec is invalid: nothing was started."""
    return cancelled(
        kind,
        None,
        f"no operator was reconciling it and nothing was started ({error})",
        verb="deleted",
    )
