"""Building invokers for runs, behind protocols the reconcilers depend on.

Exists so the reconcilers never construct library objects themselves: the real
:class:`Invokers` applies the operator's settings (workspace, launcher, GCP
defaults, one shared Batch client, a retry policy that gives up after a few minutes
and counts every retry), and unit tests hand the same reconcilers scripted doubles.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import os
import tempfile
from collections.abc import Mapping
from typing import Any, Protocol

from wt_invokers import (
    CloudBatchInvoker,
    CloudRunJobsSandboxInvoker,
    LocalSubprocessInvoker,
    processes,
)
from wt_invokers.abstract import as_matchspec
from wt_invokers.cloud_batch import BatchJobInfo, BatchJobOptions, make_batch_client
from wt_invokers.cloud_run_jobs import (
    CloudRunClients,
    ExecutionInfo,
    JobTarget,
    SandboxArgs,
    make_run_clients,
)
from wt_invokers.invocation import Invocation
from wt_invokers.local import LineCallback, kill_stale_processes
from wt_invokers.retry import RetryPolicy
from wt_invokers.sandbox import LocalArchiveInvoker
from wt_operator.config import OperatorConfig
from wt_operator.core.environment import workflow_base_env
from wt_operator.core.policy import placement
from wt_operator.core.spec import RunRequest
from wt_operator.metrics import Metrics

__all__ = [
    "SUBMISSION_ATTEMPTS",
    "BatchInvoker",
    "CloudRunInvoker",
    "InvokerFactory",
    "Invokers",
    "LocalInvoker",
]

SUBMISSION_ATTEMPTS = 10
"""Calls of one Batch/Cloud Run request before it gives up: pauses bounded by 0.5, 1, 2 …
doubling to ``retry_backoff_max`` (60 s), about three minutes at most in all."""


class LocalInvoker(Protocol):
    """What the Local reconciler uses of :class:`~wt_invokers.LocalSubprocessInvoker`."""

    async def is_installed(self) -> bool: ...

    async def start(self, invocation: Invocation) -> None: ...

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int: ...

    async def cancel(self) -> int | None: ...


class BatchInvoker(Protocol):
    """What the Batch reconciler uses of :class:`~wt_invokers.CloudBatchInvoker`."""

    async def submit(
        self,
        invocation: Invocation,
        options: BatchJobOptions,
        *,
        job_id: str | None = None,
        secret_env: Mapping[str, str] | None = None,
    ) -> BatchJobInfo: ...

    async def get_job(self, job_name: str | None = None) -> BatchJobInfo: ...

    async def cancel_job(self, job_name: str | None = None) -> None: ...

    async def delete_job(
        self, job_name: str | None = None, *, retry: RetryPolicy | None = None
    ) -> None: ...

    def job_name_for(self, key: str, readable: str | None = None) -> str: ...


class CloudRunInvoker(Protocol):
    """What the Cloud Run reconciler uses of :class:`~wt_invokers.CloudRunJobsSandboxInvoker`."""

    async def trigger(
        self, invocation: Invocation, target: JobTarget, sandbox: SandboxArgs
    ) -> ExecutionInfo: ...

    async def find_execution(
        self, target: JobTarget, identity: str, *, retry: RetryPolicy | None = None
    ) -> ExecutionInfo | None: ...

    async def get_execution(
        self, execution_name: str | None = None, *, retry: RetryPolicy | None = None
    ) -> ExecutionInfo: ...

    async def cancel_execution(
        self, execution_name: str | None = None, *, retry: RetryPolicy | None = None
    ) -> None: ...


class InvokerFactory(Protocol):
    """Makes the invokers of runs, and finds and kills the processes a run left behind."""

    @property
    def workspace(self) -> str: ...

    def local(self, req: RunRequest, *, line_callback: LineCallback) -> LocalInvoker: ...

    def batch(self, req: RunRequest) -> BatchInvoker: ...

    def cloud_run(self, req: RunRequest) -> CloudRunInvoker: ...

    async def kill_stale(self, marker: str) -> int:
        """Kill every process marked ``marker``; how many there were."""

    async def leftovers(self, marker: str) -> set[int]:
        """Pids still marked ``marker`` (what a cancel must have removed)."""

    async def attach(
        self, marker: str, req: RunRequest, *, line_callback: LineCallback
    ) -> LocalInvoker | None:
        """Follow a run started by an earlier operator process, if it is still running."""


class Invokers:
    """The real :class:`InvokerFactory`, from the operator's settings."""

    def __init__(
        self, config: OperatorConfig, *, metrics: Metrics, batch_client: Any | None = None
    ) -> None:
        self.config = config
        self._batch_client = batch_client
        # Read once: the operator's PATH and temp directory are the image's, not the
        # admin's per-run choice; nothing else of this process's environment is passed.
        self.workflow_env = workflow_base_env(
            path=os.environ.get("PATH"),
            temp_dir=tempfile.gettempdir(),
            admin_env=config.workflow_env,
        )
        self._run_clients: CloudRunClients | None = None
        self.retry = RetryPolicy(
            # Finite: past a few minutes (at the default 60 s cap) the call gives up with a
            # TransientSubmissionError, the run says it is Retrying, and kopf retries the
            # whole step with backoff. Retrying forever in here hid an outage from the user
            # (the run sat Pending without a word) and held its reconciler in one call.
            max_attempts=SUBMISSION_ATTEMPTS,
            initial_backoff=0.5,
            max_backoff=config.retry_backoff_max,
            on_retry=lambda what, code: metrics.api_errors.labels("CloudBatch").inc(),
        )
        self.run_retry = dataclasses.replace(
            self.retry, on_retry=lambda what, code: metrics.api_errors.labels("CloudRunJob").inc()
        )

    @property
    def workspace(self) -> str:
        return str(self.config.workspace)

    def preload_batch(self) -> None:
        """Import the Batch client library now when Batch is configured.

        Importing it takes about a second of CPU; done lazily, that second lands on the
        event loop just as the first Batch runs arrive (often hundreds at once).
        """
        if self.config.batch_defaults.project or self.config.batch_emulator_host:
            with contextlib.suppress(ImportError):
                importlib.import_module("google.cloud.batch_v1")

    def local(self, req: RunRequest, *, line_callback: LineCallback) -> LocalInvoker:
        cfg = self.config
        if req.archive is not None:
            # Downloads and unpacked environments (by digest) live beside the operator, not
            # in the workspace (read-only in the image); WT_INVOKERS__ENVIRONMENT_CACHE_DIR
            # moves the cache (the library reads it).
            return LocalArchiveInvoker(
                as_matchspec(req.workflow),
                cfg.results_env_var,
                cfg.workspace,
                environment_tar_url=req.archive.url,
                environment_tar_digest=req.archive.digest,
                work_dir=os.path.join(tempfile.gettempdir(), "wt-operator-environments"),
                line_callback=line_callback,
                tail_lines=1,
                kill_grace_seconds=cfg.kill_grace_seconds,
                base_env=self.workflow_env,
            )
        return LocalSubprocessInvoker(
            as_matchspec(req.workflow),
            cwd=cfg.workspace,
            environment=req.environment,
            launcher=cfg.local_launcher,
            results_env_var=cfg.results_env_var,
            line_callback=line_callback,
            tail_lines=1,  # the run's own masked log keeps the tail
            kill_grace_seconds=cfg.kill_grace_seconds,
            base_env=self.workflow_env,
        )

    def batch(self, req: RunRequest) -> BatchInvoker:
        where = placement(req, self.config.batch_defaults)
        if self._batch_client is None:
            # One client for all runs: a gRPC channel is expensive and multiplexes.
            self._batch_client = make_batch_client(self.config.batch_emulator_host)
        return CloudBatchInvoker(
            req.workflow,
            project_id=where.project,
            region=where.region,
            service_account=where.service_account,
            client=self._batch_client,
            environment=req.environment,
            results_env_var=self.config.results_env_var,
            retry=self.retry,
            # The library forwards its caller's WT_* variables (upstream's default); the
            # operator's own settings must never reach a run author's job.
            forward_wt_env=False,
        )

    def cloud_run(self, req: RunRequest) -> CloudRunInvoker:
        if self._run_clients is None:
            # Shared by all runs, as the Batch client is.
            self._run_clients = make_run_clients(self.config.cloud_run_emulator_host)
        return CloudRunJobsSandboxInvoker(
            req.workflow,
            clients=self._run_clients,
            environment=req.environment,
            results_env_var=self.config.results_env_var,
            retry=self.run_retry,
        )

    async def attach(
        self, marker: str, req: RunRequest, *, line_callback: LineCallback
    ) -> LocalInvoker | None:
        # An in-process run's output went to the operator that is gone: nothing to follow.
        return None

    async def kill_stale(self, marker: str) -> int:
        return await kill_stale_processes(marker, grace=self.config.kill_grace_seconds)

    async def leftovers(self, marker: str) -> set[int]:
        return await asyncio.to_thread(processes.find_marked, marker)

    async def close(self) -> None:
        run_clients, self._run_clients = self._run_clients, None
        if run_clients is not None:
            with contextlib.suppress(Exception):
                await run_clients.close()
        client, self._batch_client = self._batch_client, None
        transport = getattr(client, "transport", None)
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.close()
