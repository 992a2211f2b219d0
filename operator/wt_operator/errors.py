"""The one place where errors become run outcomes.

Every failure the reconciler can meet is either *terminal* (the run fails once,
with a reason and a message a user can act on — no hot retry loop) or
*transient* (retried with backoff, the run stays in its phase). Keeping the
mapping here means a new error type is classified once, not per call site.
"""

from __future__ import annotations

import dataclasses

from wt_invokers import (
    InstallationError,
    InvocationTimeoutError,
    InvokerConfigurationError,
    PermanentSubmissionError,
    TransientSubmissionError,
)
from wt_operator.kube import ReferenceError_
from wt_operator.spec import InvalidSpecError
from wt_operator.status import Reason

__all__ = ["Terminal", "classify"]


@dataclasses.dataclass(frozen=True)
class Terminal:
    """A failure that ends the run: phase Failed with this reason and message."""

    reason: str
    message: str


def classify(exc: BaseException) -> Terminal | None:
    """Terminal outcome for ``exc``, or None when it is transient and worth retrying."""
    match exc:
        case InvalidSpecError() | ReferenceError_() | InvokerConfigurationError():
            return Terminal(Reason.INVALID_SPEC, str(exc))
        case InstallationError():
            return Terminal(Reason.NOT_INSTALLED, str(exc))
        case InvocationTimeoutError():
            return Terminal(Reason.DEADLINE_EXCEEDED, str(exc))
        case PermanentSubmissionError(code="NOT_FOUND"):
            return Terminal(Reason.INVOKER_LOST, f"the Cloud Batch job is gone: {exc}")
        case PermanentSubmissionError():
            return Terminal(
                Reason.SUBMISSION_REJECTED, f"Cloud Batch refused the job ({exc.code}): {exc}"
            )
        case TransientSubmissionError():
            return None
        case _:
            return None
