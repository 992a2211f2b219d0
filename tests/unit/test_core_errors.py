"""``core.errors.classify``: every error the operator meets, and the one verdict it gets."""

from __future__ import annotations

import pytest

from wt_invokers import (
    InstallationError,
    InvocationStartError,
    InvocationTimeoutError,
    InvokerConfigurationError,
    PermanentSubmissionError,
    TransferError,
    TransientSubmissionError,
)
from wt_operator.api import Phase, Reason
from wt_operator.core.errors import (
    Gone,
    InvalidSpecError,
    InvokerLostError,
    KubeApiError,
    ReferenceResolutionError,
    RunGoneError,
    Terminal,
    Transient,
    classify,
    retry_delay,
)
from wt_operator.shell.kube import HttpError
from wt_operator.shell.runner_connection import RunnerUnavailableError

# (exception, verdict, reason for a Terminal, a piece of the message or detail)
TABLE: list[tuple[BaseException, type, Reason | None, str]] = [
    (InvalidSpecError("env[0].name is reserved"), Terminal, Reason.INVALID_SPEC, "reserved"),
    (ReferenceResolutionError("Secret 'x' not found"), Terminal, Reason.INVALID_SPEC, "'x'"),
    (InvokerConfigurationError("no workflow"), Terminal, Reason.INVALID_SPEC, "no workflow"),
    (InstallationError("no pixi"), Terminal, Reason.NOT_INSTALLED, "no pixi"),
    (InvokerLostError("the runner restarted"), Terminal, Reason.INVOKER_LOST, "restarted"),
    (InvocationTimeoutError("too slow"), Terminal, Reason.DEADLINE_EXCEEDED, "too slow"),
    (InvocationStartError("E2BIG"), Terminal, Reason.START_FAILED, "E2BIG"),
    # No runner to start a new run: said at once, not retried (README: "fails at once").
    (RunnerUnavailableError("not reachable"), Terminal, Reason.START_FAILED, "not reachable"),
    (
        PermanentSubmissionError("no such job", code="NOT_FOUND"),
        Terminal,
        Reason.INVOKER_LOST,
        "the Cloud Batch job is gone",
    ),
    (PermanentSubmissionError("taken", code="ALREADY_EXISTS"), Terminal, Reason.JOB_CONFLICT, ""),
    (
        PermanentSubmissionError("denied", code="PERMISSION_DENIED"),
        Terminal,
        Reason.SUBMISSION_REJECTED,
        "Cloud Batch refused the job (PERMISSION_DENIED)",
    ),
    (TransferError("404 on the archive"), Terminal, Reason.START_FAILED, "environment archive"),
    (OSError(28, "No space left on device"), Terminal, Reason.START_FAILED, "No space left"),
    (LookupError("a bug"), Terminal, Reason.START_FAILED, "unexpected error (LookupError)"),
    (
        TransientSubmissionError("UNAVAILABLE after 10 attempts", code="UNAVAILABLE"),
        Transient,
        None,
        "after 10 attempts",
    ),
    # The Kubernetes API, after its client's own retries of 429/5xx/connection errors.
    (KubeApiError("RBAC", status=403), Transient, None, "(403)"),
    (KubeApiError("conflict", status=409), Transient, None, "(409)"),
    (KubeApiError("throttled", status=429), Transient, None, "(429)"),
    (KubeApiError("etcd", status=500), Transient, None, "(500)"),
    (KubeApiError("bad request", status=400), Terminal, Reason.START_FAILED, "(400)"),
    (KubeApiError("too long", status=422), Terminal, Reason.START_FAILED, "(422)"),
    # What the Kubernetes client raises where a caller does not translate it (schedules).
    (HttpError(403, "Forbidden", b'{"message": "no RBAC"}'), Transient, None, "no RBAC"),
    (HttpError(422, "Invalid", b""), Terminal, Reason.START_FAILED, "(422)"),
    (RunGoneError("team-a/nightly"), Gone, None, ""),
]


@pytest.mark.parametrize(
    ("error", "verdict", "reason", "text"), TABLE, ids=[repr(row[0]) for row in TABLE]
)
def test_every_error_has_one_verdict(
    error: BaseException, verdict: type, reason: Reason | None, text: str
) -> None:
    got = classify(error)
    assert type(got) is verdict
    if isinstance(got, Terminal):
        assert got.reason == reason
        assert text in got.message
    elif isinstance(got, Transient):
        assert text in got.detail


def test_a_transient_error_keeps_the_phase_and_says_the_run_has_not_failed() -> None:
    verdict = classify(TransientSubmissionError("UNAVAILABLE", code="UNAVAILABLE"))
    assert isinstance(verdict, Transient)
    t = verdict.transition(Phase.PENDING)
    assert (t.phase, t.reason, t.terminal, t.warning) == (
        Phase.PENDING,
        Reason.RETRYING,
        False,
        True,
    )
    assert t.message == "UNAVAILABLE; retrying with backoff (the run has not failed)"


@pytest.mark.parametrize(
    ("retry", "cap", "delay"),
    [
        (0, 60.0, 5.0),
        (1, 60.0, 10.0),
        (3, 60.0, 40.0),
        (4, 60.0, 60.0),
        (99, 60.0, 60.0),
        (0, 0.1, 0.1),
        (-1, 60.0, 5.0),
    ],
)
def test_retries_back_off_to_the_cap(retry: int, cap: float, delay: float) -> None:
    assert retry_delay(retry, cap=cap) == delay


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermanentSubmissionError("no", code="PERMISSION_DENIED"), Reason.SUBMISSION_REJECTED),
        (PermanentSubmissionError("gone", code="NOT_FOUND"), Reason.INVOKER_LOST),
        (PermanentSubmissionError("taken", code="ALREADY_EXISTS"), Reason.JOB_CONFLICT),
        (InstallationError("pixi not found"), Reason.NOT_INSTALLED),
        (InvokerConfigurationError("bad url"), Reason.INVALID_SPEC),
        (InvalidSpecError("bad spec"), Reason.INVALID_SPEC),
        (InvocationStartError("E2BIG"), Reason.START_FAILED),
        (NotADirectoryError(20, "Not a directory"), Reason.START_FAILED),
        (RuntimeError("bug"), Reason.START_FAILED),
    ],
)
def test_errors_are_classified_in_one_place(error: BaseException, expected: Reason) -> None:
    verdict = classify(error)
    assert isinstance(verdict, Terminal) and verdict.reason == expected


def test_transient_errors_decide_nothing() -> None:
    assert isinstance(classify(TransientSubmissionError("later", code="UNAVAILABLE")), Transient)
