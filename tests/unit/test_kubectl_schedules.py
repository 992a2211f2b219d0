"""``kubectl wt`` for schedules, without a cluster: manifests, tables, argument forms."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from wt_kubectl.core import rerun_manifest
from wt_kubectl.errors import UsageError
from wt_kubectl.schedules import render_schedules, schedule_target, trigger_manifest

NOW = dt.datetime(2026, 3, 1, 5, 0, 7, 123, tzinfo=dt.UTC)


def schedule(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "monthly", "namespace": "team", "uid": "u-1"},
        "spec": {
            "schedule": "@monthly",
            "timeZone": "Europe/Berlin",
            "runTemplate": {"spec": {"workflow": "w", "invoker": "Local", "resultsUrl": "x"}},
        },
        "status": status,
    }


def test_trigger_is_a_manual_run_of_the_window_since_the_last_slot() -> None:
    run = trigger_manifest(schedule(lastScheduleTime="2026-02-01T00:00:00Z"), now=NOW, name=None)
    meta = run["metadata"]
    assert meta["generateName"] == "monthly-manual-"
    assert meta["annotations"] == {
        "wt.dev/scheduled-time": "2026-03-01T06:00:07+01:00",
        "wt.dev/previous-scheduled-time": "2026-02-01T01:00:00+01:00",
        "wt.dev/trigger": "manual",
    }
    assert meta["ownerReferences"][0]["uid"] == "u-1"
    assert run["spec"] == {"workflow": "w", "invoker": "Local", "resultsUrl": "x"}


def test_trigger_before_any_slot_has_no_previous_time() -> None:
    run = trigger_manifest(schedule(), now=NOW, name="now")
    assert run["metadata"]["name"] == "now"
    assert "wt.dev/previous-scheduled-time" not in run["metadata"]["annotations"]


def test_rerun_of_a_schedules_cancelled_run_runs_the_same_window() -> None:
    old = {
        "metadata": {
            "name": "monthly-29500000",
            "namespace": "team",
            "labels": {"wt.dev/schedule": "monthly", "team": "a"},
            "annotations": {
                "wt.dev/scheduled-time": "2026-03-01T00:00:00+01:00",
                "wt.dev/previous-scheduled-time": "2026-02-01T00:00:00+01:00",
                "wt.dev/trigger": "schedule",
            },
        },
        "spec": {"workflow": "w", "invoker": "Local", "resultsUrl": "x", "cancel": True},
    }
    new = rerun_manifest(old, name=None)
    assert "cancel" not in new["spec"]
    assert new["metadata"]["labels"] == {"team": "a"}  # no longer the schedule's run
    assert new["metadata"]["annotations"] == {
        "wt.dev/rerun-of": "monthly-29500000",
        "wt.dev/scheduled-time": "2026-03-01T00:00:00+01:00",
        "wt.dev/previous-scheduled-time": "2026-02-01T00:00:00+01:00",
    }


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["schedule", "x"], ("schedule", "x")),
        (["wfs/x"], ("schedule", "x")),
        (["workflowschedules.wt.dev/x"], ("schedule", "x")),
        (["x"], None),
        (["wfr/x"], None),
    ],
)
def test_describe_takes_a_schedule_in_kubectls_forms(
    words: list[str], expected: tuple[str, str] | None
) -> None:
    assert schedule_target(words) == expected


def test_describe_refuses_two_words_that_are_not_a_schedule() -> None:
    with pytest.raises(UsageError):
        schedule_target(["pod", "x"])


def test_get_schedules_shows_the_last_runs_newest_first() -> None:
    obj = schedule(activeCount=1, lastScheduleTime="2026-03-01T04:00:00Z")
    runs = [{"status": {"phase": p}} for p in ("Running", "Failed", "Succeeded")]
    header, row = render_schedules([(obj, runs)], NOW).splitlines()
    assert header.split()[:5] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE"]
    assert row.split() == [
        "monthly",
        "@monthly",
        "Europe/Berlin",
        "false",
        "1",
        "60m",
        "<none>",
        "Running,Failed,Succeeded",
    ]
