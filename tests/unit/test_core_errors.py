"""`core/errors.py`: every error is classified in one place, terminal or transient."""

from __future__ import annotations

import pytest

from wt_invokers import (
    InstallationError,
    InvocationStartError,
    InvokerConfigurationError,
    PermanentSubmissionError,
    TransientSubmissionError,
)
from wt_operator.api import Reason
from wt_operator.core.errors import InvalidSpecError, Terminal, Transient, classify


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
