"""WorkflowSchedules under GitOps: the shipped health checks (Argo CD's Lua, Flux's kstatus)
read the operator's conditions, and a schedule's runs are never taken for Git's objects."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from lupa import LuaRuntime

from tests.unit.test_gitops_health import _kstatus, _to_lua, kstatus_bin  # noqa: F401
from wt_operator.api import GITOPS_MARKERS, schedule_run_body
from wt_operator.core.retention import ttl_for
from wt_operator.core.schedule_status import ScheduleState, SuspendReason, conditions

ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = ROOT / "gitops" / "argocd" / "health-workflowschedule.lua"
NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def schedule(why: SuspendReason | None, *, suspend: bool = False, message: str = "m") -> Any:
    obj: dict[str, Any] = {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowSchedule",
        "metadata": {"name": "s", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {
            "schedule": "@daily",
            "suspend": suspend,
            "runTemplate": {
                "metadata": {
                    "labels": {"team": "a", "app.kubernetes.io/instance": "reports"},
                    "annotations": {"argocd.argoproj.io/tracking-id": "reports:x", "k": "v"},
                },
                "spec": {"workflow": "w", "invoker": "Local", "resultsUrl": "file:///r"},
            },
        },
    }
    if why is not None:
        obj["status"] = {
            "observedGeneration": 1,
            "conditions": conditions(
                ScheduleState(why, message), previous={}, generation=1, now=NOW
            ),
        }
    return obj


CASES = {
    # name: (object, kstatus, Argo CD)
    "scheduling": (schedule(SuspendReason.NONE), "Current", "Healthy"),
    "suspended-by-user": (
        schedule(SuspendReason.USER, suspend=True),
        "Current",
        "Suspended",
    ),
    "suspended-after-failures": (
        schedule(SuspendReason.FAILURES, suspend=True),
        "Failed",
        "Degraded",
    ),
    "invalid": (schedule(SuspendReason.INVALID), "Failed", "Degraded"),
    "stale": (
        schedule(SuspendReason.NONE) | {"metadata": {"name": "s", "generation": 2}},
        "InProgress",
        "Progressing",
    ),
}


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    check = lua.execute(f"return function(obj)\n{HEALTH_LUA.read_text()}\nend")
    hs = check(_to_lua(lua, copy.deepcopy(obj)))
    return hs["status"], hs["message"]


@pytest.mark.parametrize("name", list(CASES))
def test_argocd_health(name: str) -> None:
    obj, _, expected = CASES[name]
    status, message = argocd_health(obj)
    assert (status, bool(message)) == (expected, True)


def test_argocd_health_without_status_waits() -> None:
    assert argocd_health(schedule(None)) == ("Progressing", "Waiting for the operator")


@pytest.mark.timeout(660)
@pytest.mark.parametrize("name", list(CASES))
def test_kstatus(kstatus_bin: Path, name: str) -> None:  # noqa: F811
    obj, expected, _ = CASES[name]
    assert _kstatus(kstatus_bin, obj)["status"] == expected


def test_runs_carry_no_gitops_marker_so_no_tool_prunes_them() -> None:
    run = schedule_run_body(
        schedule(None), scheduled="2026-05-01T00:00:00Z", previous=None, trigger="schedule"
    )
    meta = run["metadata"]
    markers = {key for _, key, _ in GITOPS_MARKERS}
    assert not markers & (meta["labels"].keys() | meta["annotations"].keys())
    assert meta["labels"] == {"team": "a", "wt.dev/schedule": "s"}
    assert meta["annotations"]["k"] == "v"
    # Owned by the schedule: Argo CD shows it as the schedule's child and never prunes it.
    assert meta["ownerReferences"][0] == {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowSchedule",
        "name": "s",
        "uid": "u-1",
        "controller": True,
    }


def test_history_limits_not_the_default_ttl_keep_a_schedules_runs() -> None:
    run = schedule_run_body(
        schedule(None), scheduled="2026-05-01T00:00:00Z", previous=None, trigger="schedule"
    )
    assert ttl_for(run["spec"], run["metadata"], 3600) is None
    assert ttl_for({"ttlSecondsAfterFinished": 60}, run["metadata"], 3600) == 60
