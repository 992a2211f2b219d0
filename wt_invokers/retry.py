"""The one retry loop of the project: capped exponential backoff with full jitter.

Exists so a remote call is retried in exactly one place, under a policy the
caller chooses: a script wants a few quick attempts and an error, an operator
wants to keep trying (it is cancelled when its run is stopped) and to count
every retry in its metrics. Retrying an error twice over — once here and again
by a caller around it — multiplies waits and hides outages, so callers that
need more patience pass a policy instead of wrapping the call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["RetryPolicy", "retry_call"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    max_attempts: int | None = 5
    """Calls in all before giving up; None retries until the caller is cancelled."""
    initial_backoff: float = 0.2
    """Upper bound of the first pause, in seconds (each pause is drawn from [0, bound])."""
    max_backoff: float = 5.0
    """Cap of the bound, which doubles after every failure."""
    on_retry: Callable[[str, str], None] | None = None
    """Called as ``on_retry(what, code)`` before each pause (metrics, say)."""

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None: no limit)")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff bounds must not be negative")


async def retry_call(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    transient: Callable[[BaseException], str | None],
    give_up: Callable[[BaseException, str, int], BaseException],
    on_failure: Callable[[BaseException, str, float], Awaitable[None]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``call()`` until it succeeds, fails permanently or attempts run out.

    ``transient(exc)`` names the failure (e.g. ``"UNAVAILABLE"``) when it is worth
    retrying and returns None otherwise: then ``exc`` propagates untouched.
    ``give_up(exc, code, attempts)`` builds the error raised when attempts run out.
    ``on_failure(exc, code, pause)`` is awaited before each pause, for callers that must
    tell someone (record a status, send an Event) while they keep trying; ``sleep`` is
    how the pause is taken (the operator's runs pass their clock, which tests control).
    """
    bound = policy.initial_backoff
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            code = transient(exc)
            if code is None:
                raise
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                raise give_up(exc, code, attempt) from exc
            pause = random.uniform(0, bound)  # full jitter: callers do not stampede
            logger.warning(
                "%s failed with %s (attempt %d%s); retrying in %.2fs",
                what,
                code,
                attempt,
                f"/{policy.max_attempts}" if policy.max_attempts else "",
                pause,
            )
            if policy.on_retry is not None:
                policy.on_retry(what, code)
            if on_failure is not None:
                await on_failure(exc, code, pause)
            await sleep(pause)
            bound = min(bound * 2, policy.max_backoff)
