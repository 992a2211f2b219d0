"""The one place where an error reaches kopf: a verdict of ``core.errors`` as kopf's error.

Exists so the rule "Transient means: try again later, with backoff" is carried out once
for every handler and daemon, instead of each letting exceptions escape and relying on
kopf's fixed 60 s default. Core must not import kopf, so this edge module does the
translation; handlers wear :func:`kopf_errors` as a decorator (one line each).

What kopf then does, per verdict of :func:`~wt_operator.core.errors.classify`:

* ``Transient``: :class:`kopf.TemporaryError` with :func:`~core.errors.retry_delay` for
  kopf's retry count; kopf calls the daemon again, which reads the run's status afresh.
  Nothing runs twice: a Local run that got as far as ``Running`` is found by its marker
  (never started again), a Batch job by its name derived from the run's uid.
* ``Gone``: nothing (the run was deleted meanwhile).
* ``Terminal``: :class:`kopf.PermanentError`. Only an error the reconciler could not
  record gets here (e.g. the API refused the status write itself with 422): retrying
  the same write would fail the same way, so kopf logs it once instead of looping.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import kopf

from wt_operator.core.errors import Gone, Transient, classify, retry_delay

__all__ = ["kopf_errors", "to_kopf"]

T = TypeVar("T")


def to_kopf(exc: Exception, *, retry: int, cap: float) -> None:
    """Raise the kopf error ``exc`` means on kopf's ``retry``-th retry; None when it means
    nothing is left to do."""
    verdict = classify(exc)
    if isinstance(verdict, Gone):
        return
    if isinstance(verdict, Transient):
        delay = retry_delay(retry, cap=cap)
        raise kopf.TemporaryError(f"{verdict.detail}; retrying in {delay:g}s", delay=delay) from exc
    raise kopf.PermanentError(f"{verdict.reason}: {verdict.message}") from exc


def kopf_errors(
    cap: float,
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T | None]]]:
    """Decorate a kopf handler so whatever escapes it goes through :func:`to_kopf`
    (``cap``: the longest pause between retries, ``WT_OPERATOR_RETRY_BACKOFF_MAX``)."""

    def decorate(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T | None]]:
        @functools.wraps(handler)
        async def mapped(*args: Any, **kwargs: Any) -> T | None:
            try:
                return await handler(*args, **kwargs)
            except (kopf.TemporaryError, kopf.PermanentError):
                raise  # already kopf's
            except Exception as exc:
                to_kopf(exc, retry=int(kwargs.get("retry") or 0), cap=cap)
                return None

        return mapped

    return decorate
