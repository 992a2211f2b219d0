"""The runner (``wt-runner``) and its client, over a real unix socket with real processes.

No stand-in but one: where a runner that accepts connections and never answers is
needed (the slow-socket failure mode), a silent unix server plays it, and says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wt_invokers import LocalSubprocessInvoker
from wt_operator.core.errors import InvokerLostError
from wt_operator.runner import protocol
from wt_operator.runner.__main__ import probe
from wt_operator.runner.protocol import FILE_PLACEHOLDER_PREFIX, Start
from wt_operator.runner.server import Runner
from wt_operator.shell.runner_client import RemoteInvoker
from wt_operator.shell.runner_connection import RunnerUnavailableError

OTHER_UID = 65534  # nobody


@pytest.fixture
async def runner() -> AsyncIterator[Runner]:
    # Under /tmp, world-searchable: a client of another uid must reach the socket to be refused.
    directory = Path(tempfile.mkdtemp(prefix="wt-runner-test-", dir="/tmp"))
    directory.chmod(0o755)
    served = Runner(
        directory / "runner.sock", allowed_uids=[os.getuid()], state_dir=directory / "state"
    )
    await served.start()
    try:
        yield served
    finally:
        await served.close()


async def _conversation(
    socket: Path, request: bytes, *, until: str = "exited", timeout: float = 30
) -> list[dict[str, Any]]:
    reader, writer = await asyncio.open_unix_connection(str(socket))
    writer.write(request)
    await writer.drain()
    messages: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while line := await reader.readline():
                messages.append(json.loads(line))
                if messages[-1]["type"] in (until, "error"):
                    break
    finally:
        writer.close()
    return messages


def _start(argv: list[str], marker: str, **fields: Any) -> bytes:
    start = Start(
        marker=marker,
        argv=tuple(argv),
        env=fields.pop("env", {"PATH": "/usr/bin:/bin"}),
        cwd="/",
        files=fields.pop("files", {}),
        results_dir=None,
        kill_grace_seconds=1.0,
    )
    return protocol.encode("start", **start.fields())


def _lines(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages if m["type"] == "line"]


async def test_the_workflow_gets_exactly_the_environment_it_is_handed(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_OWN_SECRET", "must-not-leak")  # the runner's own environment
    messages = await _conversation(
        runner.socket_path, _start(["/usr/bin/env"], "env-run", env={"ONLY": "this"})
    )
    assert _lines(messages) == ["ONLY=this"]
    assert messages[-1] == {"v": protocol.VERSION, "type": "exited", "code": 0}


async def test_workflows_get_oom_score_adj_1000_and_the_runner_keeps_its_own(
    runner: Runner,
) -> None:
    messages = await _conversation(
        runner.socket_path, _start(["/bin/cat", "/proc/self/oom_score_adj"], "oom-run")
    )
    assert _lines(messages) == ["1000"]
    assert Path("/proc/self/oom_score_adj").read_text().strip() != "1000"


async def test_the_config_travels_as_a_private_file_removed_after_the_run(
    runner: Runner,
) -> None:
    placeholder = FILE_PLACEHOLDER_PREFIX + "config"
    script = 'stat -c %a "$1"; cat "$1"; echo; echo "$1"'
    messages = await _conversation(
        runner.socket_path,
        _start(
            ["/bin/sh", "-c", script, "sh", placeholder], "file-run", files={"config": "answer: 42"}
        ),
    )
    mode, text, path = _lines(messages)
    assert (mode, text) == ("600", "answer: 42")
    assert not Path(path).exists()


async def test_another_uid_is_refused_by_the_kernel_reported_peer(runner: Runner) -> None:
    client = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "s.sendall(sys.argv[2].encode())\n"
        "print(s.makefile().readline())\n"
    )
    request = _start(["/bin/true"], "intruder").decode()
    proc = await asyncio.to_thread(
        subprocess.run,
        ["/usr/bin/python3", "-c", client, str(runner.socket_path), request],
        user=OTHER_UID,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    if os.getuid() != 0:
        pytest.skip("this test needs to start a process as another uid (root)")
    answer = json.loads(proc.stdout)
    assert answer["type"] == "error" and answer["kind"] == "denied"
    assert f"uid {OTHER_UID}" in answer["message"]
    assert "intruder" not in runner.runs  # nothing was started


async def test_another_protocol_version_is_refused_not_guessed(runner: Runner) -> None:
    request = json.dumps({"v": 99, "type": "start", "marker": "x"}).encode() + b"\n"
    [answer] = await _conversation(runner.socket_path, request)
    assert answer["type"] == "error" and answer["kind"] == "protocol"
    assert "version 99" in answer["message"]


async def test_a_dropped_client_leaves_the_run_going_and_attach_resumes_after_the_last_line(
    runner: Runner,
) -> None:
    script = "echo one; echo two; sleep 1; echo three"
    reader, writer = await asyncio.open_unix_connection(str(runner.socket_path))
    writer.write(_start(["/bin/sh", "-c", script], "resumed"))
    await writer.drain()
    seen: list[dict[str, Any]] = []
    while len([m for m in seen if m["type"] == "line"]) < 2:
        seen.append(json.loads(await reader.readline()))
    writer.close()  # the operator went away mid-run
    last = max(m["seq"] for m in seen if m["type"] == "line")
    messages = await _conversation(
        runner.socket_path, protocol.encode("attach", marker="resumed", after=last)
    )
    assert messages[0]["type"] == "attached"
    assert _lines(messages) == ["three"]  # nothing twice, nothing lost
    assert messages[-1]["type"] == "exited" and messages[-1]["code"] == 0


async def test_attach_to_a_run_the_runner_does_not_hold_says_unknown(runner: Runner) -> None:
    [answer] = await _conversation(
        runner.socket_path, protocol.encode("attach", marker="never-started"), until="unknown"
    )
    assert answer["type"] == "unknown"


def _remote(socket_path: Path, timeout: float = 1.0) -> RemoteInvoker:
    local = LocalSubprocessInvoker("wt-sample-workflow", cwd="/", launcher="pixi")
    return RemoteInvoker(
        local, socket_path=socket_path, timeout=timeout, line_callback=lambda s, t: None
    )


async def test_no_runner_is_a_clear_error_within_the_timeout(tmp_path: Path) -> None:
    invoker = _remote(tmp_path / "absent.sock")
    with pytest.raises(RunnerUnavailableError, match="not reachable"):
        await invoker.attach("some-run")


async def test_a_runner_that_never_answers_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    # STAND-IN: a server that accepts and then stays silent, as a wedged runner would.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    server = await asyncio.start_unix_server(silent, path=str(tmp_path / "silent.sock"))
    try:
        with pytest.raises(RunnerUnavailableError):
            async with asyncio.timeout(10):
                await _remote(tmp_path / "silent.sock").attach("some-run")
    finally:
        server.close()


async def test_a_run_whose_runner_restarts_ends_invoker_lost(tmp_path: Path) -> None:
    directory = tmp_path / "r"
    directory.mkdir()
    first = Runner(
        directory / "runner.sock", allowed_uids=[os.getuid()], state_dir=directory / "state"
    )
    await first.start()
    reader, writer = await asyncio.open_unix_connection(str(first.socket_path))
    writer.write(_start(["/bin/sleep", "60"], "doomed"))
    await writer.drain()
    assert json.loads(await reader.readline())["type"] == "started"
    writer.close()
    invoker = _remote(first.socket_path, timeout=5.0)
    assert await invoker.attach("doomed")
    await first.close()  # the runner container stops: its runs die with it
    second = Runner(
        directory / "runner.sock", allowed_uids=[os.getuid()], state_dir=directory / "state"
    )
    await second.start()
    try:
        with pytest.raises(InvokerLostError, match="the runner restarted"):
            await invoker.wait(timeout=30)
    finally:
        await second.close()


async def test_the_probe_says_whether_a_runner_answers(runner: Runner, tmp_path: Path) -> None:
    assert await asyncio.to_thread(probe, runner.socket_path)
    assert not await asyncio.to_thread(probe, tmp_path / "nothing.sock", 1.0)


def test_the_runner_refuses_to_serve_its_own_uid(tmp_path: Path) -> None:
    # Its workflows run as its uid: serving that uid would let any workflow drive it.
    args = ["--socket", str(tmp_path / "s.sock"), "--allow-uid", str(os.getuid())]
    proc = subprocess.Popen(
        [sys.executable, "-m", "wt_operator.runner", *args], stderr=subprocess.PIPE, text=True
    )
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:  # it serves: the refusal is missing
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == 2, err
    assert "own uid" in err
    assert not (tmp_path / "s.sock").exists()
