"""What a run returns and writes: exit codes, argv, environment, results folder."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.unit.local_invoker.support import results_url, start
from wt_invokers import LocalSubprocessInvoker
from wt_invokers.local import RUN_ID_ENV_VAR, Launcher
from wt_testkit.workflows import (
    SAMPLE_WORKFLOW,
    environment_prefix,
    read_echo_file,
    wait_for_path,
    workflow_config,
)


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
