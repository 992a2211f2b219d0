"""Batch job states and the automatic lifecycle a stand-in job walks through.

Exists so the state names, the ``"SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED"`` syntax
and the rule for moving a job along its steps live in one place, shared by the
job store, the HTTP control endpoint and the command line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from google.cloud import batch_v1

__all__ = [
    "TERMINAL_STATES",
    "JobRecord",
    "Lifecycle",
    "LifecycleStep",
    "parse_lifecycle",
    "resolve_steps",
    "state_name",
    "state_value",
]

LifecycleStep = tuple[str, float | None]
"""``(state name, seconds after creation)``; ``None`` keeps the previous rhythm."""

Lifecycle = Sequence[LifecycleStep] | Callable[[Any], Sequence[LifecycleStep]]
"""Steps for every new job, or a callable giving the steps of one ``batch_v1.Job``."""

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

_States: Any = batch_v1.JobStatus.State  # an IntEnum; typed loosely upstream


def state_value(state: str) -> int:
    """The proto enum value of a state name (case-insensitive); ValueError if unknown."""
    try:
        return int(_States[state.strip().upper()].value)
    except KeyError:
        names = ", ".join(s.name for s in _States)
        raise ValueError(f"unknown Batch job state {state!r}; one of {names}") from None


def state_name(value: int) -> str:
    """The state name of a proto enum value."""
    return str(_States(value).name)


def parse_lifecycle(text: str) -> list[LifecycleStep]:
    """Parse the CLI form ``"SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED"`` into lifecycle steps."""
    steps: list[LifecycleStep] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        state, _, delay = part.partition(":")
        state_value(state)
        steps.append((state.strip().upper(), float(delay) if delay.strip() else None))
    return steps


def resolve_steps(steps: Sequence[LifecycleStep]) -> list[tuple[int, float]]:
    """Absolute delays for each step, filling ``None`` with the previous rhythm."""
    out: list[tuple[int, float]] = []
    prev, gap = 0.0, 0.0
    for state, delay in steps:
        at = prev + gap if delay is None else float(delay)
        if delay is None and not out:
            at = 0.0
        gap, prev = max(at - prev, 0.0), at
        out.append((state_value(state), at))
    return out


@dataclasses.dataclass
class JobRecord:
    """One stored job and where it stands in its lifecycle."""

    job: Any  # raw job_pb2.Job, owned by the store
    created: float  # time.monotonic() at creation
    created_wall: dt.datetime
    steps: list[tuple[int, float]]
    next_step: int = 0

    def advance(self, now: float) -> None:
        """Apply every lifecycle step due by ``now`` (a ``time.monotonic()`` reading)."""
        elapsed = now - self.created
        while self.next_step < len(self.steps) and self.steps[self.next_step][1] <= elapsed:
            value, at = self.steps[self.next_step]
            self.next_step += 1
            self.transition(value, self.created_wall + dt.timedelta(seconds=at))

    def stop_lifecycle(self) -> None:
        """No further automatic steps (a test or a cancel took over)."""
        self.next_step = len(self.steps)

    def transition(self, value: int, when: dt.datetime, description: str | None = None) -> None:
        """Move the job to state ``value``, recording a status event as Batch does."""
        job = self.job
        old = state_name(job.status.state)
        new = state_name(value)
        job.status.state = value
        event = job.status.status_events.add()
        event.type_ = "STATUS_CHANGED"
        event.description = (
            description or f"Job state is set from {old} to {new} for job {job.name}."
        )
        event.event_time.FromDatetime(when)
        job.update_time.FromDatetime(when)
