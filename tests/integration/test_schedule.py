"""WorkflowSchedules run by the real operator on the real API server.

One test waits for a real every-minute slot (two operators racing for it); the others
put the schedule in the state an outage leaves (status.lastSlotTime minutes back, as the
operator itself writes it) so the catch-up, restart and failure cases need no waiting.
Everything about slots between (DST, leap days, concurrency) is the pure core's tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.integration.conftest import create_tree, local_spec
from wt_envtest.runs import Runs, condition
from wt_operator.api import schedule_run_body
from wt_operator.core.schedule import run_name
from wt_testkit.workflows import process_is_alive, read_echo_file, wait_process_gone

pytestmark = pytest.mark.integration

MINUTE = 60


class Schedules:
    def __init__(self, runs: Runs) -> None:
        self.custom: client.CustomObjectsApi = runs.custom
        self.ns = runs.namespace

    async def create(self, name: str, template: dict[str, Any], **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": "wt.dev/v1alpha1",
            "kind": "WorkflowSchedule",
            "metadata": {"name": name},
            "spec": {"runTemplate": {"spec": template}, **spec},
        }
        made: dict[str, Any] = await self.custom.create_namespaced_custom_object(
            "wt.dev", "v1alpha1", self.ns, "workflowschedules", body
        )
        return made

    async def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await self.custom.get_namespaced_custom_object(
            "wt.dev", "v1alpha1", self.ns, "workflowschedules", name
        )
        return obj

    async def patch_status(self, name: str, status: dict[str, Any]) -> None:
        await self.custom.patch_namespaced_custom_object_status(
            "wt.dev", "v1alpha1", self.ns, "workflowschedules", name, {"status": status},
            _content_type="application/merge-patch+json",
        )  # fmt: skip


def minute(at: dt.datetime) -> dt.datetime:
    return at.replace(second=0, microsecond=0)


def iso(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def runs_of(runs: Runs, schedule: str) -> list[dict[str, Any]]:
    return [
        r
        for r in await runs.list()
        if (r["metadata"].get("labels") or {}).get("wt.dev/schedule") == schedule
    ]


async def wait_runs(runs: Runs, schedule: str, count: int, timeout: float) -> list[dict[str, Any]]:
    for _ in range(int(timeout * 5)):
        found = await runs_of(runs, schedule)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{schedule}: {count} run(s) expected, found {len(found)}")


async def wait_status(
    schedules: Schedules, name: str, key: str, timeout: float = 20.0
) -> dict[str, Any]:
    """The schedule's status once it has ``key`` (its pass writes status last)."""
    status: dict[str, Any] = {}
    for _ in range(int(timeout * 5)):
        status = (await schedules.get(name)).get("status") or {}
        if status.get(key):
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"status.{key} never written: {status}")


@pytest.fixture
def schedules(runs: Runs) -> Schedules:
    return Schedules(runs)


@pytest.mark.timeout(300)
async def test_two_operators_start_exactly_one_run_per_real_slot_with_its_window(
    start_operator: Any, runs: Runs, schedules: Schedules, tmp_path: Path
) -> None:
    echo = tmp_path / "echo.txt"
    # Two replicas as the chart runs them (kopf peering: one acts, one stands by).
    await client.CustomObjectsApi(runs.api).create_namespaced_custom_object(
        "kopf.dev", "v1", runs.namespace, "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "wt-operator"}},
    )  # fmt: skip
    replicas = [
        start_operator(standalone=False, priority=10),
        start_operator(standalone=False, priority=20),
    ]
    made = await schedules.create(
        "minutely",
        local_spec({"echo_file": str(echo)}),
        schedule="* * * * *",
        timeZone="Asia/Kolkata",  # +05:30: the window is written in the schedule's zone
    )
    [run] = await wait_runs(runs, "minutely", 1, timeout=MINUTE + 20)
    meta = run["metadata"]
    slot = dt.datetime.fromisoformat(meta["annotations"]["wt.dev/scheduled-time"])
    assert slot.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert meta["name"] == f"minutely-{int(slot.timestamp()) // 60}"
    assert meta["annotations"]["wt.dev/trigger"] == "schedule"
    previous = meta["annotations"]["wt.dev/previous-scheduled-time"]
    assert dt.datetime.fromisoformat(previous) == slot - dt.timedelta(minutes=1)
    assert meta["ownerReferences"][0]["uid"] == made["metadata"]["uid"]
    done = await runs.wait_for(meta["name"], ["Succeeded"], timeout=60)
    seen = read_echo_file(echo)
    assert seen.env["WT_SCHEDULED_TIME"] == slot.isoformat()
    assert seen.env["WT_PREVIOUS_SCHEDULED_TIME"] == previous
    assert len(await runs_of(runs, "minutely")) == 1
    status = await wait_status(schedules, "minutely", "lastSuccessfulTime")
    assert status["lastSuccessfulTime"] == done["status"]["completionTime"]
    assert dt.datetime.fromisoformat(status["lastScheduleTime"].replace("Z", "+00:00")) == slot
    assert status["nextScheduleTime"] > status["lastScheduleTime"]

    # A restart across a slot: both replicas down while the next slot passes, then one
    # comes back and starts that slot's run, once (startingDeadlineSeconds unset).
    for op in replicas:
        op.stop()
    following = slot + dt.timedelta(minutes=1)
    await asyncio.sleep(max(0.0, (following - dt.datetime.now(dt.UTC)).total_seconds()) + 2)
    start_operator()
    found = await wait_runs(runs, "minutely", 2, timeout=30)
    names = sorted(r["metadata"]["name"] for r in found)
    assert f"minutely-{int(following.timestamp()) // 60}" in names
    assert len(names) == len(set(names))


async def test_after_an_outage_one_catch_up_run_and_a_restart_adds_none(
    start_operator: Any, runs: Runs, schedules: Schedules
) -> None:
    now = dt.datetime.now(dt.UTC)
    await schedules.create(
        "daily-report", local_spec(), schedule="* * * * *", startingDeadlineSeconds=3600
    )
    # As the operator left it before going down six minutes ago.
    await schedules.patch_status(
        "daily-report", {"lastSlotTime": iso(minute(now) - 6 * dt.timedelta(minutes=1))}
    )
    op = start_operator()
    [run] = await wait_runs(runs, "daily-report", 1, timeout=30)
    newest = dt.datetime.fromisoformat(run["metadata"]["annotations"]["wt.dev/scheduled-time"])
    assert newest >= minute(now)  # the newest slot, not the oldest missed one
    status = await wait_status(schedules, "daily-report", "missedSlots")
    assert status["missedSlots"] >= 5
    events = [e.reason for e in await runs.events("daily-report")]
    assert "MissedSchedule" in events
    await runs.wait_for(run["metadata"]["name"], ["Succeeded"], timeout=60)
    op.stop()
    start_operator()
    await asyncio.sleep(3)
    names = [r["metadata"]["name"] for r in await runs_of(runs, "daily-report")]
    # A restart within the same minute re-reads the status: no second run for the slot
    # (a new minute may have started one more, for its own slot).
    assert names.count(run["metadata"]["name"]) == 1
    assert len(names) == len(set(names))


async def test_a_run_created_just_before_a_crash_is_adopted_not_repeated(
    start_operator: Any, runs: Runs, schedules: Schedules
) -> None:
    made = await schedules.create("adopt", local_spec(), schedule="@yearly")
    # The state a crash between creating the slot's run and writing the status leaves:
    # the run exists, status.lastSlotTime still names the slot before.
    slot = dt.datetime(dt.datetime.now(dt.UTC).year, 1, 1, tzinfo=dt.UTC)
    await schedules.patch_status("adopt", {"lastSlotTime": iso(slot.replace(year=slot.year - 1))})
    body = schedule_run_body(
        made, scheduled=slot.isoformat(), previous=None, trigger="schedule",
        name=run_name("adopt", slot),
    )  # fmt: skip
    await runs.custom.create_namespaced_custom_object(
        "wt.dev", "v1alpha1", runs.namespace, "workflowruns", body
    )
    start_operator()
    status = await wait_status(schedules, "adopt", "lastScheduleTime")
    assert status["lastScheduleTime"] == iso(slot)
    assert [r["metadata"]["name"] for r in await runs_of(runs, "adopt")] == [
        run_name("adopt", slot)
    ]


async def test_suspend_after_failures_stalls_the_schedule(
    start_operator: Any, runs: Runs, schedules: Schedules
) -> None:
    now = dt.datetime.now(dt.UTC)
    await schedules.create(
        "flaky",
        local_spec({"exit_code": 2}),
        schedule="* * * * *",
        suspendAfterFailures=1,
        failedRunsHistoryLimit=0,
    )
    await schedules.patch_status(
        "flaky", {"lastSlotTime": iso(minute(now) - dt.timedelta(minutes=2))}
    )
    start_operator()
    # The run fails within a second and, once counted, the history limit (0) deletes it:
    # the schedule is what a user watches. Its status is written after its spec.suspend
    # (a status saying "suspended after failures" beside an unsuspended spec would read
    # as a resume), so the conditions are read once the count is in the status.
    status = await wait_status(schedules, "flaky", "consecutiveFailures", timeout=60)
    assert status["consecutiveFailures"] == 1
    obj = await schedules.get("flaky")
    assert obj["spec"]["suspend"] is True
    stalled = condition(obj, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "SuspendedAfterFailures")
    assert "1 consecutive failed runs" in stalled["message"]
    reasons = [e.reason for e in await runs.events("flaky")]
    assert "Started" in reasons and "SuspendedAfterFailures" in reasons
    # The failed run was counted before the history limit (0) deleted it.
    for _ in range(100):
        if not await runs_of(runs, "flaky"):
            break
        await asyncio.sleep(0.2)
    assert await runs_of(runs, "flaky") == []


async def test_cancel_keeps_the_run_and_its_record(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    start_operator()
    grandchild = await create_tree(runs, "stop-me", tmp_path / "grandchild.pid")
    await runs.wait_for("stop-me", ["Running"])
    await runs.patch("stop-me", {"spec": {"cancel": True}})
    obj = await runs.wait_for("stop-me", ["Cancelled"], timeout=30)
    assert "cancelled (spec.cancel) while running" in obj["status"]["message"]
    # The cancel changed the spec: the final status observes it (GitOps tools wait for that).
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
    await wait_process_gone(grandchild)
    assert not process_is_alive(grandchild)
    assert await runs.get("stop-me") is not None  # still there, unlike a delete
    reasons = [e.reason for e in await runs.events("stop-me")]
    assert "Running" in reasons and "Cancelled" in reasons


async def test_cancel_before_start_never_starts_it(start_operator: Any, runs: Runs) -> None:
    await runs.create("never", local_spec(cancel=True))
    start_operator()
    obj = await runs.wait_for("never", ["Cancelled"], timeout=30)
    assert "before it started" in obj["status"]["message"]


@pytest.mark.timeout(200)
async def test_replace_cancels_the_active_run_which_stays_in_the_history(
    start_operator: Any, runs: Runs, schedules: Schedules
) -> None:
    now = dt.datetime.now(dt.UTC)
    await schedules.create(
        "replacing",
        local_spec({"sleep": 300}),
        schedule="* * * * *",
        concurrencyPolicy="Replace",
        failedRunsHistoryLimit=5,
    )
    # The current minute's slot is due at once; the next one replaces its run.
    await schedules.patch_status(
        "replacing", {"lastSlotTime": iso(minute(now) - dt.timedelta(minutes=1))}
    )
    start_operator()
    [first] = await wait_runs(runs, "replacing", 1, timeout=30)
    await runs.wait_for(first["metadata"]["name"], ["Running"], timeout=30)
    found = await wait_runs(runs, "replacing", 2, timeout=MINUTE + 20)
    cancelled = await runs.wait_for(first["metadata"]["name"], ["Cancelled"], timeout=30)
    assert cancelled["spec"]["cancel"] is True
    assert "cancelled (spec.cancel)" in cancelled["status"]["message"]
    [second] = [r for r in found if r["metadata"]["name"] != first["metadata"]["name"]]
    await runs.wait_for(second["metadata"]["name"], ["Running"], timeout=30)
    reasons = [e.reason for e in await runs.events("replacing")]
    assert "Replaced" in reasons


async def test_an_unknown_time_zone_stalls_the_schedule_and_says_so(
    start_operator: Any, runs: Runs, schedules: Schedules
) -> None:
    await schedules.create("lost", local_spec(), schedule="@daily", timeZone="Mars/Olympus")
    start_operator()
    await wait_status(schedules, "lost", "conditions")
    stalled = condition(await schedules.get("lost"), "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSchedule")
    assert "'Mars/Olympus' is not an IANA time zone" in stalled["message"]
    assert "InvalidSchedule" in [e.reason for e in await runs.events("lost")]
    assert await runs_of(runs, "lost") == []
