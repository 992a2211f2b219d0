"""LocalSubprocessInvoker against real process trees in a real (offline-built) conda env.

The only stand-in is the ``pixi`` binary (``write_pixi_standin``): the real one
cannot be installed here. The workspace path contains a space on purpose.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from wt_invokers import (
    CommandError,
    InstallationError,
    InvocationStartError,
    InvocationStateError,
    InvocationTimeoutError,
    InvokerConfigurationError,
    LocalSubprocessInvoker,
)
from wt_invokers.local import (
    CWD_ENV_VAR,
    PROCESS_MARKER_ENV_VAR,
    RUN_ID_ENV_VAR,
    Launcher,
    kill_stale_processes,
)
from wt_testkit.workflows import (
    SAMPLE_WORKFLOW,
    ConfigValue,
    environment_prefix,
    make_workspace,
    process_is_alive,
    read_echo_file,
    wait_for_path,
    workflow_config,
    write_pixi_standin,
)

LAUNCHERS = ["pixi", "prefix"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace (path with a space) whose default env holds wt-sample-workflow 1.2.0."""
    return make_workspace(tmp_path_factory.mktemp("inv") / "my workspace")


@pytest.fixture
def pixi_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STAND-IN for the real pixi binary, first on PATH for this test."""
    pixi = write_pixi_standin(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{pixi.parent}{os.pathsep}{os.environ['PATH']}")
    return pixi


@pytest.fixture(params=LAUNCHERS)
def launcher(request: pytest.FixtureRequest, pixi_standin: Path) -> Launcher:
    return cast(Launcher, request.param)


@pytest.fixture
async def invoker(workspace: Path, launcher: Launcher) -> AsyncIterator[LocalSubprocessInvoker]:
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher=launcher, kill_grace_seconds=0.5
    )
    yield inv
    if inv.is_running:  # a failed test must not leave its tree behind
        await inv.cancel()


def results_url(tmp_path: Path) -> str:
    return (tmp_path / "results").as_uri()


async def start(
    inv: LocalSubprocessInvoker, tmp_path: Path, run_id: str | None = None, **config: ConfigValue
) -> None:
    # The run id marks the run's processes, and a finished run's leftovers are killed by
    # marker machine-wide: one id per test, so two test sessions never kill each other's.
    the_id = run_id or f"run-{tmp_path.name}"
    await inv.run(the_id, workflow_config(**config), results_url(tmp_path), "local", True)


# -- results -----------------------------------------------------------------------------


async def test_exit_codes_are_returned_and_the_invoker_is_reusable(
    invoker: LocalSubprocessInvoker, tmp_path: Path
) -> None:
    await start(invoker, tmp_path, exit_code=0)
    assert invoker.is_running and invoker.pid is not None
    assert await invoker.wait(timeout=20) == 0
    assert not invoker.is_running and invoker.pid is None
    await start(invoker, tmp_path, run_id="run-2", exit_code=7)
    assert await invoker.wait(timeout=20) == 7


async def test_death_by_signal_n_is_minus_n(workspace: Path, tmp_path: Path) -> None:
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    await start(inv, tmp_path, kill_self="TERM")
    assert await inv.wait(timeout=20) == -signal.SIGTERM


async def test_argv_env_and_private_files_are_as_specified(
    invoker: LocalSubprocessInvoker,
    workspace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WT_TEST_PARENT_VAR", "from parent")
    echo = tmp_path / "echo"
    extra_env = {"EXTRA_ONE": "1", "WT_RESULTS": "overridden by the results URL"}
    extra_before = dict(extra_env)
    config = workflow_config(echo_file=echo, sleep=0.2)
    url = results_url(tmp_path)
    await invoker.run(
        "run-argv",
        config,
        url,
        "local",
        False,
        otel_exporter="otlp",
        otel_console_exporter_dst="/tmp/otel out.txt",
        extra_env=extra_env,
        lithops_config_text="lithops:\n  backend: localhost\n",
    )
    await wait_for_path(echo)
    seen = read_echo_file(echo)
    config_file = seen.option("--config-file")
    lithops_file = seen.env["LITHOPS_CONFIG_FILE"]
    assert config_file is not None and Path(config_file).exists() and Path(lithops_file).exists()
    assert await invoker.wait(timeout=20) == 0

    assert seen.argv == [
        "run",
        "--config-file",
        config_file,
        "--execution-mode",
        "local",
        "--no-mock-io",
        "--otel-exporter",
        "otlp",
        "--otel-console-exporter-dst",
        "/tmp/otel out.txt",
    ]
    assert seen.cwd == str(workspace)
    assert (seen.config_text, seen.config_mode) == (config, "600")
    assert seen.lithops_config_text == "lithops:\n  backend: localhost\n"
    assert seen.lithops_mode == "600"
    assert seen.env["WT_RESULTS"] == url
    assert seen.env[RUN_ID_ENV_VAR] == "run-argv"
    assert seen.env["EXTRA_ONE"] == "1"
    assert seen.env["WT_TEST_PARENT_VAR"] == "from parent"
    prefix = environment_prefix(workspace)
    assert seen.env["CONDA_PREFIX"] == str(prefix)
    assert seen.env["PATH"].split(os.pathsep)[0] == str(prefix / "bin")
    assert extra_env == extra_before
    # Private files are gone once wait() returned.
    assert not Path(config_file).exists() and not Path(lithops_file).exists()


async def test_a_given_base_environment_replaces_the_callers(
    workspace: Path, launcher: Launcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caller's own variables stay out; activation and the invocation's still apply.
    monkeypatch.setenv("WT_TEST_PARENT_SECRET", "from parent")
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher=launcher, base_env=base, kill_grace_seconds=0.5
    )
    echo = tmp_path / "echo"
    await inv.run(
        f"base-env-{launcher}",
        workflow_config(echo_file=echo),
        results_url(tmp_path),
        "local",
        False,
        extra_env={"EXTRA_ONE": "1"},
    )
    assert await inv.wait(timeout=20) == 0
    seen = read_echo_file(echo).env
    assert "WT_TEST_PARENT_SECRET" not in seen
    assert (seen["HOME"], seen["LANG"], seen["EXTRA_ONE"]) == (str(tmp_path), "C.UTF-8", "1")
    assert seen["CONDA_PREFIX"] == str(environment_prefix(workspace))


async def test_custom_results_variable_and_percent_decoded_results_dir(
    workspace: Path, tmp_path: Path
) -> None:
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix", results_env_var="MY_RESULTS"
    )
    target = tmp_path / "results dir" / "deep"
    url = "file://" + str(target).replace(" ", "%20")
    config = workflow_config(results_env_var="MY_RESULTS", result_file="out.txt", result_text="42")
    await inv.run("run-res", config, url, "local", True)
    assert await inv.wait(timeout=20) == 0
    assert (target / "out.txt").read_text() == "42\n"


async def test_bare_results_path_is_created(workspace: Path, tmp_path: Path) -> None:
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    target = tmp_path / "bare results"
    await inv.run("r", workflow_config(result_file="x"), str(target), "local", True)
    assert await inv.wait(timeout=20) == 0
    assert (target / "x").read_text() == "ok\n"


# -- output --------------------------------------------------------------------------------


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


# -- killing -------------------------------------------------------------------------------


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


async def test_an_exec_linux_refuses_is_a_start_error_not_a_crash(
    workspace: Path, tmp_path: Path
) -> None:
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    huge = {"BIG": "x" * 200_000}  # one string over MAX_ARG_STRLEN (128 KiB): E2BIG
    with pytest.raises(InvocationStartError, match="Argument list too long"):
        await inv.run(
            "run-big", workflow_config(), results_url(tmp_path), "local", True, extra_env=huge
        )
    assert not inv.is_running
    # The invoker is usable afterwards.
    await start(inv, tmp_path)
    assert await inv.wait(10) == 0


async def test_a_results_url_that_cannot_be_a_directory_is_a_configuration_error(
    workspace: Path, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    with pytest.raises(InvokerConfigurationError, match="cannot be created"):
        await inv.run(
            "run-x", workflow_config(), (tmp_path / "a-file" / "x").as_uri(), "local", True
        )
    assert not inv.is_running


async def test_an_unknown_keyword_is_warned_about_once(
    workspace: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    for _ in range(2):
        await inv.run(
            "run-k", workflow_config(), results_url(tmp_path), "local", True, extra_evn={}
        )
        assert await inv.wait(10) == 0
    warnings = [r for r in caplog.records if "extra_evn" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


# -- installation, launching, state ----------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("wt-sample-workflow", True),
        ("wt-sample-workflow >=1.2", True),
        ("wt-sample-workflow ==1.2.0", True),
        ("wt-sample-workflow >=2", False),
        ("another-workflow", False),
    ],
)
async def test_is_installed_is_version_aware(workspace: Path, spec: str, expected: bool) -> None:
    assert await LocalSubprocessInvoker(spec, cwd=workspace).is_installed() is expected


async def test_is_installed_without_the_environment_is_false(
    workspace: Path, tmp_path: Path
) -> None:
    assert not await LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, environment="absent"
    ).is_installed()
    assert not await LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=tmp_path).is_installed()


async def test_another_version_is_told_apart(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws2", packages=["wt-sample-workflow==2.0.1"])
    assert await LocalSubprocessInvoker("wt-sample-workflow >=2", cwd=ws).is_installed()
    assert not await LocalSubprocessInvoker("wt-sample-workflow <2", cwd=ws).is_installed()
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=ws, launcher="prefix")
    assert await inv.check_output(["--version"]) == "wt-sample-workflow 2.0.1"


async def test_install_is_not_supported(workspace: Path) -> None:
    with pytest.raises(NotImplementedError):
        await LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace).install()


async def test_check_output_honours_the_launcher(invoker: LocalSubprocessInvoker) -> None:
    assert await invoker.check_output(["--version"]) == "wt-sample-workflow 1.2.0"
    assert await invoker.check_output(["echo-stdin"], stdin="hello\nworld") == "hello\nworld"
    with pytest.raises(CommandError, match="broken on purpose") as info:
        await invoker.check_output(["fail", "4", "broken on purpose"])
    assert info.value.returncode == 4
    assert "broken on purpose" in info.value.stderr


async def test_run_while_running_raises_state_error(
    invoker: LocalSubprocessInvoker, tmp_path: Path
) -> None:
    await start(invoker, tmp_path, sleep=0.3)
    with pytest.raises(InvocationStateError):
        await start(invoker, tmp_path, run_id="run-2")
    assert await invoker.wait(timeout=20) == 0


async def test_wait_without_run_raises_state_error(workspace: Path) -> None:
    with pytest.raises(InvocationStateError):
        await LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace).wait()


async def test_missing_pixi_raises_installation_error(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "pixi").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace)
    with pytest.raises(InstallationError, match="pixi"):
        await start(inv, tmp_path)
    assert not inv.is_running
    # The prefix launcher needs no pixi at all.
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    await start(inv, tmp_path, exit_code=5)
    assert await inv.wait(timeout=20) == 5


async def test_prefix_launcher_without_the_package_raises_installation_error(
    workspace: Path, tmp_path: Path
) -> None:
    inv = LocalSubprocessInvoker("not-installed-workflow", cwd=workspace, launcher="prefix")
    with pytest.raises(InstallationError, match="not-installed-workflow"):
        await start(inv, tmp_path)


async def test_invalid_config_is_rejected_before_starting(workspace: Path, tmp_path: Path) -> None:
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    with pytest.raises(InvokerConfigurationError, match="YAML"):
        await inv.run("r", "key: [unclosed", results_url(tmp_path), "local", True)
    assert inv.pid is None


async def test_cwd_defaults_to_the_environment_variable(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CWD_ENV_VAR, str(workspace))
    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW)
    assert inv.cwd == str(workspace)
    assert await inv.is_installed()


def test_pixi_standin_rejects_unknown_subcommands(pixi_standin: Path, workspace: Path) -> None:
    proc = subprocess.run(
        [str(pixi_standin), "shell"], cwd=workspace, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "unsupported command" in proc.stderr
    assert sys.executable in pixi_standin.read_text().splitlines()[0]


async def test_cancelling_check_output_kills_the_command_and_its_children(
    invoker: LocalSubprocessInvoker, tmp_path: Path
) -> None:
    # A caller's timeout around check_output (or a shutdown) must not leave the command
    # running, nor what it started.
    config = tmp_path / "long.yaml"
    pid_file = tmp_path / "grandchild.pid"
    config.write_text(
        workflow_config(
            echo_file=tmp_path / "echo",
            grandchild_sleep=60,
            grandchild_pid_file=pid_file,
            sleep=60,
        )
    )
    command = ["run", "--config-file", str(config), "--execution-mode", "local", "--no-mock-io"]
    task = asyncio.ensure_future(invoker.check_output(command))
    grandchild = int((await wait_for_path(pid_file)).read_text())
    workflow = read_echo_file(tmp_path / "echo").pid
    assert process_is_alive(workflow) and process_is_alive(grandchild)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not process_is_alive(workflow)
    assert not process_is_alive(grandchild)


async def test_start_with_a_typed_invocation_goes_through_the_same_lifecycle(
    workspace: Path, tmp_path: Path
) -> None:
    # The operator's path: start(Invocation) must be wait()-able exactly like run().
    from wt_invokers.invocation import Invocation

    inv = LocalSubprocessInvoker(SAMPLE_WORKFLOW, cwd=workspace, launcher="prefix")
    echo = tmp_path / "echo"
    invocation = Invocation(
        "typed-1",
        workflow_config(echo_file=echo, exit_code=6),
        results_url(tmp_path),
        "local",
        False,
        run_uid="uid-typed",
    )
    await inv.start(invocation)
    assert inv.is_running and inv.run_args["run_uid"] == "uid-typed"
    assert await inv.wait(timeout=20) == 6
    assert not inv.is_running
    assert read_echo_file(echo).env["WT_INVOKERS__PROCESS_MARKER"] == "uid-typed"
