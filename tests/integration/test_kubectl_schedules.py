"""``kubectl wt`` for schedules and cancel, through the real kubectl against the real API
server and operator; and submit's strict field validation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import create_tree, local_spec
from tests.integration.kubectl_plugin import kubectl_wt
from wt_envtest.runs import Runs
from wt_testkit.workflows import process_is_alive, read_echo_file, wait_process_gone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_submit_refuses_a_misspelled_field(
    control_plane: Any, namespace: str, crds: Any, runs: Runs, tmp_path: Path
) -> None:
    spec = local_spec()
    spec["confg"] = spec.pop("config")  # the typo a user makes
    manifest = tmp_path / "run.yaml"
    manifest.write_text(
        yaml.safe_dump({"apiVersion": "wt.dev/v1alpha1", "kind": "WorkflowRun", "spec": spec})
    )
    proc = await kubectl_wt(control_plane, "submit", "-f", str(manifest), "-n", namespace)
    assert proc.returncode == 1
    assert 'unknown field "spec.confg"' in proc.stderr
    assert await runs.list() == []


async def test_trigger_suspend_resume_get_and_describe_a_schedule(
    control_plane: Any, start_operator: Any, namespace: str, runs: Runs, tmp_path: Path
) -> None:
    echo = tmp_path / "echo.txt"
    last = "2026-01-01T00:00:00Z"
    await runs.custom.create_namespaced_custom_object(
        "wt.dev", "v1alpha1", namespace, "workflowschedules",
        {
            "apiVersion": "wt.dev/v1alpha1",
            "kind": "WorkflowSchedule",
            "metadata": {"name": "monthly"},
            "spec": {
                "schedule": "@monthly",
                "timeZone": "Europe/Berlin",
                "suspend": True,
                "runTemplate": {
                    "metadata": {"labels": {"team": "rangers"}},
                    "spec": local_spec({"echo_file": str(echo)}),
                },
            },
        },
    )  # fmt: skip
    await runs.custom.patch_namespaced_custom_object_status(
        "wt.dev", "v1alpha1", namespace, "workflowschedules", "monthly",
        {"status": {"lastScheduleTime": last}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    start_operator()
    proc = await kubectl_wt(control_plane, "trigger", "monthly", "-n", namespace, "--wait")
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.splitlines()[0]
    assert name.startswith("monthly-manual-")
    run = await runs.get(name)
    assert run is not None
    ann = run["metadata"]["annotations"]
    assert ann["wt.dev/trigger"] == "manual"
    assert run["metadata"]["labels"] == {"team": "rangers", "wt.dev/schedule": "monthly"}
    # The window: from the schedule's last slot (in its zone) to now.
    assert ann["wt.dev/previous-scheduled-time"] == "2026-01-01T01:00:00+01:00"
    seen = read_echo_file(echo)
    assert seen.env["WT_PREVIOUS_SCHEDULED_TIME"] == "2026-01-01T01:00:00+01:00"
    triggered = dt.datetime.fromisoformat(seen.env["WT_SCHEDULED_TIME"])
    assert abs(triggered - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=2)

    proc = await kubectl_wt(control_plane, "resume", "monthly", "-n", namespace)
    assert proc.stdout.strip() == "workflowschedule/monthly resumed"
    obj = await runs.custom.get_namespaced_custom_object(
        "wt.dev", "v1alpha1", namespace, "workflowschedules", "monthly"
    )
    assert obj["spec"]["suspend"] is False
    proc = await kubectl_wt(control_plane, "suspend", "monthly", "-n", namespace)
    assert proc.stdout.strip() == "workflowschedule/monthly suspended"

    proc = await kubectl_wt(control_plane, "get", "schedules", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND"]
    assert row.split()[:4] == ["monthly", "@monthly", "Europe/Berlin", "true"]
    assert row.endswith("Succeeded")  # the last runs' phases

    proc = await kubectl_wt(control_plane, "describe", "schedule", "monthly", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    assert f"{name}" in proc.stdout and "Succeeded" in proc.stdout and "manual" in proc.stdout


async def test_cancel_stops_a_run_and_keeps_it(
    control_plane: Any, start_operator: Any, namespace: str, runs: Runs, tmp_path: Path
) -> None:
    start_operator()
    grandchild = await create_tree(runs, "long", tmp_path / "grandchild.pid")
    await runs.wait_for("long", ["Running"])
    proc = await kubectl_wt(control_plane, "cancel", "long", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    assert "cancel requested" in proc.stdout
    obj = await runs.wait_for("long", ["Cancelled"], timeout=30)
    assert obj["spec"]["cancel"] is True
    await wait_process_gone(grandchild)
    assert not process_is_alive(grandchild)
    proc = await kubectl_wt(control_plane, "cancel", "long", "-n", namespace)
    assert "already finished (Cancelled)" in proc.stdout
