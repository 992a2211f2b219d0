"""The operator's errors, and the one place where any error becomes a run outcome.

The operator's own exceptions form one tree; the library's (``wt_invokers``)
form another. :func:`classify` maps both — and anything else that escapes
preparing, starting or tracking a workflow — to exactly one of three answers:

* :class:`Terminal`: the run ends once, ``Failed`` with a reason and a message a
  user can act on. No retry loop: the same input would fail the same way.
* :class:`Transient`: nothing is decided about the run; the step is tried again
  after a backoff (the clients' retry policies already did the quick retries, and
  gave up). The run says it is retrying; kopf restarts its reconciler after
  :func:`retry_delay` (``wt_operator.kopf_errors`` is the one place that tells kopf).
* :class:`Gone`: the run no longer exists; there is nothing to record or retry.

No caller overrides a verdict: a step with a policy of its own (a Local start, whose
``Running`` is already recorded) asks a core function that calls :func:`classify`.

::

    OperatorError                 base of the operator's own errors
    ├── InvalidSpecError          the spec passed the schema but cannot run as written
    ├── ReferenceResolutionError  a Secret/ConfigMap (key) is missing or not readable
    ├── RunGoneError              the WorkflowRun no longer exists (404): nothing to record
    ├── InvokerLostError          what ran the run is gone with it (runner restart)
    └── KubeApiError              the Kubernetes API refused a request (after its client's
                                  own retries of 429/5xx/connection errors)

The Kubernetes client (``shell.kube``) raises only these at its boundary: 404 on the
run is :class:`RunGoneError`, 403/404 on a referenced Secret is a
:class:`ReferenceResolutionError`, any other refusal a :class:`KubeApiError` with its
HTTP status, which :func:`classify` judges.
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
from wt_operator.api import CloudBatchStatus, CloudRunStatus, Phase, Reason
from wt_operator.core.status import Transition

__all__ = [
    "Gone",
    "InvalidSpecError",
    "InvokerLostError",
    "KubeApiError",
    "OperatorError",
    "ReferenceResolutionError",
    "RunGoneError",
    "Terminal",
    "Transient",
    "Verdict",
    "classify",
    "retry_delay",
]

RETRY_FIRST_DELAY = 5.0
"""Seconds before the first retry of a step that failed transiently: the client had
already retried for a while (a Batch submission for minutes), so no hot loop."""

_KUBE_TRANSIENT = frozenset({403, 409, 429})
"""Refusals that an admin or time can lift without touching the run: RBAC being granted
(403), a conflicting write (409), throttling beyond the client's patience (429); 5xx
too. Everything else (400, 413, 422, …) is the request itself: it fails the same way
again."""


class OperatorError(Exception):
    """Base of every error the operator raises itself."""


class InvalidSpecError(OperatorError, ValueError):
    """The spec passed the schema but cannot be run as written (message meant for users)."""


class ReferenceResolutionError(OperatorError):
    """A referenced Secret/ConfigMap or key is missing or unreadable (names, never values)."""


class InvokerLostError(OperatorError):
    """What ran the run is gone with it (the runner restarted or stopped answering)."""


class RunGoneError(OperatorError):
    """The WorkflowRun no longer exists: there is nothing left to record."""


class KubeApiError(OperatorError):
    """The Kubernetes API refused a request (``status``: its HTTP status code)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Terminal:
    """Ends the run: phase Failed with this reason and message."""

    reason: Reason
    message: str

    def transition(
        self,
        cloud_batch: CloudBatchStatus | None = None,
        cloud_run: CloudRunStatus | None = None,
    ) -> Transition:
        """The status change that records it."""
        return Transition(
            Phase.FAILED, self.reason, self.message, cloud_batch=cloud_batch, cloud_run=cloud_run
        )


@dataclasses.dataclass(frozen=True)
class Transient:
    """Decides nothing about the run: retry the step later."""

    detail: str

    def transition(self, phase: Phase) -> Transition:
        """What the run says meanwhile: its phase kept, reason ``Retrying`` (a Warning Event)."""
        return Transition(
            phase, Reason.RETRYING, f"{self.detail}; retrying with backoff (the run has not failed)"
        )


@dataclasses.dataclass(frozen=True)
class Gone:
    """The run no longer exists: nothing to record, nothing to retry."""


Verdict = Terminal | Transient | Gone


def retry_delay(retry: int, *, cap: float) -> float:
    """Seconds before retry number ``retry`` (0 first) of a step that failed transiently:
    doubling from :data:`RETRY_FIRST_DELAY`, never above ``cap``
    (``WT_OPERATOR_RETRY_BACKOFF_MAX``)."""
    return float(min(cap, RETRY_FIRST_DELAY * 2 ** min(max(retry, 0), 16)))


def classify(exc: BaseException) -> Verdict:
    """The outcome ``exc`` means for a run that was being prepared, started or tracked.

    Unknown exceptions are terminal (``StartFailed``): a bug or an unexpected OS
    error must end the run with a message once, not crash the reconciler and have
    a restarted one claim the operator was lost.
    """
    match exc:
        case RunGoneError():
            return Gone()
        case KubeApiError(status=status) if status in _KUBE_TRANSIENT or status >= 500:
            return Transient(f"the Kubernetes API refused a request ({status}): {exc}")
        case KubeApiError(status=status):
            return Terminal(
                Reason.START_FAILED, f"the Kubernetes API refused a request ({status}): {exc}"
            )
        case InvalidSpecError() | ReferenceResolutionError() | InvokerConfigurationError():
            return Terminal(Reason.INVALID_SPEC, str(exc))
        case InstallationError():
            return Terminal(Reason.NOT_INSTALLED, str(exc))
        case InvokerLostError():
            return Terminal(Reason.INVOKER_LOST, str(exc))
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
