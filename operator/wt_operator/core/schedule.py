"""Decisions of a WorkflowSchedule: which slot runs now, which were missed, what to delete.

Pure functions of (schedule, status, runs, now), so every case — DST, leap days, a
down operator, a failing workflow — has a table test without a cluster or a clock.

Slots are wall-clock times in the schedule's zone. A wall time that does not exist (the
hour skipped when clocks go forward) has no slot; one that exists twice (the hour repeated
when clocks go back) has one, at its first occurrence. So ``30 2 * * *`` in Europe/Berlin
skips the last Sunday of March and runs once on the last Sunday of October: what a
reader of the cron line expects, and what Vixie cron, CronJob and Argo disagree about.
The cron line is parsed by croniter (standard five fields and the ``@`` macros).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from wt_operator.api import Phase
from wt_operator.core.errors import InvalidSpecError

__all__ = [
    "MISSED_SLOTS_LIMIT",
    "Concurrency",
    "FailureCount",
    "Plan",
    "Schedule",
    "ScheduledRun",
    "count_failures",
    "history_to_delete",
    "next_slot",
    "parse_schedule",
    "plan",
    "previous_slot",
    "run_name",
    "slots_between",
]

MISSED_SLOTS_LIMIT = 100
"""More missed slots than this are reported with a Warning and not counted further (as
CronJob): a schedule left alone for a year must not cost a loop over half a million slots."""

_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


class Concurrency(enum.StrEnum):
    """What a slot does while an earlier run of the schedule is still active."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A WorkflowSchedule's spec as the decisions need it."""

    cron: str
    zone: ZoneInfo
    suspend: bool = False
    concurrency: Concurrency = Concurrency.FORBID
    starting_deadline_seconds: int | None = None
    successful_history: int = 3
    failed_history: int = 1
    suspend_after_failures: int | None = None


def parse_schedule(spec: Mapping[str, Any]) -> Schedule:
    """The spec as a :class:`Schedule`; InvalidSpecError names what the schema let through."""
    cron = str(spec.get("schedule") or "").strip()
    if cron.lower() not in _MACROS and (len(cron.split()) != 5 or not croniter.is_valid(cron)):
        raise InvalidSpecError(
            f"schedule {cron!r} is not a five-field cron line or one of "
            f"{', '.join(sorted(_MACROS))}"
        )
    zone_name = str(spec.get("timeZone") or "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSpecError(f"timeZone {zone_name!r} is not an IANA time zone") from None
    deadline = spec.get("startingDeadlineSeconds")
    after = spec.get("suspendAfterFailures")
    return Schedule(
        cron=cron,
        zone=zone,
        suspend=bool(spec.get("suspend", False)),
        concurrency=Concurrency(spec.get("concurrencyPolicy") or Concurrency.FORBID),
        starting_deadline_seconds=None if deadline is None else int(deadline),
        successful_history=int(spec.get("successfulRunsHistoryLimit", 3)),
        failed_history=int(spec.get("failedRunsHistoryLimit", 1)),
        suspend_after_failures=None if after is None else int(after),
    )


def _aware(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The first instant showing wall time ``wall`` in ``zone``; None if it never does."""
    first = wall.replace(tzinfo=zone, fold=0)
    back = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    return first if back == wall else None


def _walls(cron: str, start: dt.datetime, *, forward: bool) -> Iterator[dt.datetime]:
    # croniter iterates naive wall times: each matching wall time once, whatever the zone's
    # offset does (given an aware start it would run skipped times late and repeated twice).
    it = croniter(cron, start)
    while True:
        yield it.get_next(dt.datetime) if forward else it.get_prev(dt.datetime)


def next_slot(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    """The first slot strictly after ``after`` (aware), in the schedule's zone."""
    local = after.astimezone(schedule.zone)
    # One minute back: a repeated hour's second pass maps to a wall time croniter already
    # passed; the filter below drops what is not after ``after``.
    start = local.replace(tzinfo=None, second=0, microsecond=0) - dt.timedelta(minutes=1)
    for wall in _walls(schedule.cron, start, forward=True):
        slot = _aware(wall, schedule.zone)
        if slot is not None and slot > after:
            return slot
    raise AssertionError("unreachable: a cron iterator never ends")  # pragma: no cover


def previous_slot(schedule: Schedule, before: dt.datetime) -> dt.datetime:
    """The last slot strictly before ``before`` (aware): the start of a run's window."""
    local = before.astimezone(schedule.zone)
    start = local.replace(tzinfo=None) + dt.timedelta(hours=2)  # past a repeated hour
    for wall in _walls(schedule.cron, start, forward=False):
        slot = _aware(wall, schedule.zone)
        if slot is not None and slot < before:
            return slot
    raise AssertionError("unreachable: a cron iterator never ends")  # pragma: no cover


def slots_between(
    schedule: Schedule, since: dt.datetime, until: dt.datetime, *, limit: int
) -> list[dt.datetime]:
    """Slots in ``(since, until]``, oldest first, at most ``limit`` of the newest kind:
    when there are more, the list holds ``limit`` slots and the newest one is the last
    slot before ``until`` (so a long outage costs ``limit`` steps, not one per slot)."""
    found: list[dt.datetime] = []
    at = since
    while len(found) < limit:
        slot = next_slot(schedule, at)
        if slot > until:
            return found
        found.append(slot)
        at = slot
    newest = previous_slot(schedule, until + dt.timedelta(microseconds=1))
    if newest > found[-1]:
        found[-1] = newest
    return found


def run_name(schedule_name: str, slot: dt.datetime) -> str:
    """The run of ``slot``: one name per slot, so a second replica, a restart or a retried
    create can only meet the run that exists (409), never start a second one. Minutes
    since the epoch, as CronJob names its Jobs."""
    return f"{schedule_name}-{int(slot.timestamp()) // 60}"


@dataclasses.dataclass(frozen=True)
class ScheduledRun:
    """A WorkflowRun owned by the schedule, as the decisions see it."""

    name: str
    at: dt.datetime
    """Its slot (or, for a manual run, when it was triggered): orders the history."""
    phase: str

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one reconciliation of a schedule does."""

    start: dt.datetime | None
    """The slot to create a run for now, if any."""
    previous: dt.datetime | None
    """The slot before ``start``: the run's window is ``[previous, start)``."""
    cancel: tuple[str, ...]
    """Active runs to cancel first (concurrencyPolicy Replace)."""
    missed: int
    """Slots that passed and will never run (deadline passed, or skipped behind others)."""
    too_many_missed: bool
    """More than :data:`MISSED_SLOTS_LIMIT` slots passed unattended: warn."""
    last_slot: dt.datetime | None
    """The newest slot dealt with (run or missed); the next reconciliation starts after it."""
    next: dt.datetime
    """The first slot after now."""
    blocked_by: tuple[str, ...] = ()
    """Forbid: the active runs the due slot waits for (it runs when they end, within its
    startingDeadlineSeconds)."""


def plan(
    schedule: Schedule,
    *,
    last_slot: dt.datetime | None,
    created: dt.datetime,
    now: dt.datetime,
    active: Sequence[str],
) -> Plan:
    """Decide the slot to run now: at most one, the newest due, and only within
    startingDeadlineSeconds; all older due slots count as missed."""
    since = last_slot or created
    upcoming = next_slot(schedule, now)
    due = slots_between(schedule, since, now, limit=MISSED_SLOTS_LIMIT + 1)
    if schedule.suspend or not due:
        # Suspended: slots pass unrun and are not caught up on resume (as CronJob with a
        # deadline; without one CronJob would run the newest, a surprise after months).
        missed = len(due) if schedule.suspend else 0
        return Plan(None, None, (), missed, False, due[-1] if due else last_slot, upcoming)
    newest = due[-1]
    too_many = len(due) > MISSED_SLOTS_LIMIT
    deadline = schedule.starting_deadline_seconds
    if deadline is not None and (now - newest).total_seconds() > deadline:
        return Plan(None, None, (), len(due), too_many, newest, upcoming)
    older = len(due) - 1
    if active and schedule.concurrency is Concurrency.FORBID:
        # The slot waits (last_slot is not moved) until the active runs end or its
        # deadline passes; older slots are gone either way.
        return Plan(None, None, (), 0, too_many, last_slot, upcoming, blocked_by=tuple(active))
    cancel = tuple(active) if schedule.concurrency is Concurrency.REPLACE else ()
    return Plan(newest, previous_slot(schedule, newest), cancel, older, too_many, newest, upcoming)


def history_to_delete(runs: Sequence[ScheduledRun], *, succeeded: int, failed: int) -> list[str]:
    """Finished runs beyond the history limits, oldest first (Cancelled counts as failed:
    a replaced run is history like a failed one)."""
    done = sorted((r for r in runs if r.finished), key=lambda r: r.at, reverse=True)
    good = [r for r in done if r.phase == Phase.SUCCEEDED]
    bad = [r for r in done if r.phase != Phase.SUCCEEDED]
    extra = good[succeeded:] + bad[failed:]
    return [r.name for r in sorted(extra, key=lambda r: r.at)]


@dataclasses.dataclass(frozen=True)
class FailureCount:
    """Consecutive failed runs, counted once each in slot order (status stores it: the
    history limit may delete a failed run before the limit of failures is reached)."""

    failures: int
    through: dt.datetime | None
    """The newest run already counted."""


def count_failures(previous: FailureCount, runs: Sequence[ScheduledRun]) -> FailureCount:
    """Count the runs finished since ``previous``, oldest first, up to the first still active
    (so a later run finishing first is not counted before an earlier one). A success resets
    the count; a cancelled run neither adds nor resets."""
    failures, through = previous.failures, previous.through
    for run in sorted(runs, key=lambda r: r.at):
        if through is not None and run.at <= through:
            continue
        if not run.finished:
            break
        if run.phase == Phase.SUCCEEDED:
            failures = 0
        elif run.phase == Phase.FAILED:
            failures += 1
        through = run.at
    return FailureCount(failures, through)
