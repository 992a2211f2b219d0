"""``core/local.py``: the status text of every Local outcome, in one table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.samples import LOCAL
from wt_invokers import InvocationStartError, TransientSubmissionError
from wt_operator.api import Phase, Reason
from wt_operator.core import local
from wt_operator.core.errors import InvokerLostError, Terminal
from wt_operator.core.local import Exited, Stopped, TimedOut
from wt_operator.core.spec import RunRequest, parse_spec
from wt_operator.core.status import Transition
from wt_operator.core.stopping import Stopping

SPEC: dict[str, Any] = {
    "workflow": "wt-sample-workflow >=1.2",
    "invoker": "Local",
    "resultsUrl": "file:///tmp/results/",
    "activeDeadlineSeconds": 60,
}


def request() -> RunRequest:
    return parse_spec(SPEC, uid="0b5f3c4e-uid")


REQ = request()
TABLE: list[tuple[str, Transition, Phase, Reason, str]] = [
    (
        "queued",
        local.queued(2),
        Phase.QUEUED,
        Reason.QUEUED,
        "waiting for a free local slot (limit 2)",
    ),
    (
        "deadline while queued",
        local.deadline_while_queued(REQ),
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        "activeDeadlineSeconds=60 passed while the run was queued",
    ),
    (
        "not installed",
        local.not_installed(REQ, "/workspace"),
        Phase.FAILED,
        Reason.NOT_INSTALLED,
        "no package matching 'wt-sample-workflow >=1.2' is installed in environment "
        "'default' of the operator's workspace /workspace",
    ),
    (
        "running",
        local.running(REQ, trace_id="t"),
        Phase.RUNNING,
        Reason.RUNNING,
        "running wt-sample-workflow >=1.2 locally",
    ),
    (
        "lost, orphan killed",
        local.lost(2),
        Phase.FAILED,
        Reason.INVOKER_LOST,
        "the operator restarted while this run was in flight; its process was still there "
        "and has been killed. Create a new WorkflowRun to run it again.",
    ),
    (
        "lost, spec unreadable",
        local.lost_spec_unreadable(0, ValueError("Secret 'tok' not found")),
        Phase.FAILED,
        Reason.INVOKER_LOST,
        "the operator restarted while this run was in flight and its spec can no longer be "
        "read (Secret 'tok' not found); its process is gone. Create a new WorkflowRun to run "
        "it again.",
    ),
    (
        "lost, runner unreachable",
        local.lost_runner_unreachable(OSError("connection refused")),
        Phase.FAILED,
        Reason.INVOKER_LOST,
        "the operator restarted while this run was in flight and the runner is unreachable "
        "(connection refused); its process is gone. Create a new WorkflowRun to run it again.",
    ),
    (
        "survivors of a cancel",
        local.survivors({42, 7}),
        Phase.RUNNING,
        Reason.CANCELLING,
        "deleted; process(es) [7, 42] of the run survived SIGKILL; retrying. The run is "
        "kept until they are gone.",
    ),
    (
        "exited 0",
        local.outcome(Exited(0), REQ, tail=""),
        Phase.SUCCEEDED,
        Reason.SUCCEEDED,
        "the workflow exited with 0",
    ),
    (
        "exited 3 with output",
        local.outcome(Exited(3), REQ, tail="boom"),
        Phase.FAILED,
        Reason.FAILED,
        "the workflow exited with 3\nlast output:\nboom",
    ),
    (
        "killed by a signal",
        local.outcome(Exited(-9), REQ, tail=""),
        Phase.FAILED,
        Reason.FAILED,
        "the workflow was killed by signal 9 (SIGKILL)",
    ),
    (
        "timed out",
        local.outcome(TimedOut(), REQ, tail=""),
        Phase.FAILED,
        Reason.DEADLINE_EXCEEDED,
        "activeDeadlineSeconds=60 exceeded; the workflow's process tree was killed",
    ),
    (
        "deleted",
        local.outcome(Stopped(Stopping.DELETED), REQ, tail=""),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "deleted while running; the process tree was killed",
    ),
    (
        "cancelled",
        local.outcome(Stopped(Stopping.CANCELLED), REQ, tail=""),
        Phase.CANCELLED,
        Reason.CANCELLED,
        "cancelled (spec.cancel) while running; the process tree was killed",
    ),
    (
        "operator stopped",
        local.outcome(Stopped(Stopping.OPERATOR), REQ, tail=""),
        Phase.FAILED,
        Reason.INVOKER_LOST,
        "the operator stopped while this run was in flight; its process tree was killed",
    ),
    (
        "start failed",
        local.outcome(local.failed(InvocationStartError("E2BIG")), REQ, tail=""),
        Phase.FAILED,
        Reason.START_FAILED,
        "E2BIG",
    ),
]


@pytest.mark.parametrize(
    ("case", "t", "phase", "reason", "message"), TABLE, ids=[row[0] for row in TABLE]
)
def test_each_outcome_has_its_text(
    case: str, t: Transition, phase: Phase, reason: Reason, message: str
) -> None:
    assert (t.phase, t.reason, t.message) == (phase, reason, message)


def test_a_deletion_while_queued_is_cancelled_and_an_operator_stop_records_nothing() -> None:
    deleted = local.stopped_while_queued(Stopping.DELETED)
    assert deleted is not None and deleted.message == "deleted while queued"
    assert local.stopped_while_queued(Stopping.OPERATOR) is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (InvocationStartError("E2BIG"), Reason.START_FAILED),
        (InvokerLostError("the runner stopped answering"), Reason.INVOKER_LOST),
        # Running is recorded before the start: even a transient error ends the run here.
        (TransientSubmissionError("UNAVAILABLE", code="UNAVAILABLE"), Reason.START_FAILED),
    ],
)
def test_a_start_or_follow_that_fails_is_final(error: BaseException, reason: Reason) -> None:
    verdict = local.failed(error)
    assert isinstance(verdict, Terminal)
    assert verdict.reason == reason
    assert str(error) in verdict.message


@pytest.mark.parametrize(
    ("code", "message", "recorded"),
    [
        (3, "the workflow exited with 3", 3),
        (-15, "the workflow was killed by signal 15 (SIGTERM)", 143),
        (-9, "the workflow was killed by signal 9 (SIGKILL)", 137),
    ],
)
def test_a_signal_killed_workflow_says_so_and_records_128_plus_n(
    code: int, message: str, recorded: int
) -> None:
    # The library returns -N for death by signal N (upstream's convention); status.exitCode
    # stays a shell's 128+N, never negative, and the message names the signal.
    req = parse_spec(LOCAL, uid="u-1")
    t = local.outcome(local.Exited(code), req, tail="")
    assert (t.phase, t.message, t.exit_code, t.result) == (
        Phase.FAILED,
        message,
        recorded,
        str(recorded),
    )
