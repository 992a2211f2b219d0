"""``kubectl wt describe``: one readable screen about a run, rendered from plain dicts.

``kubectl describe wfr`` prints the raw object; users asking "why did it fail
and where is its output" want the phase, reason and message first, then the
timings, the job or exit code, and the Events — the same shape as kubectl's
own describe for Pods, so it reads familiar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from wt_kubectl.core import human_duration, parse_time, run_duration, run_reason
from wt_operator.api import ANNOTATION_RERUN_OF, TERMINAL_PHASES

__all__ = ["render_describe"]

_WIDTH = 16


def _field(label: str, value: Any, indent: int = 0) -> list[str]:
    """``Label:   value``, continuation lines indented under the value."""
    text = str(value)
    lines = text.splitlines() or [""]
    head = " " * indent + f"{label + ':':<{_WIDTH - indent}}{lines[0]}"
    return [head] + [" " * _WIDTH + line for line in lines[1:]]


def _when(value: Any, now: dt.datetime) -> str | None:
    moment = parse_time(value)
    if moment is None:
        return None
    return f"{value} ({human_duration((now - moment).total_seconds())} ago)"


def _event_time(event: Mapping[str, Any]) -> dt.datetime:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        moment = parse_time(event.get(key))
        if moment is not None:
            return moment
    moment = parse_time((event.get("metadata") or {}).get("creationTimestamp"))
    return moment or dt.datetime.min.replace(tzinfo=dt.UTC)


def _event_order(event: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """Oldest first; Events within one second by their eventTime (microseconds)."""
    precise = parse_time(event.get("eventTime"))
    return _event_time(event), precise or dt.datetime.min.replace(tzinfo=dt.UTC)


def _event_age(event: Mapping[str, Any], now: dt.datetime) -> str:
    last = _event_time(event)
    age = human_duration((now - last).total_seconds())
    count = event.get("count") or 1
    first = parse_time(event.get("firstTimestamp"))
    if isinstance(count, int) and count > 1 and first is not None:
        return f"{age} (x{count} over {human_duration((now - first).total_seconds())})"
    return age


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell; the last (a message) is left unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  " + "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]


def _events(events: Sequence[Mapping[str, Any]], now: dt.datetime) -> list[str]:
    if not events:
        return ["Events:         <none>"]
    rows = [
        ["Type", "Reason", "Age", "From", "Message"],
        ["----", "------", "---", "----", "-------"],
    ]
    for event in sorted(events, key=_event_order):
        source = event.get("source") or {}
        rows.append(
            [
                str(event.get("type") or ""),
                str(event.get("reason") or ""),
                _event_age(event, now),
                str(source.get("component") or event.get("reportingComponent") or ""),
                " ".join(str(event.get("message") or "").split()),
            ]
        )
    return ["Events:", *_table(rows)]


def render_describe(
    run: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: dt.datetime
) -> str:
    """The describe screen for ``run`` with its ``events``, ages relative to ``now``."""
    meta = run.get("metadata") or {}
    spec = run.get("spec") or {}
    status = run.get("status") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    phase = status.get("phase") or "Pending"
    out: list[str] = []
    out += _field("Name", name)
    out += _field("Namespace", namespace)
    out += _field("Workflow", spec.get("workflow", ""))
    out += _field("Invoker", spec.get("invoker", ""))
    rerun_of = (meta.get("annotations") or {}).get(ANNOTATION_RERUN_OF)
    if rerun_of:
        out += _field("Rerun Of", rerun_of)
    out += _field("Phase", phase)
    out += _field("Reason", run_reason(status) or "<none>")
    out += _field("Message", str(status.get("message") or "<none>").rstrip())
    out += _field("Run ID", status.get("workflowRunId") or spec.get("workflowRunId") or "<none>")
    if status.get("traceId"):
        out += _field("Trace ID", status["traceId"])
    out += _field("Created", _when(meta.get("creationTimestamp"), now) or "<unknown>")
    started = _when(status.get("startTime"), now)
    if started:
        out += _field("Started", started)
    completed = _when(status.get("completionTime"), now)
    if completed:
        out += _field("Completed", completed)
    duration = run_duration(status, now)
    if duration:
        running = phase not in TERMINAL_PHASES
        out += _field("Duration", f"{duration} so far" if running else duration)
    if "exitCode" in status:
        out += _field("Exit Code", status["exitCode"])
    if status.get("result"):
        out += _field("Result", status["result"])
    job = status.get("cloudBatch") or {}
    if job:
        out.append("Batch Job:")
        fields = (("Name", "jobName"), ("UID", "jobUid"), ("State", "state"), ("Logs", "logsUrl"))
        for label, key in fields:
            if job.get(key):
                out += _field(label, job[key], indent=2)
    execution = status.get("cloudRun") or {}
    if execution:
        out.append("Cloud Run Execution:")
        run_fields = (
            ("Job", "jobName"),
            ("Name", "executionName"),
            ("State", "state"),
            ("Console", "consoleUrl"),
            ("Logs", "logsUrl"),
        )
        for label, key in run_fields:
            if execution.get(key):
                out += _field(label, execution[key], indent=2)
    if spec.get("invoker") == "Local" or job or execution.get("executionName"):
        out += _field("Output", f"kubectl wt logs {name} -n {namespace}")
    out += _events(events, now)
    return "\n".join(out) + "\n"
