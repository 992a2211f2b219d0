"""The operator's errors, and the one place where any error becomes a run outcome.

The operator's own exceptions form one tree; the library's (``wt_invokers``)
form another. :func:`classify` maps both — and anything else that escapes
preparing or starting a workflow — to exactly one of two answers:

* :class:`Terminal`: the run ends once, ``Failed`` with a reason and a message a
  user can act on. No retry loop: the same input would fail the same way.
* :class:`Transient`: nothing is decided about the run; the step is tried again
  after a backoff (the clients' retry policies already did the quick retries).

::

    OperatorError                 base of the operator's own errors
    ├── InvalidSpecError          the spec passed the schema but cannot run as written
    ├── ReferenceResolutionError  a Secret/ConfigMap (key) is missing or not readable
    ├── RunGoneError              the WorkflowRun no longer exists (404): nothing to record
    └── KubeApiError              the Kubernetes API refused a request (not transient)
"""

from __future__ import annotations

import dataclasses

from wt_invokers import (
    InstallationError,
    InvocationStartError,
    InvocationTimeoutError,
    InvokerConfigurationError,
    PermanentSubmissionError,
    TransferError,
    TransientSubmissionError,
)
from wt_operator.api import CloudBatchStatus, Phase, Reason
from wt_operator.core.status import Transition

__all__ = [
    "InvalidSpecError",
    "KubeApiError",
    "OperatorError",
    "ReferenceResolutionError",
    "RunGoneError",
    "Terminal",
    "Transient",
    "classify",
]


class OperatorError(Exception):
    """Base of every error the operator raises itself."""


class InvalidSpecError(OperatorError, ValueError):
    """The spec passed the schema but cannot be run as written (message meant for users)."""


class ReferenceResolutionError(OperatorError):
    """A referenced Secret/ConfigMap or key is missing or unreadable (names, never values)."""


class RunGoneError(OperatorError):
    """The WorkflowRun no longer exists: there is nothing left to record."""


class KubeApiError(OperatorError):
    """The Kubernetes API refused a request for a reason retrying cannot fix."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Terminal:
    """Ends the run: phase Failed with this reason and message."""

    reason: Reason
    message: str

    def transition(self, cloud_batch: CloudBatchStatus | None = None) -> Transition:
        """The status change that records it."""
        return Transition(Phase.FAILED, self.reason, self.message, cloud_batch=cloud_batch)


@dataclasses.dataclass(frozen=True)
class Transient:
    """Decides nothing about the run: retry the step later."""

    detail: str


def classify(exc: BaseException) -> Terminal | Transient:
    """The outcome ``exc`` means for a run that was being prepared, started or tracked.

    Unknown exceptions are terminal (``StartFailed``): a bug or an unexpected OS
    error must end the run with a message once, not crash the reconciler and have
    a restarted one claim the operator was lost.
    """
    match exc:
        case InvalidSpecError() | ReferenceResolutionError() | InvokerConfigurationError():
            return Terminal(Reason.INVALID_SPEC, str(exc))
        case InstallationError():
            return Terminal(Reason.NOT_INSTALLED, str(exc))
        case InvocationTimeoutError():
            return Terminal(Reason.DEADLINE_EXCEEDED, str(exc))
        case InvocationStartError():
            return Terminal(Reason.START_FAILED, str(exc))
        case PermanentSubmissionError(code="NOT_FOUND"):
            return Terminal(Reason.INVOKER_LOST, f"the Cloud Batch job is gone: {exc}")
        case PermanentSubmissionError(code="ALREADY_EXISTS"):
            return Terminal(Reason.JOB_CONFLICT, str(exc))
        case PermanentSubmissionError():
            return Terminal(
                Reason.SUBMISSION_REJECTED, f"Cloud Batch refused the job ({exc.code}): {exc}"
            )
        case TransientSubmissionError():
            return Transient(str(exc))
        case TransferError():
            return Terminal(Reason.START_FAILED, f"fetching the environment archive failed: {exc}")
        case OSError():
            return Terminal(Reason.START_FAILED, f"preparing the workflow failed: {exc}")
        case _:
            return Terminal(Reason.START_FAILED, f"unexpected error ({type(exc).__name__}): {exc}")
