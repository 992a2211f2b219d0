"""CloudRunJobsSandboxInvoker through the REAL google-cloud-run async clients over real gRPC.

The only stand-in is Cloud Run itself: ``InProcessCloudRunServer`` (the Jobs and
Executions services on loopback, reached through ``CLOUD_RUN_EMULATOR_HOST``) —
GCP cannot run here. Its counters show what reached "Cloud Run", so "no second
execution was started" is asserted, not assumed.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import wt_invokers.cloud_run_jobs as module
from wt_invokers import (
    InvokerConfigurationError,
    PermanentSubmissionError,
    TransientSubmissionError,
)
from wt_invokers.cloud_run_jobs import (
    CORRELATION_ENV_VAR,
    CloudRunJobsSandboxInvoker,
    JobTarget,
    SandboxArgs,
    execution_console_url,
)
from wt_invokers.invocation import Invocation
from wt_testkit.cloudrun import InProcessCloudRunServer

JOB = "projects/wt-test/locations/us-central1/jobs/wt-sandbox"
TARGET = JobTarget(job_name="wt-sandbox", project_id="wt-test")
SANDBOX = SandboxArgs(
    environment_tar_url="https://example.test/env.tar", results_upload_url="https://x/out"
)
RUN_KW: dict[str, Any] = {
    "environment_tar_url": "https://example.test/env.tar",
    "results_upload_url": "https://x/out",
    "job_name": "wt-sandbox",
    "project_id": "wt-test",
}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessCloudRunServer]:
    """Cloud Run STAND-IN: real gRPC Jobs + Executions services on loopback."""
    with InProcessCloudRunServer() as srv:
        srv.deploy_job(JOB)
        monkeypatch.setenv("CLOUD_RUN_EMULATOR_HOST", srv.address)
        yield srv


@pytest.fixture
async def invoker(server: InProcessCloudRunServer) -> AsyncIterator[CloudRunJobsSandboxInvoker]:
    inv = CloudRunJobsSandboxInvoker("my-wf>=1.0", initial_backoff=0.0, max_backoff=0.0)
    yield inv
    await inv.close()


def invocation(uid: str = "uid-1", **kw: Any) -> Invocation:
    fields: dict[str, Any] = {
        "workflow_run_id": "run-42",
        "config_text": "k: v\nn: [1, 2]\n",
        "results_url": "gs://bucket/run-42",
        "execution_mode": "sequential",
        "mock_io": True,
        "run_uid": uid,
        **kw,
    }
    return Invocation(**fields)


def container(server: InProcessCloudRunServer, index: int = 0) -> Any:
    return type(server.executions()[index]).pb(server.executions()[index]).template.containers[0]


# -- upstream's contract ---------------------------------------------------------------------


async def test_upstream_surface(invoker: CloudRunJobsSandboxInvoker) -> None:
    assert invoker.is_waitable is False
    assert await invoker.is_installed() is True
    assert await invoker.wait() == 0
    with pytest.raises(NotImplementedError, match="not yet supported"):
        await invoker.install()


def test_without_the_sdk_the_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "CLOUD_RUN_AVAILABLE", False)
    with pytest.raises(ImportError, match=r"Google Cloud Run.*wt-invokers\[gcp\]"):
        CloudRunJobsSandboxInvoker("w>=1")


def test_importing_the_library_leaves_the_cloud_run_client_unimported() -> None:
    # It takes most of a second to import: a Local-only caller should not pay for it.
    code = "import sys, wt_invokers; print('google.cloud.run_v2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert module.CLOUD_RUN_AVAILABLE is True  # installed here, found without importing it


async def test_run_starts_one_execution_running_the_sandbox_cli(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    await invoker.run(
        "run-42",
        "k: v",
        "file:///results",
        "sequential",
        True,
        otel_exporter="http://otel",
        otel_console_exporter_dst="stdout",
        extra_env={"X": "1"},
        **RUN_KW,
    )
    assert server.started_executions == 1
    args = list(container(server).args)
    flags = dict(itertools.pairwise(args))
    assert flags["--matchspec"] == "my-wf >=1.0"
    assert flags["--workflow-run-id"] == "run-42"
    assert flags["--environment-tar-url"] == "https://example.test/env.tar"
    assert flags["--results-upload-url"] == "https://x/out"
    assert flags["--results-url"] == "file:///results"
    assert flags["--config-json"] == '{"k":"v"}'
    assert flags["--execution-mode"] == "sequential"
    assert flags["--otel-exporter"] == "http://otel"
    assert flags["--otel-console-exporter-dst"] == "stdout"
    assert "--mock-io" in args and "--no-mock-io" not in args
    env = {v.name: v.value for v in container(server).env}
    assert env["X"] == "1"
    assert env["WT_RESULTS"] == "file:///results"
    assert env[CORRELATION_ENV_VAR] == "run-42"  # no run_uid: the run id identifies it
    assert invoker.execution_name == server.executions()[0].name


async def test_run_defaults_the_region_and_requires_upstreams_keywords(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    with pytest.raises(TypeError):
        await invoker.run("r", "k: v", "file:///r", "sequential", False)  # type: ignore[call-arg]
    await invoker.run("r", "k: v", "file:///r", "sequential", False, **RUN_KW)
    assert server.executions()[0].name.startswith(f"{JOB}/executions/")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"skip_results_archive_upload": True}, "mutually exclusive"),
        ({"results_upload_url": None}, "results_upload_url is required"),
        (
            {"results_upload_url": None, "skip_results_archive_upload": True},
            "real destination",
        ),
        ({"job_name": "Not_A_Job"}, "not a Cloud Run job name"),
    ],
)
async def test_invalid_arguments_are_refused_before_any_rpc(
    invoker: CloudRunJobsSandboxInvoker,
    server: InProcessCloudRunServer,
    kw: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        await invoker.run("r", "k: v", "file:///results", "sequential", False, **{**RUN_KW, **kw})
    assert server.calls == {}


async def test_a_pinned_environment_digest_is_passed_to_the_sandbox(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    digest = "sha256:" + "ab" * 32
    await invoker.run(
        "r", "k: v", "file:///r", "sequential", False, environment_tar_digest=digest, **RUN_KW
    )
    args = list(container(server).args)
    assert args[args.index("--environment-tar-digest") + 1] == digest
    with pytest.raises(InvokerConfigurationError, match="not sha256"):
        await invoker.run(
            "r", "k: v", "file:///r", "sequential", False, environment_tar_digest="md5:x", **RUN_KW
        )
    assert server.started_executions == 1


async def test_skipping_the_upload_sends_the_skip_flag(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    kw = {**RUN_KW, "results_upload_url": None, "skip_results_archive_upload": True}
    await invoker.run("r", "k: v", "gs://b/r", "sequential", False, **kw)
    args = list(container(server).args)
    assert "--dangerously-skip-results-archive-upload" in args
    assert "--results-upload-url" not in args
    assert "--no-mock-io" in args


async def test_a_job_nobody_deployed_is_a_clear_permanent_error(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    target = JobTarget(job_name="missing", project_id="wt-test")
    with pytest.raises(
        PermanentSubmissionError, match=r"Pre-deployed Cloud Run Job .*/jobs/missing is not"
    ) as caught:
        await invoker.trigger(invocation(), target, SANDBOX)
    assert caught.value.code == "NOT_FOUND"
    assert server.started_executions == 0


# -- beyond upstream: correlation, retries, polling --------------------------------------------


async def test_a_second_trigger_of_one_run_adopts_its_execution(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    first = await invoker.trigger(invocation("uid-1"), TARGET, SANDBOX)
    again = await invoker.trigger(invocation("uid-1"), TARGET, SANDBOX)
    other = await invoker.trigger(invocation("uid-2"), TARGET, SANDBOX)
    assert again.name == first.name
    assert other.name != first.name
    assert server.started_executions == 2
    assert {v.name: v.value for v in container(server).env}[CORRELATION_ENV_VAR] == "uid-1"


async def test_a_lost_run_job_reply_is_adopted_on_retry_not_started_twice(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    server.lose_reply_after_commit("RunJob", code="UNAVAILABLE")
    info = await invoker.trigger(invocation("uid-7"), TARGET, SANDBOX)
    assert server.started_executions == 1
    assert info.name == server.executions()[0].name
    assert server.calls["RunJob"] == 1


@pytest.mark.parametrize("code", ["UNAVAILABLE", "RESOURCE_EXHAUSTED"])
async def test_transient_failures_and_quota_are_retried(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer, code: str
) -> None:
    server.fail_next("RunJob", code, times=2)
    await invoker.trigger(invocation(), TARGET, SANDBOX)
    assert server.started_executions == 1
    assert server.calls["RunJob"] == 3


async def test_retries_run_out_as_a_transient_error(server: InProcessCloudRunServer) -> None:
    inv = CloudRunJobsSandboxInvoker("w", max_attempts=3, initial_backoff=0.0)
    server.fail_next("ListExecutions", "UNAVAILABLE", times=5)
    with pytest.raises(TransientSubmissionError, match="after 3 attempts") as caught:
        await inv.trigger(invocation(), TARGET, SANDBOX)
    await inv.close()
    assert caught.value.code == "UNAVAILABLE"
    assert server.started_executions == 0


async def test_permission_denied_is_not_retried(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    server.deny("PERMISSION_DENIED", method="RunJob")
    with pytest.raises(PermanentSubmissionError) as caught:
        await invoker.trigger(invocation(), TARGET, SANDBOX)
    assert caught.value.code == "PERMISSION_DENIED"
    assert server.calls["RunJob"] == 1


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"])
async def test_get_execution_reads_each_state_without_wait(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer, state: str
) -> None:
    started = await invoker.trigger(invocation(), TARGET, SANDBOX)
    assert started.state == "PENDING"
    server.set_execution_state(started.name, state, message="exit code 3")
    info = await invoker.get_execution()
    assert info.state == state
    assert info.is_terminal is (state in ("SUCCEEDED", "FAILED", "CANCELLED"))
    if state == "FAILED":
        assert info.message == "exit code 3"
    assert info.correlation == "uid-1"


async def test_an_execution_is_found_on_any_page_of_the_jobs_executions(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    server.page_size = 2
    first = [await invoker.trigger(invocation(f"uid-{i}"), TARGET, SANDBOX) for i in range(5)]
    again = await invoker.trigger(invocation("uid-4"), TARGET, SANDBOX)  # on the third page
    assert again.name == first[4].name
    assert server.started_executions == 5


async def test_find_execution_by_identity(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    assert await invoker.find_execution(TARGET, "uid-1") is None
    started = await invoker.trigger(invocation("uid-1"), TARGET, SANDBOX)
    found = await invoker.find_execution(TARGET, "uid-1")
    assert found is not None and found.name == started.name


async def test_cancel_stops_the_execution_and_tolerates_the_finished_and_the_gone(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    started = await invoker.trigger(invocation(), TARGET, SANDBOX)
    await invoker.cancel_execution(started.name)
    assert server.execution_state(started.name) == "CANCELLED"
    await invoker.cancel_execution(started.name)  # already finished: fine
    await invoker.cancel_execution(f"{JOB}/executions/gone")  # never existed: fine
    assert (await invoker.get_execution(started.name)).state == "CANCELLED"


async def test_timeout_becomes_the_executions_timeout_override(
    invoker: CloudRunJobsSandboxInvoker, server: InProcessCloudRunServer
) -> None:
    sandbox = SandboxArgs("https://e/env.tar", "https://x/o", timeout=90.5)
    await invoker.trigger(invocation(), TARGET, sandbox)
    pb = type(server.executions()[0]).pb(server.executions()[0])
    assert pb.template.timeout.seconds == 91


def test_console_url_names_region_execution_and_project() -> None:
    url = execution_console_url(f"{JOB}/executions/wt-sandbox-abc12")
    assert url == (
        "https://console.cloud.google.com/run/jobs/executions/details/us-central1"
        "/wt-sandbox-abc12/tasks?project=wt-test"
    )
    with pytest.raises(ValueError, match="not a Cloud Run execution name"):
        execution_console_url(JOB)


def test_target_validation() -> None:
    with pytest.raises(InvokerConfigurationError, match="project"):
        JobTarget(job_name="j", project_id="X")
