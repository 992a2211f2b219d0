"""A run's output reaches the caller, however much of it, without blocking or leftovers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.unit.local_invoker.support import start
from wt_invokers import LocalSubprocessInvoker
from wt_invokers.local import kill_stale_processes
from wt_testkit.workflows import SAMPLE_WORKFLOW, process_is_alive


async def test_output_lines_reach_callback_and_tail(workspace: Path, tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW,
        cwd=workspace,
        launcher="prefix",
        tail_lines=3,
        line_callback=lambda stream, line: lines.append((stream, line)),
    )
    await start(inv, tmp_path, stdout_lines=5, exit_code=1)
    assert await inv.wait(timeout=20) == 1
    assert [line for stream, line in lines if stream == "stdout"] == [
        f"stdout line {i}" for i in range(1, 6)
    ]
    assert inv.output_tail == ["stdout line 3", "stdout line 4", "stdout line 5"]


@pytest.mark.timeout(30)
async def test_fifty_megabytes_of_output_do_not_deadlock(workspace: Path, tmp_path: Path) -> None:
    received = {"stdout": 0, "stderr": 0}

    def count(stream: str, line: str) -> None:
        received[stream] += len(line) + 1

    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix", line_callback=count
    )
    await start(inv, tmp_path, stdout_bytes=50_000_000, stderr_bytes=5_000_000)
    assert await inv.wait(timeout=25) == 0
    assert received == {"stdout": 50_000_000, "stderr": 5_000_000}
    assert len(inv.output_tail) == 50


async def test_a_finished_run_leaves_no_process_behind(workspace: Path, tmp_path: Path) -> None:
    # A workflow that backgrounds a child (holding its output pipes) and exits: wait()
    # must neither hang on the pipes nor leave the child running outside any limit.
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix", kill_grace_seconds=0.5
    )
    pid_file = tmp_path / "gc.pid"
    await start(
        inv,
        tmp_path,
        run_id="run-bg",
        grandchild_sleep=60,
        grandchild_holds_output=True,
        grandchild_pid_file=pid_file,
        stdout_lines=2,
        exit_code=3,
    )
    assert await asyncio.wait_for(inv.wait(), timeout=10) == 3
    assert inv.output_tail == ["stdout line 1", "stdout line 2"]
    grandchild = int(pid_file.read_text())
    assert not process_is_alive(grandchild)
    assert await kill_stale_processes("run-bg", grace=0.5) == 0


async def test_the_event_loop_stays_free_while_waiting(workspace: Path, tmp_path: Path) -> None:
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await start(inv, tmp_path, sleep=0.6)
    assert await inv.wait(timeout=20) == 0
    task.cancel()
    assert ticks >= 20
