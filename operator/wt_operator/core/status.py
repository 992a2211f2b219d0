"""Transitions and the status they write, as pure functions.

A :class:`Transition` is every decision's common answer: "record this phase,
with this reason and message". :func:`status_patch` turns it into the status
merge patch. The conditions follow two conventions at once: Tekton/Knative's
``Succeeded`` (Unknown while in flight, True/False at the end) for people and
``kubectl wait``, and kstatus's ``Reconciling``/``Stalled``/``Ready`` so Flux
and Argo CD judge health without custom code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from wt_operator.api import (
    TERMINAL_PHASES,
    CloudBatchStatus,
    CloudRunStatus,
    ConditionDict,
    Phase,
    Reason,
    RunStatus,
    human_duration,
)

__all__ = [
    "Transition",
    "is_active",
    "log_tail",
    "now_iso",
    "parse_time",
    "remaining",
    "status_patch",
]

_NORMAL_REASONS = frozenset(
    {Reason.QUEUED, Reason.RUNNING, Reason.SUBMITTED, Reason.SUCCEEDED, Reason.PENDING}
)


@dataclasses.dataclass(frozen=True)
class Transition:
    """Record ``phase`` with ``reason`` and ``message`` (one status write, one Event)."""

    phase: Phase
    reason: Reason
    message: str
    exit_code: int | None = None
    result: str | None = None
    """Short outcome for ``kubectl get``: the exit code, the Batch job or Cloud Run execution id."""
    cloud_batch: CloudBatchStatus | None = None
    cloud_run: CloudRunStatus | None = None
    workflow_run_id: str | None = None
    trace_id: str | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def warning(self) -> bool:
        """Whether its Event is a Warning (anything but the happy path)."""
        return self.reason not in _NORMAL_REASONS

    @property
    def summary(self) -> str:
        """One line for the Event: ``kubectl get events`` tables stay readable."""
        return (self.message or self.phase).split("\n", 1)[0]


def now_iso(moment: dt.datetime) -> str:
    """RFC 3339 UTC timestamp with second precision, as Kubernetes writes them."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of a Kubernetes timestamp, or None when absent or malformed."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def remaining(status: Mapping[str, Any], deadline_seconds: int | None, now: float) -> float | None:
    """Seconds left of ``activeDeadlineSeconds``, counted from ``status.startTime``.

    As for Jobs, time spent queued counts. A run not started yet has its whole budget.
    """
    if deadline_seconds is None:
        return None
    start = parse_time(status.get("startTime")) or now
    return max(0.0, start + deadline_seconds - now)


def is_active(status: Mapping[str, Any] | None) -> bool:
    """Whether the run still needs the operator (no status yet counts as Pending)."""
    phase = (status or {}).get("phase") or Phase.PENDING
    return phase not in TERMINAL_PHASES


def _condition(
    ctype: str,
    value: str,
    reason: str,
    message: str,
    generation: int | None,
    previous: Mapping[str, Mapping[str, Any]],
    now: str,
) -> ConditionDict:
    old = previous.get(ctype)
    # lastTransitionTime moves only when the status value flips (Kubernetes convention).
    since = old.get("lastTransitionTime") if old and old.get("status") == value else None
    cond: ConditionDict = {
        "type": ctype,
        "status": value,  # type: ignore[typeddict-item]
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or now,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def status_patch(
    t: Transition,
    *,
    previous: Mapping[str, Any],
    generation: int | None,
    now: dt.datetime,
) -> RunStatus:
    """The full ``status`` merge patch recording ``t``.

    ``startTime`` is set on the first transition and kept; ``completionTime`` and
    ``duration`` on terminal ones.
    """
    stamp = now_iso(now)
    prev_conditions = {c.get("type", ""): c for c in previous.get("conditions") or []}
    terminal = t.terminal
    succeeded = t.phase == Phase.SUCCEEDED
    ok = "True" if succeeded else ("False" if terminal else "Unknown")
    failed = terminal and not succeeded
    conditions = [
        _condition("Succeeded", ok, t.reason, t.message, generation, prev_conditions, stamp),
        _condition(
            "Reconciling",
            "False" if terminal else "True",
            t.reason,
            "" if terminal else t.message,
            generation,
            prev_conditions,
            stamp,
        ),
        _condition(
            "Ready",
            "True" if succeeded else "False",
            t.reason,
            t.message,
            generation,
            prev_conditions,
            stamp,
        ),
        _condition(
            "Stalled",
            "True" if failed else "False",
            t.reason,
            t.message if failed else "",
            generation,
            prev_conditions,
            stamp,
        ),
    ]
    start = previous.get("startTime") or stamp
    patch: RunStatus = {
        "phase": t.phase,
        "reason": t.reason,
        "message": t.message,
        "conditions": conditions,
        "startTime": start,
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    if terminal:
        patch["completionTime"] = stamp
        started = parse_time(start)
        patch["duration"] = human_duration(now.timestamp() - started if started else 0)
    if t.exit_code is not None:
        patch["exitCode"] = t.exit_code
    if t.result is not None:
        patch["result"] = t.result
    if t.cloud_batch is not None:
        patch["cloudBatch"] = t.cloud_batch
    if t.cloud_run is not None:
        patch["cloudRun"] = t.cloud_run
    if t.workflow_run_id is not None:
        patch["workflowRunId"] = t.workflow_run_id
    if t.trace_id is not None:
        patch["traceId"] = t.trace_id
    return patch


def log_tail(lines: Iterable[str], *, max_lines: int, max_chars: int = 4000) -> str:
    """The last lines of a run's output, bounded so a chatty workflow cannot bloat the object.

    Give it masked lines: cutting first could split a secret and leave half of it.
    """
    kept = list(lines)[-max_lines:] if max_lines > 0 else []
    text = "\n".join(kept)
    if len(text) > max_chars:
        text = "…" + text[-(max_chars - 1) :]
    return text
