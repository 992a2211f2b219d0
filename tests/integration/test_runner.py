"""Local runs in the runner process (``wt-runner``), driven by the real operator process.

Two real processes beside the real API server: the operator hands each Local run to
the runner over its unix socket (``WT_OPERATOR_RUNNER_SOCKET``) and follows it. What
a platform engineer would see is asserted: the run's outcome, its output, the
processes left (none), and how often the workflow ran (once).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.conftest import create_tree, local_spec, wait_file
from wt_envtest.operator_process import OperatorProcess
from wt_envtest.runner_process import RunnerProcess
from wt_envtest.runs import Runs, condition
from wt_operator.api import ANNOTATION_LOG_COMPLETE, LOG_KEY, log_configmap_name
from wt_testkit.workflows import process_is_alive, read_echo_file, wait_process_gone

pytestmark = pytest.mark.timeout(180)

RUNNER_CANARY = "WT_TEST_RUNNER_OWN_VARIABLE"
OPERATOR_CANARY = "WT_TEST_OPERATOR_OWN_VARIABLE"


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[RunnerProcess]:
    directory = tmp_path / "runner"
    directory.mkdir()
    proc = RunnerProcess(directory, env={RUNNER_CANARY: "runner-secret"}).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def start_with_runner(
    start_operator: Callable[..., OperatorProcess], runner: RunnerProcess
) -> Callable[..., OperatorProcess]:
    def start(**env: str) -> OperatorProcess:
        settings = {
            "WT_OPERATOR_RUNNER_SOCKET": str(runner.socket),
            "WT_OPERATOR_RUNNER_TIMEOUT": "5",
            OPERATOR_CANARY: "operator-secret",
            **env,
        }
        return start_operator(**settings)

    return start


async def _log_text(runs: Runs, name: str) -> str:
    """The run's stored output once the operator has written it complete."""
    obj = await runs.get(name)
    assert obj is not None
    cm_name = log_configmap_name(obj["metadata"]["uid"])
    for _ in range(100):
        try:
            cm = await runs.core.read_namespaced_config_map(cm_name, runs.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        else:
            if cm.metadata.annotations.get(ANNOTATION_LOG_COMPLETE) == "true":
                return str(cm.data[LOG_KEY])
        await asyncio.sleep(0.1)
    raise AssertionError("no complete log ConfigMap")


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.add(int(entry))
    return found


async def test_local_run_succeeds_through_the_runner_with_nothing_of_either_process(
    start_with_runner: Callable[..., OperatorProcess],
    runner: RunnerProcess,
    runs: Runs,
    tmp_path: Path,
) -> None:
    op = start_with_runner()
    echo = tmp_path / "echo"
    await runs.create("ok", local_spec({"echo_file": str(echo), "sleep": 2, "stdout_lines": 3}))
    await wait_file(echo)
    seen = read_echo_file(echo)
    # The workflow is the runner's child, not the operator's.
    assert seen.pid in _children_of(runner.pid)
    assert seen.pid not in _children_of(op.proc.pid)
    obj = await runs.wait_for("ok", ["Succeeded"], timeout=60)
    assert obj["status"]["exitCode"] == 0
    assert RUNNER_CANARY not in seen.env
    assert OPERATOR_CANARY not in seen.env
    assert "KUBECONFIG" not in seen.env
    assert seen.env["WT_INVOKERS__PROCESS_MARKER"] == obj["metadata"]["uid"]
    # The kernel's OOM killer picks the workflow first, never the runner.
    assert "oom_score_adj 1000" in echo.read_text().splitlines()
    assert Path(f"/proc/{runner.pid}/oom_score_adj").read_text().strip() != "1000"
    assert "stdout line 3" in await _log_text(runs, "ok")


async def test_failure_streams_output_and_exit_code_from_the_runner(
    start_with_runner: Callable[..., OperatorProcess], runs: Runs
) -> None:
    start_with_runner()
    await runs.create("bad", local_spec({"exit_code": 3, "stdout_lines": 5}))
    obj = await runs.wait_for("bad", ["Failed"], timeout=60)
    assert obj["status"]["exitCode"] == 3
    assert "stdout line 5" in obj["status"]["message"]


async def test_deadline_and_delete_kill_the_whole_tree_in_the_runner(
    start_with_runner: Callable[..., OperatorProcess], runs: Runs, tmp_path: Path
) -> None:
    start_with_runner()
    late = await create_tree(runs, "slow", tmp_path / "late.pid", activeDeadlineSeconds=3)
    doomed = await create_tree(runs, "doomed", tmp_path / "doomed.pid")
    obj = await runs.wait_for("slow", ["Failed"], timeout=30)
    assert condition(obj, "Succeeded")["reason"] == "DeadlineExceeded"
    await wait_process_gone(late)
    assert not process_is_alive(late)
    assert process_is_alive(doomed)
    await runs.delete("doomed")
    await runs.wait_gone("doomed", timeout=30)
    assert not process_is_alive(doomed)


async def test_runner_killed_mid_run_ends_it_invoker_lost_and_its_tree_is_gone(
    start_with_runner: Callable[..., OperatorProcess],
    runner: RunnerProcess,
    runs: Runs,
    tmp_path: Path,
) -> None:
    start_with_runner()
    grandchild = await create_tree(runs, "orphaned", tmp_path / "grandchild.pid")
    await runs.wait_for("orphaned", ["Running"])
    runner.kill9()
    runner.start()  # the container restarts: what the dead runner started is killed
    obj = await runs.wait_for("orphaned", ["Failed"], timeout=60)
    assert condition(obj, "Succeeded")["reason"] == "InvokerLost"
    assert "the runner restarted" in obj["status"]["message"]
    await wait_process_gone(grandchild)
    assert not process_is_alive(grandchild)


async def test_runner_gone_for_good_ends_the_run_invoker_lost_not_a_hang(
    start_with_runner: Callable[..., OperatorProcess],
    runner: RunnerProcess,
    runs: Runs,
    tmp_path: Path,
) -> None:
    start_with_runner()
    await create_tree(runs, "abandoned", tmp_path / "grandchild.pid")
    await runs.wait_for("abandoned", ["Running"])
    runner.kill9()
    obj = await runs.wait_for("abandoned", ["Failed"], timeout=60)
    assert condition(obj, "Succeeded")["reason"] == "InvokerLost"
    assert "stopped answering" in obj["status"]["message"]
    # With no runner, a new run fails at once with a clear reason instead of waiting.
    await runs.create("nowhere", local_spec({"sleep": 0}))
    obj = await runs.wait_for("nowhere", ["Failed"], timeout=60)
    assert condition(obj, "Succeeded")["reason"] == "StartFailed"
    assert "runner" in obj["status"]["message"]
    runner.start()  # its restart reaps the abandoned tree before the test ends


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
async def test_operator_restart_mid_run_picks_the_run_up_and_it_runs_once(
    start_with_runner: Callable[..., OperatorProcess], runs: Runs, tmp_path: Path, how: str
) -> None:
    op = start_with_runner()
    ran = tmp_path / "ran"
    await runs.create(
        "survivor", local_spec({"append_to": str(ran), "stdout_lines": 2, "sleep": 6})
    )
    await wait_file(ran)
    await runs.wait_for("survivor", ["Running"])
    if how == "kill9":
        op.kill9()
    else:  # a graceful stop (a container restart) hands the run over, it does not kill it
        await asyncio.to_thread(op.stop)
    await asyncio.sleep(1)
    op.start()
    obj = await runs.wait_for("survivor", ["Succeeded", "Failed", "Cancelled"], timeout=60)
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    assert obj["status"]["exitCode"] == 0
    assert ran.read_text().splitlines() == ["ran"]  # picked up, never started again
    assert "stdout line 2" in await _log_text(runs, "survivor")  # output from before, kept
    reasons = [e.reason for e in await runs.events("survivor")]
    assert reasons.count("Running") == 1


async def test_runs_beyond_the_limit_queue_while_the_runner_runs_the_first(
    start_with_runner: Callable[..., OperatorProcess], runs: Runs
) -> None:
    start_with_runner(WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS="1")
    await runs.create("first", local_spec({"sleep": 3}))
    await runs.wait_for("first", ["Running"])
    await runs.create("second", local_spec({"sleep": 0}))
    queued = await runs.wait_for("second", ["Queued"], timeout=20)
    assert "limit 1" in queued["status"]["message"]
    first = await runs.wait_for("first", ["Succeeded"], timeout=30)
    second = await runs.wait_for("second", ["Succeeded"], timeout=30)
    assert second["status"]["completionTime"] >= first["status"]["completionTime"]


async def test_operator_restarting_while_the_runner_is_gone_ends_the_run_invoker_lost(
    start_with_runner: Callable[..., OperatorProcess],
    runner: RunnerProcess,
    runs: Runs,
    tmp_path: Path,
) -> None:
    op = start_with_runner()
    await create_tree(runs, "stranded", tmp_path / "grandchild.pid")
    await runs.wait_for("stranded", ["Running"])
    op.kill9()
    runner.kill9()
    op.start()
    obj = await runs.wait_for("stranded", ["Failed"], timeout=60)
    assert condition(obj, "Succeeded")["reason"] == "InvokerLost"
    assert "the runner is unreachable" in obj["status"]["message"]
    runner.start()  # its restart reaps the stranded tree before the test ends


async def test_an_archive_run_is_refused_by_the_runner_not_run_beside_the_operator(
    start_with_runner: Callable[..., OperatorProcess], runs: Runs
) -> None:
    # The archive is unpacked where the operator runs, out of the runner's sight; running
    # it in the operator container instead would hand it the operator's token and uid.
    # (Even from a source the admin allows.)
    start_with_runner(WT_OPERATOR_ALLOWED_ARCHIVE_URLS="http://127.0.0.1:*")
    archive = {
        "archiveUrl": "http://127.0.0.1:9/environment.tar",
        "archiveDigest": "sha256:" + "0" * 64,
    }
    await runs.create("packed", local_spec(environment=archive))
    obj = await runs.wait_for("packed", ["Failed"], timeout=60)
    assert condition(obj, "Succeeded")["reason"] == "InvalidSpec"
    assert "cannot run in the runner container" in obj["status"]["message"]
