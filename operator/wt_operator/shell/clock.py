"""The clock every shell loop waits on: wall-clock time and sleeping, injectable.

Its own module because the reconcilers, the TTL reaper and the schedule loop all take
one, and unit tests hand them a fake that moves time without waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock time and sleeping (epoch seconds), injectable for tests."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
