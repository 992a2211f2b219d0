"""``kubectl wt`` through the installed kubectl, against the real API server and operator.

Submit, wait, rerun and describe; logs are in test_kubectl_plugin_logs.py, RBAC and
error messages in test_kubectl_plugin_access.py. Everything here is real: API server,
RBAC, operator, workflow processes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pty
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import local_spec
from tests.integration.kubectl_plugin import kubectl_wt, manifest, plugin_env, start_kubectl_wt
from wt_operator.api import human_duration

pytestmark = pytest.mark.timeout(180)


async def test_submit_wait_exits_with_the_workflows_exit_code(
    start_operator: Any, control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    start_operator()
    listed = await asyncio.to_thread(
        subprocess.run,
        [str(control_plane.bin_dir / "kubectl"), "plugin", "list"],
        capture_output=True,
        text=True,
        env=plugin_env(control_plane),
        check=False,
    )
    assert "/kubectl-wt" in listed.stdout  # kubectl itself finds the plugin on PATH
    ok = tmp_path / "nightly report.yaml"
    ok.write_text(manifest(None, local_spec({"sleep": 1, "stdout_lines": 2})))
    proc = await kubectl_wt(control_plane, "submit", "-f", str(ok), "--wait", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    assert re.fullmatch(r"nightly-report-[a-z0-9]{5}", name), proc.stdout  # generateName
    assert f"{name}: Running" in proc.stderr  # one plain line per transition (no TTY)
    assert f"{name}: Succeeded" in proc.stderr

    bad = manifest("bad", local_spec({"exit_code": 3, "stderr_lines": 2}))
    proc = await kubectl_wt(
        control_plane, "-n", namespace, "submit", "-f", "-", "--wait", input=bad
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "bad\n"
    assert "bad: Failed" in proc.stderr and "exit code 3" in proc.stderr
    assert "  stderr line 2" in proc.stderr  # why it failed, without another command

    # wait on a finished run answers at once, with the same code; on a TTY it redraws.
    primary, secondary = pty.openpty()
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [str(control_plane.bin_dir / "kubectl"), "wt", "wait", "wfr/bad", "-n", namespace],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=plugin_env(control_plane),
            timeout=60,
            check=False,
        )
        tty_text = os.read(primary, 65536).decode()
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 3
    assert "\x1b[2K" in tty_text and "bad: Failed" in tty_text


async def test_wait_times_out_with_124_and_a_cancelled_run_gives_130(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any
) -> None:
    start_operator()
    await runs.create("long", local_spec({"sleep": 120}))
    await runs.wait_for("long", ["Running"])
    proc = await kubectl_wt(control_plane, "wait", "long", "--timeout", "1s", "-n", namespace)
    assert proc.returncode == 124
    assert "timed out after 1s waiting for long (still Running)" in proc.stderr
    waiting = await start_kubectl_wt(control_plane, "wait", "long", "-n", namespace)
    await asyncio.sleep(2)  # the watch is open
    await runs.delete("long")
    _, err = await asyncio.wait_for(waiting.communicate(), 60)
    assert waiting.returncode == 130, err.decode()


async def test_rerun_creates_a_second_independent_run_that_succeeds(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any, tmp_path: Path
) -> None:
    start_operator()
    count, echo = tmp_path / "count", tmp_path / "echo"
    spec = local_spec({"append_to": str(count), "echo_file": str(echo)}, workflowRunId="first-id")
    await runs.create("first", spec, labels={"team": "geo"})
    await runs.wait_for("first", ["Succeeded"])
    proc = await kubectl_wt(control_plane, "rerun", "first", "--wait", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    second = proc.stdout.strip()
    assert second.startswith("first-") and second != "first"
    old, new = await runs.get("first"), await runs.get(second)
    assert old is not None and new is not None
    assert new["status"]["phase"] == "Succeeded"
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["metadata"]["annotations"]["wt.dev/rerun-of"] == "first"
    assert new["metadata"]["labels"] == {"team": "geo"}
    assert new["spec"]["config"] == old["spec"]["config"]
    # A new identity: the workflow was told the new run's uid, not the original's id.
    assert "workflowRunId" not in new["spec"]
    assert new["status"]["workflowRunId"] == new["metadata"]["uid"]
    assert f"env WT_INVOKERS__RUN_ID={new['metadata']['uid']}" in echo.read_text()
    assert count.read_text().splitlines() == ["ran", "ran"]  # it ran again, once
    assert old["status"]["phase"] == "Succeeded"  # the original is untouched

    named = await kubectl_wt(control_plane, "rerun", second, "--name", "third", "-n", namespace)
    assert named.stdout == "third\n", named.stderr
    third = await runs.get("third")
    assert third is not None and third["metadata"]["annotations"]["wt.dev/rerun-of"] == second


async def test_describe_shows_reason_message_timings_and_events(
    start_operator: Any, control_plane: Any, namespace: str, runs: Any
) -> None:
    start_operator()
    await runs.create("fails", local_spec({"exit_code": 3, "stderr_lines": 4}))
    obj = await runs.wait_for("fails", ["Failed"])
    for _ in range(50):  # the Failed Event follows the status write
        if "Failed" in [e.reason for e in await runs.events("fails")]:
            break
        await asyncio.sleep(0.1)
    proc = await kubectl_wt(control_plane, "describe", "fails", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    status = obj["status"]
    assert "Phase:          Failed" in lines
    assert "Reason:         Failed" in lines
    assert lines[lines.index("Phase:          Failed") + 2].startswith("Message:        ")
    assert "                stderr line 4" in lines  # the whole message, under its label
    assert "Exit Code:      3" in lines
    assert any(line.startswith("Duration:       ") for line in lines)
    assert any(line.startswith(f"Completed:      {status['completionTime']}") for line in lines)
    events = lines[lines.index("Events:") + 3 :]
    assert [e.split()[1] for e in events][:2] == ["Running", "Failed"]  # oldest first
    assert all("wt-operator" in e for e in events)


async def test_durations_read_as_kubectl_prints_them(
    control_plane: Any, namespace: str, runs: Any
) -> None:
    # status.duration and the plugin's ages are meant to read like a Job's DURATION and
    # kubectl's ages; the API server's own table printer (LAST SEEN) is the reference.
    ages = [0, 45, 119, 125, 187, 599, 601, 2700, 10799, 10860, 7 * 3600 + 300, 30 * 3600]
    ages += [2 * 86400 + 7200, 7 * 86400, 9 * 86400, 800 * 86400, 3 * 365 * 86400 + 9 * 86400]
    now = dt.datetime.now(dt.UTC)
    for i, age in enumerate(ages):
        regarding = {"kind": "WorkflowRun", "name": f"age-{i}", "namespace": namespace}
        stamp = (now - dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await runs.core.create_namespaced_event(
            namespace,
            {
                "metadata": {"name": f"age-{i}"},
                "involvedObject": regarding,
                "reason": "Age",
                "message": str(age),
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            },
        )
    table = control_plane.kubectl("get", "events", "-n", namespace, "--no-headers").stdout
    printed = {line.split()[-1]: line.split()[0] for line in table.splitlines()}
    for age in ages:
        # The printer ran a moment after the events were made: allow it a few seconds.
        ours = {human_duration(age + late) for late in range(4)}
        assert printed[str(age)] in ours, (age, printed[str(age)], ours)
