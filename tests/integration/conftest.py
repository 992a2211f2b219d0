"""Fixtures for running the real operator against the real control plane.

Stand-ins, named as such: the ``pixi`` on the operator's PATH is the stand-in
from ``wt_testkit.workflows`` (no pixi binary can be installed here),
Google Cloud Batch is ``wt_testkit.batch`` and Cloud Run is
``wt_testkit.cloudrun`` (real gRPC, real clients). Everything else — API server,
etcd, conda environment, processes — is real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wt_envtest.operator_process import OperatorProcess
from wt_envtest.runs import Runs
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.cloudrun import InProcessCloudRunServer
from wt_testkit.workflows import SAMPLE_WORKFLOW, make_workspace, write_pixi_standin


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pixi workspace (path with a space) holding the sample workflow, built offline."""
    root = tmp_path_factory.mktemp("operator workspace")
    return make_workspace(root)


@pytest.fixture(scope="session")
def pixi_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the pixi STAND-IN (the real pixi binary cannot be installed here)."""
    folder = tmp_path_factory.mktemp("pixi-standin")
    write_pixi_standin(folder)
    return folder


@pytest.fixture
def batch_server() -> Iterator[InProcessBatchServer]:
    """Google Cloud Batch stand-in: a real gRPC BatchService on loopback."""
    server = InProcessBatchServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


CLOUD_RUN_JOB = "projects/wt-test-project/locations/us-central1/jobs/wt-sandbox"
"""The Cloud Run Job the stand-in has deployed (the operator's default project and region)."""


@pytest.fixture
def cloud_run_server() -> Iterator[InProcessCloudRunServer]:
    """Cloud Run stand-in: real gRPC Jobs + Executions services on loopback, one job deployed."""
    server = InProcessCloudRunServer()
    server.start()
    server.deploy_job(CLOUD_RUN_JOB)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_operator(
    control_plane: Any,
    namespace: str,
    crds: Any,
    workspace: Path,
    pixi_bin: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start ``wt-operator --namespace <test ns>``; every process is stopped afterwards.

    Keyword arguments become operator settings (environment variables).
    """
    procs: list[OperatorProcess] = []

    def start(
        *,
        standalone: bool = True,
        priority: int | None = None,
        kubeconfig: Path | None = None,
        extra_args: tuple[str, ...] = (),
        **env: str,
    ) -> OperatorProcess:
        proc = OperatorProcess(
            kubeconfig=kubeconfig or control_plane.kubeconfig,
            namespaces=[namespace],
            workspace=workspace,
            log_path=tmp_path / f"operator-{len(procs)}.log",
            path_prepend=[pixi_bin],
            env=env,
            standalone=standalone,
            priority=priority,
            extra_args=extra_args,
        )
        procs.append(proc)
        return proc.start()

    yield start
    for proc in procs:
        proc.stop(timeout=15)
    failed = getattr(request.node, "rep_call", None)  # set by wt_envtest.plugin
    if failed is not None and failed.failed:
        for proc in procs:
            print(f"--- {proc.log_path.name} (tail) ---\n{proc.logs()[-6000:]}")


@pytest.fixture
async def runs(kube_api: Any, namespace: str) -> Runs:
    return Runs(kube_api, namespace)


def local_spec(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A Local WorkflowRun spec for the sample workflow."""
    return {
        "workflow": SAMPLE_WORKFLOW,
        "invoker": "Local",
        "resultsUrl": "file:///tmp/wt-results/",
        "config": config or {},
        **extra,
    }


def batch_spec(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A CloudBatch WorkflowRun spec for the sample workflow."""
    return {
        "workflow": SAMPLE_WORKFLOW,
        "invoker": "CloudBatch",
        "resultsUrl": "gs://wt-test/runs/",
        "config": config or {},
        "cloudBatch": {"image": "europe-docker.pkg.dev/wt/wf/sample:1.2.0"},
        **extra,
    }


def cloud_run_spec(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A CloudRunJob WorkflowRun spec for the sample workflow on the deployed sandbox job."""
    return {
        "workflow": SAMPLE_WORKFLOW,
        "invoker": "CloudRunJob",
        "resultsUrl": "gs://wt-test/runs/",
        "config": config or {},
        "cloudRun": {
            "jobName": "wt-sandbox",
            "environmentArchiveUrl": "https://example.test/envs/sample.tar",
            "resultsUploadUrl": "https://example.test/upload?signature=abc",
        },
        **extra,
    }


async def wait_file(path: Path, timeout: float = 30) -> str:
    """The stripped text of ``path`` once something has written it."""
    for _ in range(int(timeout * 10)):
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never written")


async def create_tree(runs: Runs, name: str, pidfile: Path, **extra: Any) -> int:
    """Create a Local run whose workflow sleeps 120 s beside a grandchild sleeping 300 s.

    Returns the grandchild's pid once the workflow has written it to ``pidfile``: the
    process a cancel, a deadline or a lost operator must not leave behind.
    """
    await runs.create(
        name,
        local_spec(
            {"sleep": 120, "grandchild_sleep": 300, "grandchild_pid_file": str(pidfile)}, **extra
        ),
    )
    return int(await wait_file(pidfile))
