"""Installation, launching and state: what is checked before and around a run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.local_invoker.support import results_url, start
from wt_invokers import (
    CommandError,
    InstallationError,
    InvocationStartError,
    InvocationStateError,
    InvokerConfigurationError,
    LocalSubprocessInvoker,
)
from wt_invokers.local import CWD_ENV_VAR
from wt_testkit.workflows import (
    SAMPLE_WORKFLOW,
    make_workspace,
    process_is_alive,
    read_echo_file,
    wait_for_path,
    workflow_config,
)


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
