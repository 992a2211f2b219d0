"""Run a workflow as a Google Cloud Batch job.

Exists so the same workflow package the local invoker runs can run on a VM in
the cloud: :class:`CloudBatchInvoker` submits one container job and returns —
Batch, not this process, supervises it, so the invoker is not waitable and a
caller (the operator) follows the job with :meth:`CloudBatchInvoker.get_job`.

Safe to call again after any failure: the job id derives from the invocation's
identity (:func:`job_id`), so a resubmission, or a retry after a create whose
reply was lost, meets ``ALREADY_EXISTS`` and adopts the job that exists — but
only when that job carries the same owner label: a job of another run under the
same id is refused, never reported as this run's. Transient gRPC errors are
retried here, under the caller's :class:`~wt_invokers.retry.RetryPolicy`, and
nowhere else: the generated client's own retry layer is switched off per call.

``google-cloud-batch`` is the optional ``gcp`` extra; it is imported only when
an invoker or a client is built, so ``import wt_invokers`` works without it.
GCP settings (project, region, service account) are read when a call needs
them, so asking ``entrypoint`` or ``is_installed()`` needs none.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from rattler import MatchSpec

from wt_invokers._batch_client import (
    BATCH_EMULATOR_HOST_ENV_VAR,
    BATCH_SERVICE_ACCOUNT_ENV_VAR,
    CLOUD_RUN_REGION_ENV_VAR,
    DEFAULT_REGION,
    GOOGLE_CLOUD_PROJECT_ENV_VAR,
    TERMINAL_JOB_STATES,
    BatchJobInfo,
    BatchSettings,
    import_batch,
    make_batch_client,
)
from wt_invokers._batch_job import (
    JOB_ID_PATTERN,
    LITHOPS_CONFIG_JSON_ENV_VAR,
    RUN_ID_LABEL,
    RUN_UID_LABEL,
    BatchJobOptions,
    build_job,
    job_id,
    job_logs_query,
    job_logs_url,
    owner_label,
)
from wt_invokers._batch_job import job_id as derive_job_id
from wt_invokers._grpc_errors import TRANSIENT_CODES, call_retrying
from wt_invokers.abstract import AbstractInvoker, as_matchspec
from wt_invokers.exceptions import (
    InvokerConfigurationError,
    PermanentSubmissionError,
    SubmissionError,
)
from wt_invokers.invocation import Invocation, warn_unknown_options
from wt_invokers.retry import RetryPolicy

__all__ = [
    "BATCH_EMULATOR_HOST_ENV_VAR",
    "BATCH_SERVICE_ACCOUNT_ENV_VAR",
    "CLOUD_RUN_REGION_ENV_VAR",
    "DEFAULT_REGION",
    "GCP_AVAILABLE",
    "GOOGLE_CLOUD_PROJECT_ENV_VAR",
    "JOB_ID_PATTERN",
    "LITHOPS_CONFIG_JSON_ENV_VAR",
    "RUN_ID_LABEL",
    "RUN_UID_LABEL",
    "TERMINAL_JOB_STATES",
    "TRANSIENT_CODES",
    "BatchJobInfo",
    "BatchJobOptions",
    "BatchSettings",
    "CloudBatchInvoker",
    "job_id",
    "job_logs_query",
    "job_logs_url",
    "make_batch_client",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _gcp_available() -> bool:
    # find_spec, not an import: importing the Batch client costs about a second of CPU.
    try:
        return importlib.util.find_spec("google.cloud.batch_v1") is not None
    except ImportError:  # google or google.cloud missing altogether
        return False


GCP_AVAILABLE: bool = _gcp_available()
"""Whether the ``gcp`` extra (google-cloud-batch) is installed, as upstream exposes it."""


class CloudBatchInvoker(AbstractInvoker):
    """Submits the workflow as a one-task Cloud Batch container job.

    Not waitable: ``wait()`` returns 0 at once and the job's fate is read with
    :meth:`get_job`. See the module docstring for idempotency and retries.

    Args:
        matchspec: the workflow package (its name is the executable in the image).
        project_id, region, service_account: override ``GOOGLE_CLOUD_PROJECT``,
            ``CLOUD_RUN_REGION`` and ``BATCH_SERVICE_ACCOUNT`` (read when a call needs them).
        client: a ``BatchServiceAsyncClient`` to share; by default one is made on
            first use (see :func:`make_batch_client`) and closed by :meth:`close`.
        results_env_var, environment: as in :class:`AbstractInvoker`.
        retry: how transient gRPC failures are retried; default: the three settings below.
        max_attempts: calls per RPC before a transient error is given up on.
        initial_backoff, max_backoff: bounds (seconds) of the jittered exponential backoff.
        rpc_timeout: deadline of each single RPC attempt, in seconds.
        forward_wt_env: copy this process's ``WT_*`` variables into the job's environment
            (under ``extra_env`` and the invoker's own), as upstream does: a script's
            settings follow its jobs. A service that submits on others' behalf (the
            operator) passes False, so nothing of its own environment reaches a job.
    """

    def __init__(
        self,
        matchspec: MatchSpec | str,
        *,
        project_id: str | None = None,
        region: str | None = None,
        service_account: str | None = None,
        client: Any | None = None,
        results_env_var: str | None = None,
        environment: str = "default",
        retry: RetryPolicy | None = None,
        max_attempts: int = 5,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
        rpc_timeout: float = 30.0,
        forward_wt_env: bool = True,
    ) -> None:
        self._batch = import_batch()
        # "" means "the default" to the base (a dataclass whose field is a plain str).
        super().__init__(as_matchspec(matchspec), results_env_var or "", environment=environment)
        self.forward_wt_env = forward_wt_env
        try:
            self.retry = retry or RetryPolicy(max_attempts, initial_backoff, max_backoff)
        except ValueError as exc:
            raise InvokerConfigurationError(str(exc)) from exc
        self.rpc_timeout = rpc_timeout
        self._project_id = project_id
        self._region = region
        self._service_account = service_account
        self._client = client
        self._owns_client = False
        self._job_name: str | None = None
        self._job_uid: str | None = None

    # -- identity -------------------------------------------------------------------------

    @property
    def settings(self) -> BatchSettings:
        """Project, region and service account, resolved now (constructor over environment).

        Raises InvokerConfigurationError when no project is known.
        """
        return BatchSettings.resolve(
            project_id=self._project_id,
            region=self._region,
            service_account=self._service_account,
        )

    @property
    def project_id(self) -> str:
        """The GCP project jobs are created in."""
        return self.settings.project_id

    @property
    def region(self) -> str:
        """The Batch location jobs are created in."""
        return self.settings.region

    @property
    def service_account(self) -> str | None:
        """The service account the job's VMs run as (None: the project default)."""
        return self.settings.service_account

    @property
    def job_name(self) -> str | None:
        """Full name (``projects/…/locations/…/jobs/…``) of the submitted job, after run()."""
        return self._job_name

    @property
    def job_uid(self) -> str | None:
        """The server-assigned uid of the submitted job, after run()."""
        return self._job_uid

    def job_name_for(self, key: str, readable: str | None = None) -> str:
        """The name the job for ``key`` (see :func:`job_id`) has, or will have."""
        return f"{self.settings.parent}/jobs/{derive_job_id(key, readable)}"

    # -- AbstractInvoker --------------------------------------------------------------------

    @property
    def is_waitable(self) -> bool:
        return False

    async def is_installed(self) -> bool:
        """Always True: the workflow ships inside the container image."""
        return True

    async def install(self) -> None:
        """Not possible: build the workflow into the image instead."""
        raise NotImplementedError(
            "Dynamic installation of workflows is not yet supported; "
            "Cloud Batch runs a container image: bake the workflow into it"
        )

    async def _wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Return 0 at once: Batch supervises the job; poll :meth:`get_job` for its fate."""
        return 0

    async def _run(
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
        **kwargs: Any,
    ) -> None:
        """``run()``'s work: submit the job (or adopt this invocation's existing one).

        The seed's signature. Understood keywords: the fields of
        :class:`BatchJobOptions` (``docker_image_uri``, ``cpu_milli``, …), ``run_uid``,
        ``job_id`` and ``secret_env`` (see :meth:`submit`); others are ignored with a
        warning. Typed callers use :meth:`submit`.
        """
        options = BatchJobOptions.from_kwargs(kwargs)
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
        the_id = kwargs.pop("job_id", None)
        secret_env = kwargs.pop("secret_env", None)
        warn_unknown_options(type(self).__name__, kwargs)
        await self.submit(invocation, options, job_id=the_id, secret_env=secret_env)

    def build_job(
        self,
        invocation: Invocation,
        options: BatchJobOptions,
        *,
        secret_env: Mapping[str, str] | None = None,
    ) -> Any:
        """The ``batch_v1.Job`` that :meth:`submit` sends; pure, so it can be inspected.

        Checks as upstream does, in its order, before anything else (the project included):
        the image, then the run id.
        """
        if not options.docker_image_uri:
            raise InvokerConfigurationError("docker_image_uri is required for Cloud Batch invoker")
        if not invocation.workflow_run_id.strip():
            raise InvokerConfigurationError(
                "workflow_run_id cannot be blank for Cloud Batch invoker"
            )
        inherited = (
            {k: v for k, v in os.environ.items() if k.startswith("WT_")}
            if self.forward_wt_env
            else {}
        )
        return build_job(
            self._batch,
            invocation,
            options,
            entrypoint=self.entrypoint_args,
            results_env_var=self.results_env_var,
            service_account=self.settings.service_account,
            package_name=self.package_name,
            secret_env=secret_env,
            inherited_env=inherited,
        )

    async def submit(
        self,
        invocation: Invocation,
        options: BatchJobOptions,
        *,
        job_id: str | None = None,
        secret_env: Mapping[str, str] | None = None,
    ) -> BatchJobInfo:
        """Submit the job (or adopt this invocation's existing one) and return its state.

        ``job_id`` (default: derived from :attr:`Invocation.identity`) names the job.
        ``secret_env`` maps variable names to Secret Manager versions, resolved by Batch.
        Everything is validated before the first RPC. Raises PermanentSubmissionError
        with code ``ALREADY_EXISTS`` when the job id is taken by another run's job.
        """
        job = self.build_job(invocation, options, secret_env=secret_env)
        the_id = job_id or derive_job_id(invocation.identity)
        if not JOB_ID_PATTERN.match(the_id):
            raise InvokerConfigurationError(f"{the_id!r} is not a valid Cloud Batch job id")
        parent = self.settings.parent
        name = f"{parent}/jobs/{the_id}"
        client = self._get_client()
        try:
            created = await self._call(
                "CreateJob",
                lambda: client.create_job(
                    parent=parent, job=job, job_id=the_id, retry=None, timeout=self.rpc_timeout
                ),
            )
            info = BatchJobInfo.from_job(created)
        except PermanentSubmissionError as exc:
            if exc.code != "ALREADY_EXISTS":
                raise
            # Submitted before (a resubmission, or a create whose reply we never saw) —
            # or another run's job under the same id: the owner label tells them apart.
            info = await self.get_job(name)
            key, value = owner_label(invocation)
            if info.labels.get(key) != value:
                raise PermanentSubmissionError(
                    f"Cloud Batch job {name} already exists and belongs to another run "
                    f"({key}={info.labels.get(key, '<none>')!s}, this run is {value}); "
                    "it was not adopted",
                    code="ALREADY_EXISTS",
                ) from exc
            logger.info("Batch job %s already exists and is this run's; adopting it", name)
        self._job_name = info.name or name
        self._job_uid = info.uid or None
        logger.info(
            "Batch job %s for run %s (uid %s)",
            self._job_name,
            invocation.workflow_run_id,
            self._job_uid,
        )
        return info

    # -- job helpers for pollers --------------------------------------------------------------

    async def get_job(self, job_name: str | None = None) -> BatchJobInfo:
        """The job's current state (default: the job of the last submit).

        NOT_FOUND raises PermanentSubmissionError(code="NOT_FOUND"): the job is gone.
        """
        name = self._name(job_name)
        client = self._get_client()
        job = await self._call(
            "GetJob", lambda: client.get_job(name=name, retry=None, timeout=self.rpc_timeout)
        )
        return BatchJobInfo.from_job(job)

    async def cancel_job(self, job_name: str | None = None) -> None:
        """Stop the job (CancelJob; DeleteJob on APIs without it). Gone already is fine."""
        name = self._name(job_name)
        client = self._get_client()
        if not hasattr(client, "cancel_job"):
            # Older client versions have no CancelJob; deleting also stops the job.
            await self.delete_job(name)
            return
        try:
            await self._tolerating_not_found(
                "CancelJob",
                lambda: client.cancel_job(name=name, retry=None, timeout=self.rpc_timeout),
            )
        except PermanentSubmissionError as exc:
            if exc.code != "UNIMPLEMENTED":  # an endpoint that predates CancelJob
                raise
            await self.delete_job(name)

    async def delete_job(
        self, job_name: str | None = None, *, retry: RetryPolicy | None = None
    ) -> None:
        """Delete the job (stopping it if it still runs). Gone already (NOT_FOUND) is fine.

        ``retry`` replaces the invoker's policy for this call: a caller that keeps trying
        in its own loop (and says so meanwhile) passes ``RetryPolicy(max_attempts=1)`` so
        that no retry runs inside another.
        """
        name = self._name(job_name)
        client = self._get_client()
        await self._tolerating_not_found(
            "DeleteJob",
            lambda: client.delete_job(name=name, retry=None, timeout=self.rpc_timeout),
            retry,
        )

    async def close(self) -> None:
        """Close the client if this invoker created it (an injected one is the caller's)."""
        client, owned = self._client, self._owns_client
        if client is None or not owned:
            return
        self._client, self._owns_client = None, False
        transport = getattr(client, "transport", None)
        if transport is not None:
            await transport.close()

    # -- internals -----------------------------------------------------------------------------

    def _name(self, job_name: str | None) -> str:
        name = job_name or self._job_name
        if not name:
            raise InvokerConfigurationError("no job: pass job_name= or submit first")
        return name

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = make_batch_client()
            self._owns_client = True
        return self._client

    async def _call(
        self, what: str, call: Callable[[], Awaitable[T]], retry: RetryPolicy | None = None
    ) -> T:
        """``call()`` under the retry policy; errors become SubmissionError subclasses."""
        return await call_retrying("Cloud Batch", what, call, policy=retry or self.retry)

    async def _tolerating_not_found(
        self, what: str, call: Callable[[], Awaitable[Any]], retry: RetryPolicy | None = None
    ) -> None:
        try:
            await self._call(what, call, retry)
        except SubmissionError as exc:
            if exc.code != "NOT_FOUND":
                raise
            logger.info("Batch job already gone (%s)", exc)
