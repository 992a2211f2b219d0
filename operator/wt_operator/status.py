"""Run outcome → status patch, as pure functions.

The conditions follow two conventions at once: Tekton/Knative's ``Succeeded``
condition (Unknown while in flight, True/False at the end) for people and
``kubectl wait``, and kstatus's ``Reconciling``/``Stalled``/``Ready`` so Flux and
Argo CD judge health without custom code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ACTIVE_PHASES",
    "TERMINAL_PHASES",
    "Reason",
    "batch_outcome",
    "is_active",
    "log_tail",
    "now_iso",
    "status_patch",
]

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})
ACTIVE_PHASES = frozenset({"Pending", "Queued", "Running", "Submitted"})


class Reason:
    """The reasons of the ``Succeeded`` condition (one namespace, so typos fail loudly)."""

    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUBMITTED = "Submitted"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    CANCELLED = "Cancelled"
    INVOKER_LOST = "InvokerLost"
    NOT_INSTALLED = "NotInstalled"
    INVALID_SPEC = "InvalidSpec"
    SUBMISSION_REJECTED = "SubmissionRejected"


def now_iso(now: dt.datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with second precision, as Kubernetes writes them."""
    moment = now or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_active(status: Mapping[str, Any] | None) -> bool:
    """Whether the run still needs the operator (no status yet counts as Pending)."""
    phase = (status or {}).get("phase") or "Pending"
    return phase not in TERMINAL_PHASES


def _condition(
    ctype: str,
    value: str,
    reason: str,
    message: str,
    generation: int | None,
    previous: Mapping[str, Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    old = previous.get(ctype)
    # lastTransitionTime moves only when the status value flips (Kubernetes convention).
    since = old.get("lastTransitionTime") if old and old.get("status") == value else None
    cond: dict[str, Any] = {
        "type": ctype,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or now,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def status_patch(
    phase: str,
    reason: str,
    message: str,
    *,
    generation: int | None,
    previous: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The full ``status`` merge patch for a transition into ``phase`` with ``reason``.

    ``fields`` adds phase-specific data (exitCode, cloudBatch, result, workflowRunId).
    startTime is set on the first transition and kept; completionTime on terminal ones.
    """
    stamp = now_iso(now)
    prev = previous or {}
    prev_conditions = {c.get("type", ""): c for c in prev.get("conditions") or []}
    terminal = phase in TERMINAL_PHASES
    succeeded = phase == "Succeeded"
    ok = "True" if succeeded else ("False" if terminal else "Unknown")
    conds = [
        _condition("Succeeded", ok, reason, message, generation, prev_conditions, stamp),
        _condition(
            "Reconciling",
            "False" if terminal else "True",
            reason,
            "" if terminal else message,
            generation,
            prev_conditions,
            stamp,
        ),
        _condition(
            "Ready",
            "True" if succeeded else "False",
            reason,
            message,
            generation,
            prev_conditions,
            stamp,
        ),
        _condition(
            "Stalled",
            "True" if terminal and not succeeded else "False",
            reason,
            message if terminal and not succeeded else "",
            generation,
            prev_conditions,
            stamp,
        ),
    ]
    patch: dict[str, Any] = {
        "phase": phase,
        "message": message,
        "conditions": conds,
        "startTime": prev.get("startTime") or stamp,
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    if terminal:
        patch["completionTime"] = stamp
    patch.update(fields)
    return patch


def log_tail(lines: Iterable[str], *, max_lines: int, max_chars: int = 4000) -> str:
    """The last lines of a run's output, bounded so a chatty workflow cannot bloat the object."""
    kept = list(lines)[-max_lines:] if max_lines > 0 else []
    text = "\n".join(kept)
    if len(text) > max_chars:
        text = "…" + text[-(max_chars - 1) :]
    return text


_BATCH_TERMINAL = {
    "SUCCEEDED": ("Succeeded", Reason.SUCCEEDED),
    "FAILED": ("Failed", Reason.FAILED),
    "DELETION_IN_PROGRESS": ("Failed", Reason.INVOKER_LOST),
    "CANCELLED": ("Cancelled", Reason.CANCELLED),
}


def batch_outcome(state: str) -> tuple[str, str] | None:
    """Map a Batch job state to a terminal (phase, reason), or None while it is in flight."""
    return _BATCH_TERMINAL.get(state)
