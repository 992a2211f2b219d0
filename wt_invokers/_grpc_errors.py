"""A Google Cloud gRPC call under a retry policy, and what its failures mean.

Exists because Cloud Batch and Cloud Run Jobs fail the same way (google.api_core
errors carrying a gRPC status) and are retried the same way; only the service's
name in the messages differs, so it is a parameter here rather than a second copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wt_invokers.exceptions import PermanentSubmissionError, TransientSubmissionError
from wt_invokers.retry import RetryPolicy, retry_call

__all__ = [
    "TRANSIENT_CODES",
    "call_retrying",
    "give_up",
    "message_of",
    "status_name",
    "transient_code",
]

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"}
)
"""gRPC codes worth retrying; every other code is permanent (retrying cannot help).

RESOURCE_EXHAUSTED (quota) passes with time. Retrying INTERNAL is safe because every
call is idempotent: a Batch create is keyed by a deterministic job id, a Cloud Run
execution is looked up by its correlation before another is started.
"""


def status_name(exc: BaseException) -> str | None:
    """The gRPC status name of a google.api_core error, or None for other exceptions."""
    from google.api_core import exceptions as gexc

    if not isinstance(exc, gexc.GoogleAPICallError):
        return None
    code = getattr(exc, "grpc_status_code", None)
    name = getattr(code, "name", None)
    return str(name) if name else type(exc).__name__.upper()


def message_of(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def transient_code(service: str, what: str) -> Any:
    """For :func:`~wt_invokers.retry.retry_call`: the code of a retryable failure, else None.

    A permanent gRPC failure is turned into :class:`PermanentSubmissionError` here, so
    callers meet the library's errors only. ``service`` names it in the message
    (``"Cloud Batch"``, ``"Cloud Run"``), ``what`` the call (``"CreateJob"``).
    """

    def classify(exc: BaseException) -> str | None:
        code = status_name(exc)
        if code is None:
            return None
        if code in TRANSIENT_CODES:
            return code
        raise PermanentSubmissionError(
            f"{service} {what} failed with {code}: {message_of(exc)}", code=code
        ) from exc

    return classify


def give_up(service: str, what: str) -> Any:
    """For :func:`~wt_invokers.retry.retry_call`: the error once attempts run out."""

    def build(exc: BaseException, code: str, attempts: int) -> BaseException:
        return TransientSubmissionError(
            f"{service} {what} still failing with {code} after {attempts} attempts: "
            f"{message_of(exc)}",
            code=code,
        )

    return build


async def call_retrying(
    service: str, what: str, call: Callable[[], Awaitable[T]], *, policy: RetryPolicy
) -> T:
    """``call()`` under ``policy``; errors become SubmissionErrors naming ``service``."""
    return await retry_call(
        f"{service} {what}",
        call,
        policy=policy,
        transient=transient_code(service, what),
        give_up=give_up(service, what),
    )
