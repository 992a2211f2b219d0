"""A timeout, a cancel or a stale marker kills the whole process tree, once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.unit.local_invoker.support import results_url, start
from wt_invokers import InvocationTimeoutError, LocalSubprocessInvoker
from wt_invokers.local import PROCESS_MARKER_ENV_VAR, kill_stale_processes
from wt_testkit.workflows import (
    SAMPLE_WORKFLOW,
    process_is_alive,
    read_echo_file,
    wait_for_path,
    workflow_config,
)


async def test_timeout_kills_the_whole_tree_and_raises(
    invoker: LocalSubprocessInvoker, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    await start(
        invoker,
        tmp_path,
        echo_file=tmp_path / "echo",
        ignore_term=True,  # SIGTERM is not enough: SIGKILL must follow after the grace
        grandchild_sleep=60,
        grandchild_ignore_term=True,
        grandchild_pid_file=pid_file,
        sleep=60,
    )
    grandchild = int((await wait_for_path(pid_file)).read_text())
    config_file = read_echo_file(tmp_path / "echo").option("--config-file")
    assert config_file is not None and process_is_alive(grandchild)
    with pytest.raises(InvocationTimeoutError, match="too slow for the test"):
        await invoker.wait(timeout=0.5, error_msg="too slow for the test")
    assert not process_is_alive(grandchild)
    assert not Path(config_file).exists()
    assert not invoker.is_running


async def test_default_timeout_message_names_the_timeout(workspace: Path, tmp_path: Path) -> None:
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    await start(inv, tmp_path, sleep=30)
    with pytest.raises(InvocationTimeoutError, match=r"0\.3 s"):
        await inv.wait(timeout=0.3)


async def test_grandchild_outliving_the_child_is_killed_on_timeout(
    workspace: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "gc.pid"
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix", kill_grace_seconds=0.3
    )
    # The child dies at SIGTERM; its grandchild ignores SIGTERM and must still die.
    await start(
        inv,
        tmp_path,
        grandchild_sleep=60,
        grandchild_ignore_term=True,
        grandchild_pid_file=pid_file,
        sleep=60,
    )
    grandchild = int((await wait_for_path(pid_file)).read_text())
    with pytest.raises(InvocationTimeoutError):
        await inv.wait(timeout=0.3)
    assert not process_is_alive(grandchild)


async def test_cancel_kills_the_tree_and_is_idempotent(
    invoker: LocalSubprocessInvoker, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    setsid_file = tmp_path / "setsid.pid"
    await start(invoker, tmp_path, grandchild_sleep=60, grandchild_pid_file=pid_file, sleep=60)
    grandchild = int((await wait_for_path(pid_file)).read_text())
    code = await invoker.cancel()
    assert code == -signal.SIGTERM
    assert not process_is_alive(grandchild)
    assert await invoker.cancel() is None
    # A grandchild that left the process group is found by the run marker.
    await start(
        invoker,
        tmp_path,
        run_id="run-setsid",
        grandchild_sleep=60,
        grandchild_setsid=True,
        grandchild_pid_file=setsid_file,
        sleep=60,
    )
    escaped = int((await wait_for_path(setsid_file)).read_text())
    await invoker.cancel()
    assert not process_is_alive(escaped)


async def test_cancelling_the_waiting_task_kills_the_tree(workspace: Path, tmp_path: Path) -> None:
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix", kill_grace_seconds=0.5
    )
    await start(inv, tmp_path, sleep=60)
    child = inv.pid
    assert child is not None
    waiter = asyncio.create_task(inv.wait())
    await asyncio.sleep(0.1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not process_is_alive(child)
    assert not inv.is_running


async def test_kill_stale_processes_finds_a_marked_orphan(tmp_path: Path) -> None:
    env = {**os.environ, PROCESS_MARKER_ENV_VAR: "crashed-run"}
    # sh exits at once: its `sleep` is orphaned, as after an operator crash.
    out = subprocess.run(
        ["/bin/sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = int(out.stdout)
    assert process_is_alive(orphan)
    assert await kill_stale_processes("other-run", grace=0.5) == 0
    assert process_is_alive(orphan)
    assert await kill_stale_processes("crashed-run", grace=0.5) == 1
    assert not process_is_alive(orphan)


async def test_runs_told_the_same_run_id_are_told_apart_by_their_run_uid(
    workspace: Path, tmp_path: Path
) -> None:
    first = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    second = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    config = workflow_config(sleep=60)
    url = results_url(tmp_path)
    await first.run("copied-id", config, url, "local", True, run_uid="uid-a")
    await second.run("copied-id", config, url, "local", True, run_uid="uid-b")
    try:
        # Cleaning up after one never touches the other.
        assert await kill_stale_processes("uid-a", grace=0.5) >= 1
        assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGTERM
        assert second.is_running
    finally:
        await second.cancel()
