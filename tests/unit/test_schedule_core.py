"""WorkflowSchedule decisions (core.schedule): slots, missed slots, concurrency, history."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from wt_operator.core.errors import InvalidSpecError
from wt_operator.core.schedule import (
    Concurrency,
    FailureCount,
    Schedule,
    ScheduledRun,
    count_failures,
    history_to_delete,
    next_slot,
    parse_schedule,
    plan,
    previous_slot,
    run_name,
)

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str, zone: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


def slots(cron: str, zone: ZoneInfo | dt.timezone, start: dt.datetime, n: int) -> list[str]:
    schedule = Schedule(cron, zone)  # type: ignore[arg-type]
    found = []
    for _ in range(n):
        start = next_slot(schedule, start)
        found.append(start.isoformat())
    return found


@pytest.mark.parametrize(
    ("cron", "zone", "start", "expected"),
    [
        # Spring forward in Berlin: 02:30 does not exist on 2026-03-29, so no slot that day.
        (
            "30 2 * * *",
            BERLIN,
            "2026-03-28T12:00",
            ["2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"],
        ),
        # Fall back: 02:30 exists twice on 2026-10-25; one slot, at the first (+02:00).
        (
            "30 2 * * *",
            BERLIN,
            "2026-10-24T12:00",
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
        # Hourly across the repeated hour: 02:00 once, then 03:00 two real hours later.
        (
            "0 * * * *",
            BERLIN,
            "2026-10-25T00:30",
            ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00"],
        ),
        # Hourly across the skipped hour in New York (2026-03-08 02:00 does not exist).
        (
            "0 * * * *",
            NEW_YORK,
            "2026-03-08T00:30",
            ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"],
        ),
        # Leap day: only in leap years.
        ("0 0 29 2 *", UTC, "2026-01-01T00:00", ["2028-02-29T00:00:00+00:00"]),
        ("@monthly", UTC, "2028-02-28T23:59", ["2028-03-01T00:00:00+00:00"]),
        # "Last day of February" as a report would write it: 28th in 2027, 29th in 2028.
        (
            "0 6 L 2 *",
            UTC,
            "2027-01-01T00:00",
            ["2027-02-28T06:00:00+00:00", "2028-02-29T06:00:00+00:00"],
        ),
        ("@daily", BERLIN, "2026-01-01T00:00", ["2026-01-02T00:00:00+01:00"]),
    ],
)
def test_slots_follow_wall_clock_time_in_the_zone(
    cron: str, zone: ZoneInfo, start: str, expected: list[str]
) -> None:
    assert slots(cron, zone, at(start, zone), len(expected)) == expected


def test_the_second_pass_of_a_repeated_hour_does_not_run_its_slot_again() -> None:
    schedule = Schedule("30 2 * * *", BERLIN)
    second_pass = dt.datetime(2026, 10, 25, 2, 40, tzinfo=BERLIN, fold=1)
    assert next_slot(schedule, second_pass).isoformat() == "2026-10-26T02:30:00+01:00"


@pytest.mark.parametrize(
    ("cron", "zone", "before", "expected"),
    [
        ("@monthly", UTC, "2028-03-01T00:00", "2028-02-01T00:00:00+00:00"),
        ("0 0 29 2 *", UTC, "2028-02-29T00:00", "2024-02-29T00:00:00+00:00"),
        ("30 2 * * *", BERLIN, "2026-03-30T02:30", "2026-03-28T02:30:00+01:00"),
        ("0 * * * *", BERLIN, "2026-10-25T03:00", "2026-10-25T02:00:00+02:00"),
    ],
)
def test_previous_slot_opens_the_reporting_window(
    cron: str, zone: ZoneInfo, before: str, expected: str
) -> None:
    schedule = Schedule(cron, zone)
    assert previous_slot(schedule, at(before, zone)).isoformat() == expected


def test_run_name_is_one_per_slot_and_readable() -> None:
    slot = at("2026-05-01T00:00")
    assert run_name("monthly", slot) == f"monthly-{int(slot.timestamp()) // 60}"
    assert run_name("monthly", slot) != run_name("monthly", slot + dt.timedelta(minutes=1))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": "61 * * * *"}, "not a five-field cron line"),
        ({"schedule": "* * * * * *"}, "not a five-field cron line"),
        ({"schedule": "@often"}, "not a five-field cron line"),
        ({"schedule": "@daily", "timeZone": "Mars/Olympus"}, "not an IANA time zone"),
    ],
)
def test_parse_refuses_what_cannot_be_scheduled(spec: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_schedule(spec)


def test_parse_defaults_match_cronjob() -> None:
    s = parse_schedule({"schedule": "@hourly"})
    assert (s.zone.key, s.concurrency, s.successful_history, s.failed_history) == (
        "UTC",
        Concurrency.FORBID,
        3,
        1,
    )


MINUTELY = Schedule("* * * * *", ZoneInfo("UTC"))
CREATED = at("2026-01-01T00:00:30")


def test_a_due_slot_runs_with_its_window() -> None:
    p = plan(MINUTELY, last_slot=None, created=CREATED, now=at("2026-01-01T00:01:02"), active=[])
    assert p.start == at("2026-01-01T00:01")
    assert p.previous == at("2026-01-01T00:00")
    assert (p.missed, p.last_slot, p.next) == (0, p.start, at("2026-01-01T00:02"))


def test_nothing_is_due_before_the_first_slot() -> None:
    p = plan(MINUTELY, last_slot=None, created=CREATED, now=at("2026-01-01T00:00:59"), active=[])
    assert p.start is None and p.missed == 0


@pytest.mark.parametrize(
    ("deadline", "now", "start", "missed"),
    [
        # Down for ~10 minutes: one catch-up run (the newest slot), nine slots missed.
        (None, "2026-01-01T00:10:20", "2026-01-01T00:10", 9),
        (60, "2026-01-01T00:10:20", "2026-01-01T00:10", 9),
        # The newest slot is older than the deadline: no run at all, all ten missed.
        (15, "2026-01-01T00:10:20", None, 10),
    ],
)
def test_after_an_outage_at_most_one_catch_up_within_the_deadline(
    deadline: int | None, now: str, start: str | None, missed: int
) -> None:
    schedule = Schedule("* * * * *", ZoneInfo("UTC"), starting_deadline_seconds=deadline)
    p = plan(schedule, last_slot=at("2026-01-01T00:00"), created=CREATED, now=at(now), active=[])
    assert (p.start, p.missed) == (None if start is None else at(start), missed)
    assert p.last_slot == at("2026-01-01T00:10")


def test_more_than_a_hundred_missed_slots_warn_without_a_storm() -> None:
    now = at("2026-01-03T00:00:05")
    p = plan(MINUTELY, last_slot=at("2026-01-01T00:00"), created=CREATED, now=now, active=[])
    assert p.too_many_missed and p.start == at("2026-01-03T00:00")
    few = plan(MINUTELY, last_slot=at("2026-01-02T22:21"), created=CREATED, now=now, active=[])
    assert not few.too_many_missed  # 99 missed + 1 run


@pytest.mark.parametrize(
    ("policy", "start", "cancel", "blocked"),
    [
        (Concurrency.ALLOW, True, (), ()),
        (Concurrency.FORBID, False, (), ("old",)),
        (Concurrency.REPLACE, True, ("old",), ()),
    ],
)
def test_concurrency_policy_with_an_active_run(
    policy: Concurrency, start: bool, cancel: tuple[str, ...], blocked: tuple[str, ...]
) -> None:
    schedule = Schedule("* * * * *", ZoneInfo("UTC"), concurrency=policy)
    last = at("2026-01-01T00:00")
    p = plan(
        schedule, last_slot=last, created=CREATED, now=at("2026-01-01T00:01:01"), active=["old"]
    )
    assert (p.start is not None, p.cancel, p.blocked_by) == (start, cancel, blocked)
    # Forbid keeps the slot due: it runs once the active run ended, within its deadline.
    assert p.last_slot == (last if policy is Concurrency.FORBID else at("2026-01-01T00:01"))


def test_suspended_slots_pass_and_are_not_caught_up() -> None:
    schedule = Schedule("* * * * *", ZoneInfo("UTC"), suspend=True)
    p = plan(schedule, last_slot=at("2026-01-01T00:00"), created=CREATED,
             now=at("2026-01-01T00:05:01"), active=[])  # fmt: skip
    assert (p.start, p.missed, p.last_slot) == (None, 5, at("2026-01-01T00:05"))


def run(name: str, minute: int, phase: str) -> ScheduledRun:
    return ScheduledRun(name, at(f"2026-01-01T00:{minute:02d}"), phase)


def test_history_keeps_the_newest_of_each_outcome() -> None:
    runs = [
        run("s1", 1, "Succeeded"),
        run("f2", 2, "Failed"),
        run("s3", 3, "Succeeded"),
        run("c4", 4, "Cancelled"),
        run("s5", 5, "Succeeded"),
        run("r6", 6, "Running"),
    ]
    assert history_to_delete(runs, succeeded=2, failed=1) == ["s1", "f2"]
    assert history_to_delete(runs, succeeded=0, failed=0) == ["s1", "f2", "s3", "c4", "s5"]


@pytest.mark.parametrize(
    ("phases", "failures", "through"),
    [
        (["Failed", "Failed", "Failed"], 3, 3),
        (["Failed", "Succeeded", "Failed"], 1, 3),
        (["Failed", "Cancelled", "Failed"], 2, 3),
        # An earlier run still active: later outcomes wait, so the order stays the slots'.
        (["Failed", "Running", "Failed"], 1, 1),
    ],
)
def test_consecutive_failures_are_counted_once_in_slot_order(
    phases: list[str], failures: int, through: int
) -> None:
    runs = [run(f"r{i}", i, p) for i, p in enumerate(phases, start=1)]
    counted = count_failures(FailureCount(0, None), runs)
    assert counted == FailureCount(failures, at(f"2026-01-01T00:{through:02d}"))
    # Counting again (the next reconciliation) adds nothing.
    assert count_failures(counted, runs) == counted
