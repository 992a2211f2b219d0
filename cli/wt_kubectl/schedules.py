"""``kubectl wt`` for WorkflowSchedules and in-place cancel: trigger, suspend/resume, cancel,
get and describe.

A manual run is built by the same :func:`wt_operator.api.schedule_run_body` the operator
uses for a slot, so it differs only in its ``wt.dev/trigger: manual`` annotation (as
``kubectl create job --from=cronjob/x`` marks its Job).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wt_kubectl.core import parse_time
from wt_kubectl.errors import UsageError
from wt_kubectl.kube import _TIMEOUT, Cluster
from wt_operator.api import (
    GROUP,
    LABEL_SCHEDULE,
    PLURAL,
    SCHEDULE_PLURAL,
    TERMINAL_PHASES,
    VERSION,
    human_duration,
    schedule_run_body,
)

__all__ = [
    "cancel_run",
    "describe_schedule",
    "get_schedules",
    "render_schedules",
    "schedule_target",
    "set_suspend",
    "trigger_manifest",
]

_SCHEDULES = f"{SCHEDULE_PLURAL}.{GROUP}"
_RUNS = f"{PLURAL}.{GROUP}"
_MERGE = "application/merge-patch+json"
LAST_RUNS = 5
"""Runs ``get``/``describe`` show per schedule (newest first)."""


def schedule_target(words: Sequence[str]) -> tuple[str, str] | None:
    """``("schedule", NAME)`` for ``schedule NAME``, ``wfs/NAME``, ``workflowschedule/NAME``;
    None for a plain run name (what describe took before schedules)."""
    kinds = {"schedule", "schedules", "wfs", "workflowschedule", "workflowschedules"}
    if len(words) == 2 and words[0].lower() in kinds:
        return "schedule", words[1]
    if len(words) == 1 and "/" in words[0]:
        kind, _, name = words[0].partition("/")
        if kind.lower().split(".")[0] in kinds and name:
            return "schedule", name
    if len(words) != 1:
        raise UsageError("describe takes NAME (a run) or schedule NAME")
    return None


async def get_schedule(cluster: Cluster, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await cluster._json(
        cluster.custom.get_namespaced_custom_object(
            GROUP,
            VERSION,
            cluster.namespace,
            SCHEDULE_PLURAL,
            name,
            _preload_content=False,
            _request_timeout=_TIMEOUT,
        ),
        verb="get",
        resource=_SCHEDULES,
        name=name,
    )
    return obj


async def list_schedules(cluster: Cluster) -> list[dict[str, Any]]:
    rsp = await cluster._json(
        cluster.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            cluster.namespace,
            SCHEDULE_PLURAL,
            _preload_content=False,
            _request_timeout=_TIMEOUT,
        ),
        verb="list",
        resource=_SCHEDULES,
    )
    return list(rsp.get("items") or [])


async def runs_of(cluster: Cluster, schedule: str) -> list[dict[str, Any]]:
    """The schedule's runs, newest first."""
    rsp = await cluster._json(
        cluster.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            cluster.namespace,
            PLURAL,
            label_selector=f"{LABEL_SCHEDULE}={schedule}",
            _preload_content=False,
            _request_timeout=_TIMEOUT,
        ),
        verb="list",
        resource=_RUNS,
    )
    items = list(rsp.get("items") or [])
    return sorted(items, key=lambda r: str(r["metadata"].get("creationTimestamp")), reverse=True)


async def _patch(cluster: Cluster, plural: str, name: str, body: dict[str, Any]) -> Any:
    return await cluster._json(
        cluster.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            cluster.namespace,
            plural,
            name,
            body,
            _content_type=_MERGE,  # type: ignore[call-arg]
            _preload_content=False,
            _request_timeout=_TIMEOUT,
        ),
        verb="patch",
        resource=f"{plural}.{GROUP}",
        name=name,
    )


async def set_suspend(cluster: Cluster, name: str, *, suspend: bool) -> str:
    """Suspend or resume; the line to print."""
    await _patch(cluster, SCHEDULE_PLURAL, name, {"spec": {"suspend": suspend}})
    return f"workflowschedule/{name} {'suspended' if suspend else 'resumed'}"


async def cancel_run(cluster: Cluster, name: str) -> str:
    """Set the run's spec.cancel (the operator stops it and records Cancelled); the line to
    print. A finished run is left alone: there is nothing to cancel."""
    run = await cluster.get_run(name)
    phase = (run.get("status") or {}).get("phase") or "Pending"
    if phase in TERMINAL_PHASES:
        return f"workflowrun/{name} already finished ({phase}); nothing to cancel"
    if not (run.get("spec") or {}).get("cancel"):
        await _patch(cluster, PLURAL, name, {"spec": {"cancel": True}})
    return f"workflowrun/{name} cancel requested (follow with: kubectl wt wait {name})"


def _zone(schedule: Mapping[str, Any]) -> dt.tzinfo:
    try:
        return ZoneInfo(str(schedule["spec"].get("timeZone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def trigger_manifest(
    schedule: dict[str, Any], *, now: dt.datetime, name: str | None
) -> dict[str, Any]:
    """A run of ``schedule`` now: its window is [the schedule's last slot, now)."""
    zone = _zone(schedule)
    last = parse_time((schedule.get("status") or {}).get("lastScheduleTime"))
    sched_name = schedule["metadata"]["name"]
    return schedule_run_body(
        schedule,
        scheduled=now.astimezone(zone).replace(microsecond=0).isoformat(),
        previous=last.astimezone(zone).isoformat() if last else None,
        trigger="manual",
        name=name,
        generate_name=None if name else f"{sched_name}-manual-",
    )


def _age(value: Any, now: dt.datetime) -> str:
    at = parse_time(value)
    return human_duration((now - at).total_seconds()) if at else "<none>"


def _last_runs(runs: Sequence[Mapping[str, Any]]) -> str:
    phases = [str((r.get("status") or {}).get("phase") or "Pending") for r in runs[:LAST_RUNS]]
    return ",".join(phases) or "<none>"


def render_schedules(
    rows: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]], now: dt.datetime
) -> str:
    """The ``get schedules`` table: kubectl's columns plus the phases of the last runs."""
    head = [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "NEXT",
        "LAST RUNS",
    ]
    table = [head]
    for obj, runs in rows:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        table.append(
            [
                obj["metadata"]["name"],
                str(spec.get("schedule", "")),
                str(spec.get("timeZone") or "UTC"),
                str(bool(spec.get("suspend"))).lower(),
                str(status.get("activeCount", 0)),
                _age(status.get("lastScheduleTime"), now),
                str(status.get("nextScheduleTime") or "<none>"),
                _last_runs(runs),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = [
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    return "\n".join(lines) + "\n"


async def get_schedules(cluster: Cluster, name: str | None, now: dt.datetime) -> str:
    objs = [await get_schedule(cluster, name)] if name else await list_schedules(cluster)
    if not objs:
        return f"No WorkflowSchedules in namespace {cluster.namespace}.\n"
    rows = [(o, await runs_of(cluster, o["metadata"]["name"])) for o in objs]
    return render_schedules(rows, now)


def describe_schedule(
    obj: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    now: dt.datetime,
) -> str:
    """The describe screen of a schedule: spec, status, conditions, last runs, Events."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("runTemplate") or {}).get("spec") or {}
    fields = [
        ("Name", meta["name"]),
        ("Namespace", meta.get("namespace", "")),
        ("Schedule", spec.get("schedule", "")),
        ("Time Zone", spec.get("timeZone") or "UTC"),
        ("Suspend", str(bool(spec.get("suspend"))).lower()),
        ("Concurrency Policy", spec.get("concurrencyPolicy", "Forbid")),
        ("Starting Deadline", spec.get("startingDeadlineSeconds", "<unset>")),
        ("Workflow", template.get("workflow", "")),
        ("Invoker", template.get("invoker", "")),
        ("Last Schedule", status.get("lastScheduleTime") or "<none>"),
        ("Last Success", status.get("lastSuccessfulTime") or "<none>"),
        ("Next Schedule", status.get("nextScheduleTime") or "<none>"),
        ("Missed Slots", status.get("missedSlots", 0)),
        ("Consecutive Failures", status.get("consecutiveFailures", 0)),
    ]
    out = [f"{label + ':':<22}{value}" for label, value in fields]
    out.append("Conditions:")
    for c in status.get("conditions") or ():
        out.append(f"  {c.get('type', ''):<12}{c.get('status', ''):<7}{c.get('reason', '')}")
        if c.get("message") and c.get("type") == "Ready":
            out.append(f"    {c['message']}")
    out.append("Last Runs:")
    if not runs:
        out.append("  <none>")
    for r in runs[:LAST_RUNS]:
        rstatus = r.get("status") or {}
        trigger = (r["metadata"].get("annotations") or {}).get("wt.dev/trigger", "")
        out.append(
            f"  {r['metadata']['name']:<40}{rstatus.get('phase') or 'Pending':<11}"
            f"{_age(r['metadata'].get('creationTimestamp'), now):<8}{trigger}"
        )
    out.append("Events:")
    if not events:
        out.append("  <none>")
    for e in sorted(events, key=lambda e: str(e.get("eventTime") or e.get("lastTimestamp"))):
        when = _age(e.get("lastTimestamp") or e.get("eventTime"), now)
        out.append(
            f"  {e.get('type', ''):<8}{e.get('reason', ''):<24}{when:<6}{e.get('message', '')}"
        )
    return "\n".join(out) + "\n"
