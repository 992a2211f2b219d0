"""How a run's reconciler is told to stop, and why.

kopf's daemon flag and the watch's spec.cancel arrive here as one :class:`StopSignal`
(the handlers adapt kopf's flag to it); :class:`StopFlag` is the hand-set one for runs no
daemon owns and for tests. The *why* is :class:`wt_operator.core.stopping.Stopping`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from wt_operator.core.stopping import Stopping

__all__ = ["CancelRequests", "StopFlag", "StopRequested", "StopSignal"]


class StopSignal(Protocol):
    """Tells a run's reconciler to stop, and why (kopf's daemon flag, adapted)."""

    def why(self) -> Stopping | None:
        """None while not stopped."""

    async def wait(self) -> None:
        """Return once stopped."""

    def generation(self) -> int | None:
        """The run's metadata.generation when a cancel was asked (setting spec.cancel bumps
        it, so the Cancelled status must observe it); None for other stops."""


class StopFlag:
    """A :class:`StopSignal` set by hand (tests, runs no daemon owns)."""

    def __init__(self) -> None:
        self._why: Stopping | None = None
        self._event = asyncio.Event()

    def set(self, why: Stopping) -> None:
        self._why = why
        self._event.set()

    def why(self) -> Stopping | None:
        return self._why

    async def wait(self) -> None:
        await self._event.wait()

    def generation(self) -> int | None:
        return None


class CancelRequests:
    """spec.cancel of active runs, seen on the watch, as one event per run its reconciler
    waits on (the watch handler sets it; the reconciler may start before or after)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._generations: dict[str, int] = {}

    def event(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def generation(self, uid: str) -> int | None:
        """The generation the cancel was seen at."""
        return self._generations.get(uid)

    def request(self, uid: str, generation: int | None) -> None:
        if generation is not None:
            self._generations[uid] = generation
        self.event(uid).set()

    def forget(self, uid: str) -> None:
        self._events.pop(uid, None)
        self._generations.pop(uid, None)


class StopRequested(Exception):
    """Raised out of a wait when the run's reconciler is stopped."""

    def __init__(self, why: Stopping) -> None:
        super().__init__(why.value)
        self.why = why
