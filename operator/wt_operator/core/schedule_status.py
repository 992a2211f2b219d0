"""What a WorkflowSchedule's status says: its conditions, read by kstatus and Argo CD.

Exists beside :mod:`core.schedule` so the decisions (which slot, which run) and their
reporting (what a user, Flux or Argo CD reads) change separately.

Ready is True while the schedule does what its spec asks — also while suspended by the
user, which is a wanted state (kstatus would otherwise call it InProgress forever).
Stalled is True when it cannot: an invalid schedule, or suspended after failures (Argo CD:
Degraded; kstatus: Failed). Suspended says whether slots are being skipped, and why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

from wt_operator.core.status import now_iso

__all__ = ["ScheduleState", "SuspendReason", "conditions", "parse_iso", "suspended_by_failures"]

SUSPENDED_AFTER_FAILURES = "SuspendedAfterFailures"


class SuspendReason(enum.StrEnum):
    NONE = "Active"
    USER = "Suspended"
    FAILURES = SUSPENDED_AFTER_FAILURES
    INVALID = "InvalidSchedule"


@dataclasses.dataclass(frozen=True)
class ScheduleState:
    """The facts the conditions are made of."""

    why: SuspendReason
    message: str
    """What the user should know (next slot, or why nothing will run)."""


def parse_iso(value: Any) -> dt.datetime | None:
    """An RFC 3339 status/annotation time as an aware datetime; None when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def suspended_by_failures(status: Mapping[str, Any]) -> bool:
    """Whether the operator, not the user, suspended the schedule (its last status)."""
    return any(
        c.get("type") == "Suspended"
        and c.get("status") == "True"
        and c.get("reason") == SUSPENDED_AFTER_FAILURES
        for c in status.get("conditions") or ()
    )


def conditions(
    state: ScheduleState,
    *,
    previous: Mapping[str, Any],
    generation: int | None,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Ready, Stalled, Suspended and Reconciling for ``state``; a transition time moves
    only when its condition's status flips (the Kubernetes convention)."""
    stamp = now_iso(now)
    old = {c.get("type"): c for c in previous.get("conditions") or ()}
    broken = state.why in (SuspendReason.FAILURES, SuspendReason.INVALID)
    values = [
        ("Ready", not broken, "Scheduling" if not broken else state.why.value),
        ("Stalled", broken, state.why.value if broken else "Scheduling"),
        ("Suspended", state.why is not SuspendReason.NONE, state.why.value),
        ("Reconciling", False, "Scheduling"),
    ]
    out = []
    for ctype, true, reason in values:
        value = "True" if true else "False"
        before = old.get(ctype)
        since = (
            before.get("lastTransitionTime") if before and before.get("status") == value else None
        )
        cond: dict[str, Any] = {
            "type": ctype,
            "status": value,
            "reason": reason,
            "message": state.message,
            "lastTransitionTime": since or stamp,
        }
        if generation is not None:
            cond["observedGeneration"] = generation
        out.append(cond)
    return out
