"""Reconciling a WorkflowSchedule: read its runs, act on core.schedule's plan, write status.

One pass per wake-up of the schedule's daemon (a slot is due, a run of it changed, its
spec changed, or a periodic look); each pass is idempotent, so two replicas or a restart
repeat it harmlessly: a slot's run has one name, and creating it again meets a 409.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from wt_operator.api import (
    ANNOTATION_SCHEDULED_TIME,
    API_VERSION,
    GROUP,
    LABEL_SCHEDULE,
    PLURAL,
    SCHEDULE_KIND,
    SCHEDULE_PLURAL,
    VERSION,
    Phase,
    schedule_run_body,
)
from wt_operator.core.errors import InvalidSpecError
from wt_operator.core.schedule import (
    FailureCount,
    Schedule,
    ScheduledRun,
    count_failures,
    history_to_delete,
    parse_schedule,
    plan,
    previous_slot,
    run_name,
)
from wt_operator.core.schedule_status import (
    ScheduleState,
    SuspendReason,
    conditions,
    parse_iso,
    suspended_by_failures,
)
from wt_operator.core.status import now_iso
from wt_operator.metrics import Metrics
from wt_operator.shell.clock import Clock
from wt_operator.shell.kube import HttpError, KubeClient, event_body

__all__ = ["ScheduleReconciler", "ScheduleRef"]

log = logging.getLogger(__name__)

_MERGE_PATCH = "application/merge-patch+json"
IDLE_LOOK = 60.0
"""Longest sleep between passes: runs ending wake the schedule at once (see handlers),
so this only bounds how late a missed watch event is noticed."""


@dataclasses.dataclass(frozen=True)
class ScheduleRef:
    namespace: str
    name: str
    uid: str
    generation: int | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def object_reference(self) -> dict[str, str]:
        return {
            "apiVersion": API_VERSION,
            "kind": SCHEDULE_KIND,
            "name": self.name,
            "uid": self.uid,
            "namespace": self.namespace,
        }


def _scheduled_run(obj: Mapping[str, Any]) -> ScheduledRun:
    meta = obj.get("metadata") or {}
    at = parse_iso((meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_TIME))
    at = at or parse_iso(meta.get("creationTimestamp")) or dt.datetime.now(dt.UTC)
    return ScheduledRun(
        str(meta.get("name")), at, str((obj.get("status") or {}).get("phase") or Phase.PENDING)
    )


class ScheduleReconciler:
    """Acts for schedules; collaborators are injected like the run runtime's."""

    def __init__(self, kube: KubeClient, clock: Clock, metrics: Metrics) -> None:
        self.kube = kube
        self.clock = clock
        self.metrics = metrics

    async def _request(
        self, what: str, method: str, path: str, body: Any = None, ctype: str = "application/json"
    ) -> Any:
        raw = await self.kube._call(what, lambda: self.kube._send(method, path, body, ctype))
        return json.loads(raw) if raw else None

    def _path(self, ref: ScheduleRef, plural: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{ref.namespace}/{plural}"
        return f"{base}/{name}" if name else base

    async def _event(self, ref: ScheduleRef, reason: str, message: str, warning: bool) -> None:
        body = event_body(
            ref,  # type: ignore[arg-type]  # names itself like a RunRef
            reason=reason,
            message=message,
            warning=warning,
            component=self.kube.component,
            instance=self.kube.instance,
            now=dt.datetime.fromtimestamp(self.clock.now(), dt.UTC),
        )
        try:
            await self._request(
                f"posting event on {ref}",
                "POST",
                f"/api/v1/namespaces/{ref.namespace}/events",
                body,
            )
        except HttpError as exc:
            log.warning("could not post event %s on %s: %s", reason, ref, exc)

    async def _runs(self, ref: ScheduleRef) -> list[dict[str, Any]]:
        listed = await self._request(
            f"listing the runs of {ref}",
            "GET",
            self._path(ref, PLURAL) + f"?labelSelector={LABEL_SCHEDULE}%3D{ref.name}",
        )
        # Only the runs it owns: a label is easy to copy onto a hand-made run.
        return [
            r
            for r in listed.get("items") or ()
            if any(o.get("uid") == ref.uid for o in r["metadata"].get("ownerReferences") or ())
        ]

    async def reconcile(self, namespace: str, name: str) -> float | None:
        """One pass; the seconds until the next one is needed (None: the schedule is gone).

        The schedule is read afresh: the status this pass builds on must include the
        previous pass's write, which the watch may not have delivered yet.
        """
        try:
            body = await self._request(
                f"reading {namespace}/{name}",
                "GET",
                f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{SCHEDULE_PLURAL}/{name}",
            )
        except HttpError as exc:
            if exc.status == 404:
                return None
            raise
        meta = body["metadata"]
        ref = ScheduleRef(namespace, name, meta["uid"], meta.get("generation"))
        created = parse_iso(meta.get("creationTimestamp")) or dt.datetime.now(dt.UTC)
        spec, status = body.get("spec") or {}, dict(body.get("status") or {})
        now = dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)
        try:
            schedule = parse_schedule(spec)
        except InvalidSpecError as exc:
            if status.get("observedGeneration") != ref.generation:
                await self._event(ref, "InvalidSchedule", str(exc), warning=True)
            state = ScheduleState(SuspendReason.INVALID, str(exc))
            await self._patch_status(ref, status, {"nextScheduleTime": None}, state, now)
            return IDLE_LOOK
        runs = await self._runs(ref)
        scheduled = [_scheduled_run(r) for r in runs]
        resumed = suspended_by_failures(status) and not schedule.suspend
        counted = count_failures(
            FailureCount(
                0 if resumed else int(status.get("consecutiveFailures") or 0),
                parse_iso(status.get("failuresCountedThrough")),
            ),
            scheduled,
        )
        why = SuspendReason.USER if schedule.suspend else SuspendReason.NONE
        if schedule.suspend and suspended_by_failures(status):
            why = SuspendReason.FAILURES
        limit = schedule.suspend_after_failures
        if limit is not None and counted.failures >= limit and not schedule.suspend:
            await self._suspend(ref, counted.failures)
            schedule = dataclasses.replace(schedule, suspend=True)
            why = SuspendReason.FAILURES
        active = [r.name for r in scheduled if not r.finished]
        p = plan(
            schedule,
            last_slot=parse_iso(status.get("lastSlotTime")),
            created=created,
            now=now,
            active=active,
        )
        for name in p.cancel:
            await self._cancel(ref, name)
        patch: dict[str, Any] = {
            "lastSlotTime": now_iso(p.last_slot) if p.last_slot else None,
            "nextScheduleTime": None if schedule.suspend else now_iso(p.next),
            "consecutiveFailures": counted.failures,
            "failuresCountedThrough": now_iso(counted.through) if counted.through else None,
        }
        if p.start is not None:
            made = await self._start(ref, body, schedule, p.start, p.previous)
            active.append(made)
            patch["lastScheduleTime"] = now_iso(p.start)
        if p.missed:
            self.metrics.schedule_missed.labels(ref.namespace, ref.name).inc(p.missed)
            patch["missedSlots"] = int(status.get("missedSlots") or 0) + p.missed
            if not schedule.suspend:  # a suspended schedule skips slots by request: no noise
                await self._event(
                    ref,
                    "MissedSchedule",
                    f"{p.missed} slot(s) passed without a run (operator down, or "
                    "startingDeadlineSeconds passed)",
                    warning=True,
                )
        if p.too_many_missed:
            await self._event(
                ref,
                "TooManyMissedSlots",
                "more than 100 slots were missed; check the operator, the schedule and "
                "startingDeadlineSeconds. At most one catch-up run was started.",
                warning=True,
            )
        keep = [r for r in scheduled if counted.through is not None and r.at <= counted.through]
        for name in history_to_delete(
            keep, succeeded=schedule.successful_history, failed=schedule.failed_history
        ):
            await self._delete(ref, name)
        runs_by_name = {r["metadata"]["name"]: r for r in runs}
        patch["active"] = [
            {
                "name": n,
                "uid": runs_by_name.get(n, {}).get("metadata", {}).get("uid", ""),
                "scheduledTime": now_iso(_scheduled_run(runs_by_name[n]).at)
                if n in runs_by_name
                else patch.get("lastScheduleTime"),
            }
            for n in active
        ]
        patch["activeCount"] = len(active)
        success = self._last_success(runs, status)
        if success:
            patch["lastSuccessfulTime"] = success
        self._gauges(ref, schedule, p.next, status, success or None, created, now)
        message = (
            f"next slot {p.next.astimezone(schedule.zone).isoformat()}"
            if not schedule.suspend
            else "suspended: slots pass without runs until spec.suspend is false"
        )
        if why is SuspendReason.FAILURES:
            message = (
                f"suspended after {counted.failures} consecutive failed runs "
                "(suspendAfterFailures); set spec.suspend to false to resume"
            )
        elif p.blocked_by:
            message += f"; the due slot waits for {', '.join(p.blocked_by)} (Forbid)"
        await self._patch_status(ref, status, patch, ScheduleState(why, message), now)
        return max(0.05, min(IDLE_LOOK, (p.next - now).total_seconds()))

    def _gauges(
        self,
        ref: ScheduleRef,
        schedule: Schedule,
        upcoming: dt.datetime,
        status: Mapping[str, Any],
        success: str | None,
        created: dt.datetime,
        now: dt.datetime,
    ) -> None:
        labels = (ref.namespace, ref.name)
        if schedule.suspend:
            for gauge in (self.metrics.schedule_last_success, self.metrics.schedule_interval):
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
            return
        last = parse_iso(success) or created
        self.metrics.schedule_last_success.labels(*labels).set(last.timestamp())
        interval = (upcoming - previous_slot(schedule, upcoming)).total_seconds()
        self.metrics.schedule_interval.labels(*labels).set(interval)

    @staticmethod
    def _last_success(runs: Sequence[Mapping[str, Any]], status: Mapping[str, Any]) -> str:
        times = [
            str(r["status"]["completionTime"])
            for r in runs
            if (r.get("status") or {}).get("phase") == Phase.SUCCEEDED
            and r["status"].get("completionTime")
        ]
        old = status.get("lastSuccessfulTime")
        return max([*times, *([old] if old else [])], default="")

    async def _start(
        self,
        ref: ScheduleRef,
        body: Mapping[str, Any],
        schedule: Schedule,
        slot: dt.datetime,
        previous: dt.datetime | None,
    ) -> str:
        name = run_name(ref.name, slot)
        run = schedule_run_body(
            dict(body),
            scheduled=slot.astimezone(schedule.zone).isoformat(),
            previous=previous.astimezone(schedule.zone).isoformat() if previous else None,
            trigger="schedule",
            name=name,
        )
        try:
            await self._request(f"creating {name}", "POST", self._path(ref, PLURAL), run)
        except HttpError as exc:
            if exc.status != 409:  # 409: this slot's run exists (a replica, a restart)
                raise
            return name
        self.metrics.schedule_runs.labels(ref.namespace, ref.name).inc()
        await self._event(ref, "Started", f"started run {name} for slot {slot.isoformat()}", False)
        return name

    async def _cancel(self, ref: ScheduleRef, name: str) -> None:
        try:
            await self._request(
                f"cancelling {name}",
                "PATCH",
                self._path(ref, PLURAL, name),
                {"spec": {"cancel": True}},
                _MERGE_PATCH,
            )
        except HttpError as exc:
            if exc.status not in (404, 422):  # gone, or already cancelled
                raise
            return
        await self._event(
            ref, "Replaced", f"cancelled run {name} (concurrencyPolicy Replace)", False
        )

    async def _delete(self, ref: ScheduleRef, name: str) -> None:
        try:
            await self._request(f"deleting {name}", "DELETE", self._path(ref, PLURAL, name))
        except HttpError as exc:
            if exc.status != 404:
                raise

    async def _suspend(self, ref: ScheduleRef, failures: int) -> None:
        await self._request(
            f"suspending {ref}",
            "PATCH",
            self._path(ref, SCHEDULE_PLURAL, ref.name),
            {"spec": {"suspend": True}},
            _MERGE_PATCH,
        )
        await self._event(
            ref,
            SuspendReason.FAILURES.value,
            f"suspended after {failures} consecutive failed runs (suspendAfterFailures)",
            warning=True,
        )

    async def _patch_status(
        self,
        ref: ScheduleRef,
        previous: Mapping[str, Any],
        patch: dict[str, Any],
        state: ScheduleState,
        now: dt.datetime,
    ) -> None:
        patch["conditions"] = conditions(
            state, previous=previous, generation=ref.generation, now=now
        )
        patch["observedGeneration"] = ref.generation
        try:
            await self._request(
                f"patching the status of {ref}",
                "PATCH",
                self._path(ref, SCHEDULE_PLURAL, ref.name) + "/status",
                {"status": patch},
                _MERGE_PATCH,
            )
        except HttpError as exc:
            if exc.status != 404:
                raise
