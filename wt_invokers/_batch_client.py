"""Talking to Google Cloud Batch: settings, the client, and what its errors mean.

Exists so the invoker (:mod:`wt_invokers.cloud_batch`) reads as the job's
lifecycle, while the plumbing — where jobs go and as whom, how a gRPC channel
to the real service or to an emulator is built — is written once here (which
status codes are worth retrying: :mod:`wt_invokers._grpc_errors`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from wt_invokers.exceptions import InvokerConfigurationError

__all__ = [
    "BATCH_EMULATOR_HOST_ENV_VAR",
    "BATCH_SERVICE_ACCOUNT_ENV_VAR",
    "CLOUD_RUN_REGION_ENV_VAR",
    "DEFAULT_REGION",
    "GOOGLE_CLOUD_PROJECT_ENV_VAR",
    "TERMINAL_JOB_STATES",
    "BatchJobInfo",
    "BatchSettings",
    "import_batch",
    "make_batch_client",
]

GOOGLE_CLOUD_PROJECT_ENV_VAR = "GOOGLE_CLOUD_PROJECT"
"""The GCP project jobs are created in (required unless ``project_id=`` is given)."""

CLOUD_RUN_REGION_ENV_VAR = "CLOUD_RUN_REGION"
"""The Batch region (location) jobs are created in."""

DEFAULT_REGION = "us-central1"
"""Used when neither ``region=`` nor ``CLOUD_RUN_REGION`` names one (upstream's default,
for Batch and Cloud Run alike: the one definition of it)."""

TERMINAL_JOB_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "DELETION_IN_PROGRESS"})
"""Job states after which the workflow can produce nothing more.

``DELETION_IN_PROGRESS`` is among them: a job being deleted never runs again and ends
as NOT_FOUND, so waiting on it only postpones the news that it is lost (when the
operator deleted it, it stopped tracking before this state could be read).
"""

BATCH_SERVICE_ACCOUNT_ENV_VAR = "BATCH_SERVICE_ACCOUNT"
"""Optional service-account email the job's VMs run as."""

BATCH_EMULATOR_HOST_ENV_VAR = "BATCH_EMULATOR_HOST"
"""``host:port`` of an insecure Batch endpoint (the test server); unset means real GCP."""


def import_batch() -> Any:
    """``google.cloud.batch_v1``, or ImportError naming the extra that provides it."""
    try:
        from google.cloud import batch_v1
    except ImportError as exc:
        # Upstream's message, word for word: callers match on it.
        raise ImportError(
            "Google Cloud Batch dependencies not available. "
            "Install with: pip install wt-invokers[gcp]"
        ) from exc
    return batch_v1


def make_batch_client(emulator_host: str | None = None) -> Any:
    """A ``BatchServiceAsyncClient``: real GCP, or an insecure emulator endpoint.

    Exists so one client can be built once and shared by many invokers (a gRPC
    channel multiplexes thousands of calls). ``emulator_host`` (else
    ``$BATCH_EMULATOR_HOST``) as ``host:port`` means plaintext gRPC with
    anonymous credentials — the in-process test server; without it the client
    uses Application Default Credentials. Call it with an event loop running:
    grpc.aio channels belong to the loop they are created on.
    """
    batch_v1 = import_batch()
    host = emulator_host or os.environ.get(BATCH_EMULATOR_HOST_ENV_VAR) or None
    if host is None:
        return batch_v1.BatchServiceAsyncClient()
    import grpc.aio
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.batch_v1.services.batch_service.transports import (
        BatchServiceGrpcAsyncIOTransport,
    )

    transport = BatchServiceGrpcAsyncIOTransport(
        host=host,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        channel=grpc.aio.insecure_channel(host),
    )
    return batch_v1.BatchServiceAsyncClient(transport=transport)


@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """Where jobs go and as whom (explicit values over the environment)."""

    project_id: str
    """``project_id=`` else ``$GOOGLE_CLOUD_PROJECT``; required, there is no sane default."""

    region: str = DEFAULT_REGION
    """``region=`` else ``$CLOUD_RUN_REGION`` else ``us-central1``."""

    service_account: str | None = None
    """``service_account=`` else ``$BATCH_SERVICE_ACCOUNT``; None runs as the project default."""

    @classmethod
    def resolve(
        cls,
        *,
        project_id: str | None = None,
        region: str | None = None,
        service_account: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> BatchSettings:
        """Settings from explicit values, falling back to the environment."""
        env = os.environ if environ is None else environ
        project = project_id or env.get(GOOGLE_CLOUD_PROJECT_ENV_VAR) or None
        if project is None:
            raise InvokerConfigurationError(
                f"no GCP project: pass project_id= or set {GOOGLE_CLOUD_PROJECT_ENV_VAR}"
            )
        return cls(
            project_id=project,
            region=region or env.get(CLOUD_RUN_REGION_ENV_VAR) or DEFAULT_REGION,
            service_account=service_account or env.get(BATCH_SERVICE_ACCOUNT_ENV_VAR) or None,
        )

    @property
    def parent(self) -> str:
        """``projects/{project}/locations/{region}``: where jobs are created."""
        return f"projects/{self.project_id}/locations/{self.region}"


@dataclasses.dataclass(frozen=True)
class BatchJobInfo:
    """What a caller polling a job needs: identity, state name, latest status event."""

    name: str
    uid: str
    state: str
    """``QUEUED``, ``SCHEDULED``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``CANCELLED``, …"""
    last_event: str = ""
    """Description of the newest status event (e.g. why it failed); empty if none."""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """Whether the job's workflow can do no more (ended, or being deleted)."""
        return self.state in TERMINAL_JOB_STATES

    @classmethod
    def from_job(cls, job: Any) -> BatchJobInfo:
        """From a ``batch_v1.Job`` message."""
        # Read the raw protobuf: proto-plus marshals every attribute access, which made
        # this a good part of the CPU of polling a job.
        batch = import_batch()
        pb = batch.Job.pb(job)
        events = pb.status.status_events
        last = str(events[-1].description) if events else ""  # Batch appends in time order
        try:
            state = batch.JobStatus.State(pb.status.state).name
        except ValueError:  # a state newer than this client library
            state = str(pb.status.state)
        return cls(name=pb.name, uid=pb.uid, state=state, last_event=last, labels=dict(pb.labels))
