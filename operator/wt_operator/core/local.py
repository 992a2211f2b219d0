"""Decisions of a Local run: Pending → (Queued →) Running → a terminal phase.

At most once: ``Running`` is recorded *before* the process starts, so a
reconciler that finds ``Running`` without a process of its own knows the
process died with its predecessor: the run fails ``InvokerLost`` and is never
started a second time.
"""

from __future__ import annotations

import dataclasses
import enum
import signal

from wt_operator.api import Phase, Reason
from wt_operator.core.errors import Terminal, Transient, classify
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition
from wt_operator.core.stopping import Stopping

__all__ = [
    "Exited",
    "LocalOutcome",
    "Resume",
    "Stopped",
    "TimedOut",
    "deadline_while_queued",
    "failed",
    "lost",
    "lost_runner_unreachable",
    "lost_spec_unreadable",
    "not_installed",
    "outcome",
    "queued",
    "resume",
    "running",
    "stopped_while_queued",
    "survivors",
]


class Resume(enum.Enum):
    """What a reconciler does with a Local run it picks up."""

    START = "start"
    """Not started yet (Pending, Queued): prepare and start it."""
    LOST = "lost"
    """``Running`` without a process here: its process died with an earlier operator."""


def resume(phase: str) -> Resume:
    return Resume.LOST if phase == Phase.RUNNING else Resume.START


def lost(killed: int, *, why: str | None = None) -> Transition:
    """A run whose process belonged to an operator process (or runner) that is gone."""
    state = "was still there and has been killed" if killed else "is gone"
    cause = f" and {why}" if why else ""
    return Transition(
        Phase.FAILED,
        Reason.INVOKER_LOST,
        f"the operator restarted while this run was in flight{cause}; its process {state}. "
        "Create a new WorkflowRun to run it again.",
    )


def lost_spec_unreadable(killed: int, error: BaseException) -> Transition:
    """Found ``Running`` after a restart, but its spec (or its Secrets) can no longer be read:
    it cannot be followed with its output masked, so it is ended."""
    return lost(killed, why=f"its spec can no longer be read ({error})")


def lost_runner_unreachable(error: BaseException) -> Transition:
    """Found ``Running`` after a restart while the runner that holds it does not answer:
    said at once, never a hang (nothing could be killed from here)."""
    return lost(0, why=f"the runner is unreachable ({error})")


def failed(error: BaseException) -> Terminal:
    """Starting or following the process failed. Final even when :func:`classify` calls it
    transient: ``Running`` is already recorded, so a retried reconciler would find the run
    Running with no process of its own and end it ``InvokerLost`` with a vaguer message."""
    verdict = classify(error)
    if isinstance(verdict, Terminal):
        return verdict
    detail = verdict.detail if isinstance(verdict, Transient) else str(error)
    return Terminal(Reason.START_FAILED, detail)


def survivors(pids: set[int]) -> Transition:
    """Cancelled, but processes of the run outlived SIGKILL: the run (and its finalizer)
    stays until they are gone; said once, while the kill is retried."""
    return Transition(
        Phase.RUNNING,
        Reason.CANCELLING,
        f"deleted; process(es) {sorted(pids)} of the run survived SIGKILL; "
        "retrying. The run is kept until they are gone.",
    )


def not_installed(req: RunRequest, workspace: str) -> Transition:
    return Transition(
        Phase.FAILED,
        Reason.NOT_INSTALLED,
        f"no package matching {req.workflow!r} is installed in environment "
        f"{req.environment!r} of the operator's workspace {workspace}",
    )


def queued(limit: int) -> Transition:
    return Transition(Phase.QUEUED, Reason.QUEUED, f"waiting for a free local slot (limit {limit})")


def deadline_while_queued(req: RunRequest) -> Transition:
    return Transition(
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        f"activeDeadlineSeconds={req.active_deadline_seconds} passed while the run was queued",
    )


def stopped_while_queued(why: Stopping) -> Transition | None:
    """Deleted while queued: Cancelled. An operator leaving a queued run: nothing (the
    next operator takes it over, since nothing was started)."""
    if why.cancels:
        return Transition(Phase.CANCELLED, Reason.CANCELLED, f"{why.verb} while queued")
    return None


def running(req: RunRequest, *, trace_id: str) -> Transition:
    return Transition(
        Phase.RUNNING,
        Reason.RUNNING,
        f"running {req.workflow} locally",
        workflow_run_id=req.workflow_run_id,
        trace_id=trace_id,
    )


@dataclasses.dataclass(frozen=True)
class Exited:
    """The workflow exited with ``code``, as the library returns it (-N: killed by signal N)."""

    code: int


@dataclasses.dataclass(frozen=True)
class TimedOut:
    """activeDeadlineSeconds passed; its process tree was killed."""


@dataclasses.dataclass(frozen=True)
class Stopped:
    """The reconciler was stopped while the workflow ran; its process tree was killed."""

    why: Stopping


LocalOutcome = Exited | TimedOut | Stopped | Terminal
"""How a started run ended; a :class:`Terminal` when starting it failed."""


def exit_message(code: int) -> tuple[str, int]:
    """What a non-zero exit code says, and the code to record (128+N for signal N, as shells
    and Kubernetes report it: ``status.exitCode`` is never negative)."""
    if code >= 0:
        return f"the workflow exited with {code}", code
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"the workflow was killed by signal {-code}{name}", 128 - code


def outcome(result: LocalOutcome, req: RunRequest, *, tail: str) -> Transition:
    """The terminal transition for how the run ended; ``tail`` is its masked last output."""
    match result:
        case Exited(code=0):
            return Transition(
                Phase.SUCCEEDED, Reason.SUCCEEDED, "the workflow exited with 0", 0, "0"
            )
        case Exited(code=code):
            message, code = exit_message(code)
            if tail:
                message += f"\nlast output:\n{tail}"
            return Transition(Phase.FAILED, Reason.FAILED, message, code, str(code))
        case TimedOut():
            return Transition(
                Phase.FAILED,
                Reason.DEADLINE_EXCEEDED,
                f"activeDeadlineSeconds={req.active_deadline_seconds} exceeded; "
                "the workflow's process tree was killed",
            )
        case Stopped(why=why) if why.cancels:
            return Transition(
                Phase.CANCELLED,
                Reason.CANCELLED,
                f"{why.verb} while running; the process tree was killed",
            )
        case Stopped():
            return Transition(
                Phase.FAILED,
                Reason.INVOKER_LOST,
                "the operator stopped while this run was in flight; its process tree was killed",
            )
        case Terminal(reason=reason, message=message):
            return Transition(Phase.FAILED, reason, message)
    raise AssertionError(f"unknown outcome {result!r}")  # pragma: no cover - exhaustive
