"""Talking to Cloud Run Jobs: the clients, what an execution's status means, its errors.

Exists so the invoker (:mod:`wt_invokers.cloud_run_jobs`) reads as the execution's
lifecycle, while the plumbing — a gRPC channel to the real service or to an
emulator, how an ``Execution`` message becomes one state name — is written once
here (which status codes are worth retrying: :mod:`wt_invokers._grpc_errors`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from urllib.parse import quote

from wt_invokers._process import PROCESS_MARKER_ENV_VAR

__all__ = [
    "CLOUD_RUN_EMULATOR_HOST_ENV_VAR",
    "CORRELATION_ENV_VAR",
    "EXECUTION_STATES",
    "TERMINAL_EXECUTION_STATES",
    "CloudRunClients",
    "ExecutionInfo",
    "execution_console_url",
    "import_run",
    "make_run_clients",
]

CLOUD_RUN_EMULATOR_HOST_ENV_VAR = "CLOUD_RUN_EMULATOR_HOST"
"""``host:port`` of an insecure Cloud Run endpoint (the test server); unset means real GCP."""

CORRELATION_ENV_VAR = PROCESS_MARKER_ENV_VAR
"""Set in the execution's container to the invocation's identity (the run's uid).

RunJob cannot label an execution, but the environment overrides it was started
with are part of the execution's task template: the one place a later caller
can read whose execution it is. The same variable marks a Local run's processes.
"""

EXECUTION_STATES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
"""The states :attr:`ExecutionInfo.state` takes (Cloud Run itself has only conditions)."""

TERMINAL_EXECUTION_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

_GCP_EXTRA_HINT = "pip install 'wt-invokers[gcp]'"


def import_run() -> Any:
    """``google.cloud.run_v2``, or ImportError naming the extra that provides it."""
    try:
        from google.cloud import run_v2
    except ImportError as exc:
        raise ImportError(
            f"Google Cloud Run dependencies not available. Install with: {_GCP_EXTRA_HINT} ({exc})"
        ) from exc
    return run_v2


@dataclasses.dataclass(frozen=True)
class CloudRunClients:
    """A ``JobsAsyncClient`` (RunJob, GetJob) and an ``ExecutionsAsyncClient`` (the rest)."""

    jobs: Any
    executions: Any

    async def close(self) -> None:
        """Close both transports (they may share one channel; closing twice is harmless)."""
        for client in (self.jobs, self.executions):
            transport = getattr(client, "transport", None)
            if transport is not None:
                await transport.close()


def make_run_clients(emulator_host: str | None = None) -> CloudRunClients:
    """Both clients: real GCP, or an insecure emulator endpoint over one channel.

    ``emulator_host`` (else ``$CLOUD_RUN_EMULATOR_HOST``) as ``host:port`` means
    plaintext gRPC with anonymous credentials — the in-process test server;
    without it the clients use Application Default Credentials. Call it with an
    event loop running: grpc.aio channels belong to the loop they are created on.
    """
    run_v2 = import_run()
    host = emulator_host or os.environ.get(CLOUD_RUN_EMULATOR_HOST_ENV_VAR) or None
    if host is None:
        return CloudRunClients(run_v2.JobsAsyncClient(), run_v2.ExecutionsAsyncClient())
    import grpc.aio
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcAsyncIOTransport
    from google.cloud.run_v2.services.jobs.transports import JobsGrpcAsyncIOTransport

    channel = grpc.aio.insecure_channel(host)
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return CloudRunClients(
        run_v2.JobsAsyncClient(
            transport=JobsGrpcAsyncIOTransport(host=host, credentials=credentials, channel=channel)
        ),
        run_v2.ExecutionsAsyncClient(
            transport=ExecutionsGrpcAsyncIOTransport(
                host=host, credentials=credentials, channel=channel
            )
        ),
    )


def execution_console_url(execution_name: str) -> str:
    """The Cloud Console page of an execution (``projects/P/locations/R/jobs/J/executions/E``)."""
    parts = execution_name.split("/")
    if len(parts) != 8:
        raise ValueError(f"not a Cloud Run execution name: {execution_name!r}")
    project, region, execution = parts[1], parts[3], parts[7]
    return (
        f"https://console.cloud.google.com/run/jobs/executions/details/{quote(region)}"
        f"/{quote(execution)}/tasks?project={quote(project)}"
    )


@dataclasses.dataclass(frozen=True)
class ExecutionInfo:
    """What a caller following an execution needs: identity, one state name, why."""

    name: str
    """``projects/P/locations/R/jobs/J/executions/E``."""
    uid: str
    state: str
    """One of :data:`EXECUTION_STATES`."""
    message: str = ""
    """The ``Completed`` condition's message (why it failed), else empty."""
    log_uri: str = ""
    """Where Cloud Run says the execution's logs are (the Cloud Logging console)."""
    correlation: str = ""
    """The :data:`CORRELATION_ENV_VAR` value it was started with: whose execution it is."""

    @property
    def is_terminal(self) -> bool:
        """Whether the execution can change no more (succeeded, failed or cancelled)."""
        return self.state in TERMINAL_EXECUTION_STATES

    @property
    def console_url(self) -> str:
        return execution_console_url(self.name)

    @classmethod
    def from_execution(cls, execution: Any) -> ExecutionInfo:
        """From a ``run_v2.Execution`` message."""
        run_v2 = import_run()
        pb = run_v2.Execution.pb(execution)
        return cls(
            name=pb.name,
            uid=pb.uid,
            state=_state(run_v2, pb),
            message=_completed(pb).message if _completed(pb) is not None else "",
            log_uri=pb.log_uri,
            correlation=correlation_of(pb),
        )


def correlation_of(execution_pb: Any) -> str:
    """The correlation variable of a raw ``Execution`` proto's first container, or ''."""
    for container in execution_pb.template.containers[:1]:
        for var in container.env:
            if var.name == CORRELATION_ENV_VAR:
                return str(var.value)
    return ""


def _completed(pb: Any) -> Any:
    for condition in pb.conditions:
        if condition.type_ == "Completed":
            return condition
    return None


def _state(run_v2: Any, pb: Any) -> str:
    """Cloud Run's conditions and counters as one state name.

    The ``Completed`` condition decides once it is settled; a cancelled execution
    also ends FAILED there, told apart by its execution reason (or counters).
    """
    condition_state = run_v2.Condition.State
    reason = run_v2.Condition.ExecutionReason
    done = _completed(pb)
    if done is not None and done.state == condition_state.CONDITION_SUCCEEDED:
        return "SUCCEEDED"
    if done is not None and done.state == condition_state.CONDITION_FAILED:
        if done.execution_reason == reason.CANCELLED or pb.cancelled_count > 0:
            return "CANCELLED"
        return "FAILED"
    if pb.running_count > 0 or pb.HasField("start_time"):
        return "RUNNING"
    return "PENDING"
