"""Run a workflow as an execution of a pre-deployed Cloud Run Job (upstream's proxy invoker).

Exists so a workflow can run in a sandbox container an admin deployed once as a
Cloud Run Job: :class:`CloudRunJobsSandboxInvoker` triggers one execution whose
container runs ``wt-invokers.sandbox`` (download the environment archive, run
the workflow, upload the results) and returns. Cloud Run, not this process,
supervises it, so the invoker is not waitable; a caller (the operator) follows
the execution with :meth:`CloudRunJobsSandboxInvoker.get_execution`.

Beyond upstream, safe to call again after any failure: each execution carries
the invocation's identity (the run's uid) in its environment, and
:meth:`~CloudRunJobsSandboxInvoker.trigger` looks for an execution carrying it
before starting one — inside the same retried step, so a RunJob whose reply was
lost is adopted on the next attempt instead of started twice. Transient gRPC
errors (UNAVAILABLE, quota's RESOURCE_EXHAUSTED, …) are retried here under the
caller's :class:`~wt_invokers.retry.RetryPolicy`, and nowhere else.

``google-cloud-run`` is the optional ``gcp`` extra, imported when an invoker is built.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rattler import MatchSpec

from wt_invokers._cloud_run_client import (
    CLOUD_RUN_EMULATOR_HOST_ENV_VAR,
    CORRELATION_ENV_VAR,
    TERMINAL_EXECUTION_STATES,
    CloudRunClients,
    ExecutionInfo,
    correlation_of,
    execution_console_url,
    import_run,
    make_run_clients,
)
from wt_invokers._grpc_errors import call_retrying
from wt_invokers._run_job import (
    DEFAULT_REGION,
    JobTarget,
    SandboxArgs,
    build_run_job_request,
)
from wt_invokers.abstract import AbstractInvoker, as_matchspec
from wt_invokers.exceptions import (
    InvokerConfigurationError,
    PermanentSubmissionError,
    SubmissionError,
)
from wt_invokers.invocation import Invocation, warn_unknown_options
from wt_invokers.retry import RetryPolicy

__all__ = [
    "CLOUD_RUN_AVAILABLE",
    "CLOUD_RUN_EMULATOR_HOST_ENV_VAR",
    "CORRELATION_ENV_VAR",
    "TERMINAL_EXECUTION_STATES",
    "CloudRunClients",
    "CloudRunJobsSandboxInvoker",
    "ExecutionInfo",
    "JobTarget",
    "SandboxArgs",
    "execution_console_url",
    "make_run_clients",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


CLOUD_RUN_AVAILABLE = _importable("google.cloud.run_v2")
"""Whether ``google-cloud-run`` is installed (upstream's flag). Found without importing it:
the client library takes most of a second to import, which ``import wt_invokers`` should not
cost a caller that never uses Cloud Run."""


class CloudRunJobsSandboxInvoker(AbstractInvoker):
    """Triggers an execution of a pre-deployed Cloud Run Job running the sandbox CLI.

    Not waitable: ``wait()`` returns 0 at once; read the execution's fate with
    :meth:`get_execution`. See the module docstring for idempotency and retries.

    Args:
        matchspec: the workflow package the sandbox installs from the environment archive.
        clients: :class:`CloudRunClients` to share; by default made on first use (see
            :func:`make_run_clients`) and closed by :meth:`close`.
        results_env_var, environment: as in :class:`AbstractInvoker`.
        retry: how transient gRPC failures are retried; default: the three settings below.
        max_attempts: calls per step before a transient error is given up on.
        initial_backoff, max_backoff: bounds (seconds) of the jittered exponential backoff.
        rpc_timeout: deadline of each single RPC attempt, in seconds.
    """

    def __init__(
        self,
        matchspec: MatchSpec | str,
        *,
        clients: CloudRunClients | None = None,
        results_env_var: str | None = None,
        environment: str = "default",
        retry: RetryPolicy | None = None,
        max_attempts: int = 5,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
        rpc_timeout: float = 30.0,
    ) -> None:
        if not CLOUD_RUN_AVAILABLE:
            raise ImportError(
                "Google Cloud Run dependencies not available. "
                "Install with: pip install wt-invokers[gcp]"
            )
        self._run_v2 = import_run()
        # "" means "the default" to the base (a dataclass whose field is a plain str).
        super().__init__(as_matchspec(matchspec), results_env_var or "", environment=environment)
        try:
            self.retry = retry or RetryPolicy(max_attempts, initial_backoff, max_backoff)
        except ValueError as exc:
            raise InvokerConfigurationError(str(exc)) from exc
        self.rpc_timeout = rpc_timeout
        self._clients = clients
        self._owns_clients = False
        self._execution_name: str | None = None

    @property
    def execution_name(self) -> str | None:
        """Full name of the execution of the last :meth:`run`/:meth:`trigger`."""
        return self._execution_name

    # -- AbstractInvoker ----------------------------------------------------------------------

    @property
    def is_waitable(self) -> bool:
        return False

    async def is_installed(self) -> bool:
        """Always True: the sandbox installs the workflow from the environment archive."""
        return True

    async def install(self) -> None:
        """Not possible: the sandbox unpacks the environment archive it is given."""
        raise NotImplementedError("Dynamic installation of workflows is not yet supported.")

    async def _wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Return 0 at once: Cloud Run supervises the execution; poll :meth:`get_execution`."""
        return 0

    # Upstream's signature: its per-call keywords are required, so calling without them is a
    # TypeError as there, which narrows the base's ``**kwargs`` (hence the ignore). ``run()``
    # (the base's lifecycle wrapper) passes them through.
    async def _run(  # type: ignore[override]
        self,
        workflow_run_id: str,
        config_text: str,
        results_url: str,
        execution_mode: str,
        mock_io: bool,
        otel_exporter: str | None = None,
        otel_console_exporter_dst: str | None = None,
        extra_env: dict[str, str] | None = None,
        lithops_config_text: str | None = None,
        *,
        environment_tar_url: str,
        job_name: str,
        project_id: str,
        region: str = DEFAULT_REGION,
        results_upload_url: str | None = None,
        skip_results_archive_upload: bool = False,
        **kwargs: Any,
    ) -> None:
        """Trigger an execution of the job (or adopt this invocation's) and return.

        Upstream's signature. Also understood: ``environment_tar_digest`` (``sha256:…``,
        upstream's later addition, optional here), ``run_uid`` (the identity an execution
        is found by; default ``workflow_run_id``) and ``timeout`` (seconds). Others are
        ignored with a warning. Typed callers use :meth:`trigger`.
        """
        invocation = Invocation.from_seed(
            workflow_run_id,
            config_text,
            results_url,
            execution_mode,
            mock_io,
            otel_exporter,
            otel_console_exporter_dst,
            extra_env,
            lithops_config_text,
            kwargs,
        )
        sandbox = SandboxArgs(
            environment_tar_url=environment_tar_url,
            environment_tar_digest=kwargs.pop("environment_tar_digest", None),
            results_upload_url=results_upload_url,
            skip_results_archive_upload=skip_results_archive_upload,
            timeout=kwargs.pop("timeout", None),
        )
        warn_unknown_options(type(self).__name__, kwargs)
        target = JobTarget(job_name=job_name, project_id=project_id, region=region)
        await self.trigger(invocation, target, sandbox)

    # -- typed API for pollers ------------------------------------------------------------------

    def build_request(self, invocation: Invocation, target: JobTarget, sandbox: SandboxArgs) -> Any:
        """The ``run_v2.RunJobRequest`` :meth:`trigger` sends; pure, so it can be inspected."""
        return build_run_job_request(
            self._run_v2,
            target,
            invocation,
            sandbox,
            matchspec=str(self.matchspec),
            results_env_var=self.results_env_var,
        )

    async def trigger(
        self, invocation: Invocation, target: JobTarget, sandbox: SandboxArgs
    ) -> ExecutionInfo:
        """Start this invocation's execution, or adopt the one it already has; its state.

        Everything is validated before the first RPC. A job that does not exist raises
        PermanentSubmissionError(code="NOT_FOUND") saying so.
        """
        request = self.build_request(invocation, target, sandbox)
        clients = self._get_clients()

        async def find_or_start() -> ExecutionInfo:
            # Looked up first on every attempt: the previous one may have started it.
            existing = await self._find(target.name, invocation.identity)
            if existing is not None:
                logger.info("Cloud Run execution %s is this run's; adopting it", existing.name)
                return existing
            await clients.jobs.get_job(name=target.name, retry=None, timeout=self.rpc_timeout)
            operation = await clients.jobs.run_job(
                request=request, retry=None, timeout=self.rpc_timeout
            )
            return ExecutionInfo.from_execution(operation.metadata)

        try:
            info = await self._call("RunJob", find_or_start)
        except PermanentSubmissionError as exc:
            if exc.code != "NOT_FOUND":
                raise
            raise PermanentSubmissionError(
                f"Pre-deployed Cloud Run Job {target.name} is not available (NOT_FOUND): {exc}",
                code="NOT_FOUND",
            ) from exc
        self._execution_name = info.name
        logger.info("Cloud Run execution %s for run %s", info.name, invocation.workflow_run_id)
        return info

    async def find_execution(
        self, target: JobTarget, identity: str, *, retry: RetryPolicy | None = None
    ) -> ExecutionInfo | None:
        """The job's execution started for ``identity`` (a run's uid), or None.

        ``retry`` (here and below) replaces the invoker's policy for this call: a caller
        that keeps trying in its own loop passes ``RetryPolicy(max_attempts=1)``.
        """
        return await self._call("ListExecutions", lambda: self._find(target.name, identity), retry)

    async def get_execution(
        self, execution_name: str | None = None, *, retry: RetryPolicy | None = None
    ) -> ExecutionInfo:
        """The execution's current state (default: the last triggered one); no wait() needed.

        NOT_FOUND raises PermanentSubmissionError(code="NOT_FOUND"): the execution is gone.
        """
        name = self._name(execution_name)
        executions = self._get_clients().executions
        execution = await self._call(
            "GetExecution",
            lambda: executions.get_execution(name=name, retry=None, timeout=self.rpc_timeout),
            retry,
        )
        return ExecutionInfo.from_execution(execution)

    async def cancel_execution(
        self, execution_name: str | None = None, *, retry: RetryPolicy | None = None
    ) -> None:
        """Ask Cloud Run to stop the execution. Gone or already finished is fine."""
        name = self._name(execution_name)
        executions = self._get_clients().executions
        try:
            await self._call(
                "CancelExecution",
                lambda: executions.cancel_execution(
                    name=name, retry=None, timeout=self.rpc_timeout
                ),
                retry,
            )
        except SubmissionError as exc:
            # NOT_FOUND: gone; FAILED_PRECONDITION: it already ended. Both mean "stopped".
            if exc.code not in ("NOT_FOUND", "FAILED_PRECONDITION"):
                raise
            logger.info("Cloud Run execution %s needs no cancelling (%s)", name, exc.code)

    async def close(self) -> None:
        """Close the clients if this invoker made them (injected ones are the caller's)."""
        clients = self._clients
        if clients is None or not self._owns_clients:
            return
        self._clients, self._owns_clients = None, False
        await clients.close()

    # -- internals ---------------------------------------------------------------------------

    async def _find(self, job: str, identity: str) -> ExecutionInfo | None:
        executions = self._get_clients().executions
        pager = await executions.list_executions(parent=job, retry=None, timeout=self.rpc_timeout)
        async for execution in pager:
            pb = self._run_v2.Execution.pb(execution)
            if correlation_of(pb) == identity:
                return ExecutionInfo.from_execution(execution)
        return None

    def _name(self, execution_name: str | None) -> str:
        name = execution_name or self._execution_name
        if not name:
            raise InvokerConfigurationError("no execution: pass execution_name= or run first")
        return name

    def _get_clients(self) -> CloudRunClients:
        if self._clients is None:
            self._clients = make_run_clients()
            self._owns_clients = True
        return self._clients

    async def _call(
        self, what: str, call: Callable[[], Awaitable[T]], retry: RetryPolicy | None = None
    ) -> T:
        """``call()`` under the retry policy; errors become SubmissionError subclasses."""
        return await call_retrying("Cloud Run", what, call, policy=retry or self.retry)
