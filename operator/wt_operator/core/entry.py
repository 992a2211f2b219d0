"""Decisions a run meets when its reconciler picks it up, before its invoker's loop.

The runtime routes each run; what it routes on is decided here: which invoker the
spec names (readable before a full parse, so a run whose spec no longer parses is
still recognised as Local or Batch), whether a cancel came before anything started,
whether the admin's policy is checked again, and the texts of a run deleted while no
reconciler owned it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wt_operator.api import Phase, Reason
from wt_operator.core.status import Transition
from wt_operator.core.stopping import Stopping

__all__ = [
    "DEFAULT_INVOKER",
    "admitted",
    "cancelled_before_start",
    "invoker_of",
    "unowned_local_cleaned",
]

DEFAULT_INVOKER = "Local"
"""What a spec without ``invoker`` reads as (the CRD requires the field, so only an
object written around the API server could lack it; its metrics label was Local)."""


def invoker_of(spec: Mapping[str, Any]) -> str:
    """The invoker ``spec`` names, without parsing the rest of it."""
    return str(spec.get("invoker") or DEFAULT_INVOKER)


def admitted(phase: str) -> bool:
    """Whether the run is already past every check (Submitted: only track it), so the
    admin's policy and newer name rules are not applied to it again."""
    return phase == Phase.SUBMITTED


def cancelled_before_start(why: Stopping | None, phase: str) -> Transition | None:
    """A spec.cancel seen before anything started: the run ends Cancelled, untouched."""
    if why is Stopping.CANCELLED and phase == Phase.PENDING:
        return Transition(
            Phase.CANCELLED, Reason.CANCELLED, "cancelled (spec.cancel) before it started"
        )
    return None


def unowned_local_cleaned(killed: int) -> Transition:
    """A Local run deleted unowned, once its leftover processes (if any) are killed."""
    done = "its process tree was killed" if killed else "no process of it was left"
    return Transition(
        Phase.CANCELLED,
        Reason.CANCELLED,
        f"deleted while no operator was reconciling it; {done}",
    )
