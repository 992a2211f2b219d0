"""Run a workflow as a Google Cloud Batch job.

Exists so the same workflow package the local invoker runs can run on a VM in
the cloud: :class:`CloudBatchInvoker` submits one container job and returns —
Batch, not this process, supervises it, so the invoker is not waitable and a
caller (the operator) follows the job with :meth:`CloudBatchInvoker.get_job`.

Safe to call again after any failure: the job id derives from the run id
(:func:`job_id`), so a resubmission, or a retry after a create whose reply was
lost, meets ``ALREADY_EXISTS`` and adopts the job that exists instead of
creating a second one. Transient gRPC errors are retried here (exponential
backoff, full jitter) and nowhere else: the generated client's own retry layer
is switched off per call.

``google-cloud-batch`` is the optional ``gcp`` extra; it is imported only when
an invoker or a client is built, so ``import wt_invokers`` works without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import yaml
from rattler import MatchSpec

from wt_invokers._process import RUN_ID_ENV_VAR
from wt_invokers.abstract import AbstractInvoker
from wt_invokers.exceptions import (
    InvokerConfigurationError,
    PermanentSubmissionError,
    SubmissionError,
    TransientSubmissionError,
)

__all__ = [
    "BATCH_EMULATOR_HOST_ENV_VAR",
    "BATCH_SERVICE_ACCOUNT_ENV_VAR",
    "CLOUD_RUN_REGION_ENV_VAR",
    "DEFAULT_REGION",
    "GOOGLE_CLOUD_PROJECT_ENV_VAR",
    "JOB_ID_PATTERN",
    "LITHOPS_CONFIG_JSON_ENV_VAR",
    "RUN_ID_LABEL",
    "TRANSIENT_CODES",
    "BatchJobInfo",
    "BatchSettings",
    "CloudBatchInvoker",
    "job_id",
    "make_batch_client",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

GOOGLE_CLOUD_PROJECT_ENV_VAR = "GOOGLE_CLOUD_PROJECT"
"""The GCP project jobs are created in (required unless ``project_id=`` is given)."""

CLOUD_RUN_REGION_ENV_VAR = "CLOUD_RUN_REGION"
"""The Batch region (location) jobs are created in."""

DEFAULT_REGION = "us-central1"
"""Used when neither ``region=`` nor ``CLOUD_RUN_REGION`` names one."""

BATCH_SERVICE_ACCOUNT_ENV_VAR = "BATCH_SERVICE_ACCOUNT"
"""Optional service-account email the job's VMs run as."""

BATCH_EMULATOR_HOST_ENV_VAR = "BATCH_EMULATOR_HOST"
"""``host:port`` of an insecure Batch endpoint (the test server); unset means real GCP."""

LITHOPS_CONFIG_JSON_ENV_VAR = "LITHOPS_CONFIG_JSON"
"""Job environment variable carrying ``lithops_config_text`` as compact JSON.

A Batch VM has no file of ours to point ``LITHOPS_CONFIG_FILE`` at, so the
parsed configuration travels in the job's environment instead.
"""

RUN_ID_LABEL = "wt-run-id"
"""Job label holding the (sanitised) workflow run id, for finding jobs in the console."""

JOB_ID_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
"""What Cloud Batch accepts as a job id."""

TRANSIENT_CODES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"}
)
"""gRPC codes worth retrying; every other code is permanent (retrying cannot help).

Retrying INTERNAL is safe here because every call is idempotent: creates are
keyed by a deterministic job id.
"""

_GCP_EXTRA_HINT = "pip install 'wt-invokers[gcp]'"
_JOB_ID_PREFIX = "wt-"
_HASH_CHARS = 12  # 48 bits: collisions need ~16 million distinct run ids
_LABEL_MAX = 63
_NON_ID_CHARS = re.compile(r"[^a-z0-9-]+")
_NON_LABEL_CHARS = re.compile(r"[^a-z0-9_-]+")


def _import_batch() -> Any:
    """``google.cloud.batch_v1``, or ImportError naming the extra that provides it."""
    try:
        from google.cloud import batch_v1
    except ImportError as exc:
        raise ImportError(
            f"CloudBatchInvoker needs google-cloud-batch: {_GCP_EXTRA_HINT} ({exc})"
        ) from exc
    return batch_v1


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def job_id(workflow_run_id: str) -> str:
    """The Batch job id of a run: deterministic, valid, and distinct per run id.

    Deterministic so that resubmitting a run finds its job (``ALREADY_EXISTS``)
    instead of creating another; the readable prefix is a sanitised, truncated
    run id, and the hash of the *full* id keeps ids that sanitise or truncate
    alike apart. Always ``wt-…``: Batch wants a leading letter and ≤ 63 chars.
    """
    slug = _NON_ID_CHARS.sub("-", workflow_run_id.lower()).strip("-")
    room = 63 - len(_JOB_ID_PREFIX) - 1 - _HASH_CHARS
    slug = slug[:room].strip("-")
    digest = _digest(workflow_run_id)
    return f"{_JOB_ID_PREFIX}{slug}-{digest}" if slug else f"{_JOB_ID_PREFIX}{digest}"


def _label_value(value: str) -> str:
    """A GCP label value: lowercase ``[a-z0-9_-]``, ≤ 63 chars (long ones keep a hash)."""
    clean = _NON_LABEL_CHARS.sub("_", value.lower())
    if len(clean) <= _LABEL_MAX:
        return clean
    return f"{clean[: _LABEL_MAX - _HASH_CHARS - 1]}-{_digest(value)}"


def _label_key(key: str) -> str:
    """A GCP label key: like a value, but non-empty and starting with a letter."""
    clean = _label_value(key)
    if not clean or not clean[0].isalpha():
        clean = _label_value(f"l-{key}")
    return clean


def make_batch_client(emulator_host: str | None = None) -> Any:
    """A ``BatchServiceAsyncClient``: real GCP, or an insecure emulator endpoint.

    Exists so one client can be built once and shared by many invokers (a gRPC
    channel multiplexes thousands of calls). ``emulator_host`` (else
    ``$BATCH_EMULATOR_HOST``) as ``host:port`` means plaintext gRPC with
    anonymous credentials — the in-process test server; without it the client
    uses Application Default Credentials. Call it with an event loop running:
    grpc.aio channels belong to the loop they are created on.
    """
    batch_v1 = _import_batch()
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
    """Where jobs go and as whom, resolved once at construction (kwargs over env)."""

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

    @property
    def is_terminal(self) -> bool:
        """Whether the job can change no more (succeeded, failed or cancelled)."""
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED")


def _status_name(exc: BaseException) -> str | None:
    """The gRPC status name of a google.api_core error, or None for other exceptions."""
    from google.api_core import exceptions as gexc

    if not isinstance(exc, gexc.GoogleAPICallError):
        return None
    code = getattr(exc, "grpc_status_code", None)
    name = getattr(code, "name", None)
    return str(name) if name else type(exc).__name__.upper()


class CloudBatchInvoker(AbstractInvoker):
    """Submits the workflow as a one-task Cloud Batch container job.

    Not waitable: ``wait()`` returns 0 at once and the job's fate is read with
    :meth:`get_job`. See the module docstring for idempotency and retries.

    Args:
        matchspec: the workflow package (its name is the executable in the image).
        project_id, region, service_account: override ``GOOGLE_CLOUD_PROJECT``,
            ``CLOUD_RUN_REGION`` and ``BATCH_SERVICE_ACCOUNT`` (read now, not later).
        client: a ``BatchServiceAsyncClient`` to share; by default one is made on
            first use (see :func:`make_batch_client`) and closed by :meth:`close`.
        results_env_var, environment: as in :class:`AbstractInvoker`.
        max_attempts: calls per RPC before a transient error is given up on.
        initial_backoff, max_backoff: bounds (seconds) of the jittered exponential backoff.
        rpc_timeout: deadline of each single RPC attempt, in seconds.
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
        max_attempts: int = 5,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
        rpc_timeout: float = 30.0,
    ) -> None:
        self._batch = _import_batch()
        super().__init__(matchspec, results_env_var=results_env_var, environment=environment)
        self.settings = BatchSettings.resolve(
            project_id=project_id, region=region, service_account=service_account
        )
        if max_attempts < 1:
            raise InvokerConfigurationError("max_attempts must be at least 1")
        if initial_backoff < 0 or max_backoff < 0:
            raise InvokerConfigurationError("backoff bounds must not be negative")
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.rpc_timeout = rpc_timeout
        self._client = client
        self._owns_client = False
        self._job_name: str | None = None
        self._job_uid: str | None = None

    # -- identity -------------------------------------------------------------------------

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

    def job_name_for(self, workflow_run_id: str) -> str:
        """The name the job of ``workflow_run_id`` has (or will have) in this project/region."""
        return f"{self.settings.parent}/jobs/{job_id(workflow_run_id)}"

    # -- AbstractInvoker --------------------------------------------------------------------

    @property
    def is_waitable(self) -> bool:
        return False

    async def is_installed(self) -> bool:
        """Always True: the workflow ships inside the container image."""
        return True

    async def install(self) -> None:
        """Not possible: build the workflow into the image instead."""
        raise NotImplementedError("Cloud Batch runs a container image; bake the workflow into it")

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Return 0 at once: Batch supervises the job; poll :meth:`get_job` for its fate."""
        return 0

    async def run(
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
        docker_image_uri: str | None = None,
        cpu_milli: int = 8000,
        memory_mib: int = 32768,
        machine_type: str | None = None,
        timeout: float | None = None,
        gpu_type: str | None = None,
        gpu_count: int = 1,
        network: str | None = None,
        subnetwork: str | None = None,
        no_external_ip: bool = False,
        labels: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Submit the job (or adopt the one this run id already has) and return.

        Everything is validated before the first RPC. Afterwards :attr:`job_name`
        and :attr:`job_uid` identify the job.
        """
        job = self.build_job(
            workflow_run_id,
            config_text,
            results_url,
            execution_mode,
            mock_io,
            otel_exporter=otel_exporter,
            otel_console_exporter_dst=otel_console_exporter_dst,
            extra_env=extra_env,
            lithops_config_text=lithops_config_text,
            docker_image_uri=docker_image_uri,
            cpu_milli=cpu_milli,
            memory_mib=memory_mib,
            machine_type=machine_type,
            timeout=timeout,
            gpu_type=gpu_type,
            gpu_count=gpu_count,
            network=network,
            subnetwork=subnetwork,
            no_external_ip=no_external_ip,
            labels=labels,
        )
        if kwargs:
            logger.debug(
                "ignoring options the Cloud Batch invoker does not use: %s", sorted(kwargs)
            )
        the_id = job_id(workflow_run_id)
        name = f"{self.settings.parent}/jobs/{the_id}"
        client = self._get_client()
        created = await self._create_or_adopt(client, job, the_id, name)
        self._job_name = str(created.name) or name
        self._job_uid = str(created.uid) or None
        logger.info(
            "Batch job %s for run %s (uid %s)", self._job_name, workflow_run_id, self._job_uid
        )

    def build_job(
        self,
        workflow_run_id: str,
        config_text: str,
        results_url: str,
        execution_mode: str,
        mock_io: bool,
        *,
        otel_exporter: str | None = None,
        otel_console_exporter_dst: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        lithops_config_text: str | None = None,
        docker_image_uri: str | None = None,
        cpu_milli: int = 8000,
        memory_mib: int = 32768,
        machine_type: str | None = None,
        timeout: float | None = None,
        gpu_type: str | None = None,
        gpu_count: int = 1,
        network: str | None = None,
        subnetwork: str | None = None,
        no_external_ip: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> Any:
        """The ``batch_v1.Job`` that :meth:`run` submits; pure, so it can be inspected.

        Raises InvokerConfigurationError for anything Batch would refuse or the
        workflow could not read (no image, invalid YAML, bad resources).
        """
        b = self._batch
        if not workflow_run_id:
            raise InvokerConfigurationError("workflow_run_id must not be empty")
        if not execution_mode:
            raise InvokerConfigurationError("execution_mode must not be empty")
        if not docker_image_uri:
            raise InvokerConfigurationError("docker_image_uri is required for Cloud Batch")
        if cpu_milli <= 0 or memory_mib <= 0:
            raise InvokerConfigurationError("cpu_milli and memory_mib must be positive")
        if gpu_type and gpu_count < 1:
            raise InvokerConfigurationError("gpu_count must be at least 1")
        if timeout is not None and timeout <= 0:
            raise InvokerConfigurationError("timeout must be positive")
        config = _parse_yaml("config_text", config_text)

        commands = [
            *self.entrypoint_args,
            "run",
            "--config-json",
            _compact_json(config),
            "--execution-mode",
            execution_mode,
            "--mock-io" if mock_io else "--no-mock-io",
        ]
        if otel_exporter is not None:
            commands += ["--otel-exporter", otel_exporter]
        if otel_console_exporter_dst is not None:
            commands += ["--otel-console-exporter-dst", otel_console_exporter_dst]

        # Only what the workflow needs: nothing of this (operator) process's environment.
        env = dict(extra_env or {})
        if lithops_config_text is not None:
            lithops = _parse_yaml("lithops_config_text", lithops_config_text)
            env[LITHOPS_CONFIG_JSON_ENV_VAR] = _compact_json(lithops)
        env[RUN_ID_ENV_VAR] = workflow_run_id
        env[self.results_env_var] = results_url

        task = b.TaskSpec(
            runnables=[
                b.Runnable(
                    container=b.Runnable.Container(image_uri=docker_image_uri, commands=commands)
                )
            ],
            compute_resource=b.ComputeResource(cpu_milli=cpu_milli, memory_mib=memory_mib),
            environment=b.Environment(variables=env),
            max_retry_count=0,  # a rerun is the operator's decision, not Batch's
        )
        if timeout is not None:
            # Whole seconds, rounded up: Batch should never cut a run short of its budget.
            task.max_run_duration = dt.timedelta(seconds=math.ceil(timeout))

        # proto-plus copies a message passed to a constructor: finish it before nesting.
        policy = b.AllocationPolicy.InstancePolicy()
        if machine_type:
            policy.machine_type = machine_type
        if gpu_type:
            policy.accelerators = [b.AllocationPolicy.Accelerator(type_=gpu_type, count=gpu_count)]
        instance = b.AllocationPolicy.InstancePolicyOrTemplate(
            policy=policy, install_gpu_drivers=bool(gpu_type)
        )
        allocation = b.AllocationPolicy(instances=[instance])
        if network or subnetwork or no_external_ip:
            allocation.network = b.AllocationPolicy.NetworkPolicy(
                network_interfaces=[
                    b.AllocationPolicy.NetworkInterface(
                        network=network or "",
                        subnetwork=subnetwork or "",
                        no_external_ip_address=no_external_ip,
                    )
                ]
            )
        if self.settings.service_account:
            allocation.service_account = b.ServiceAccount(email=self.settings.service_account)

        job_labels = {_label_key(k): _label_value(v) for k, v in (labels or {}).items()}
        job_labels[RUN_ID_LABEL] = _label_value(workflow_run_id)
        job_labels.setdefault("wt-workflow", _label_value(self.package_name))

        return b.Job(
            task_groups=[b.TaskGroup(task_count=1, parallelism=1, task_spec=task)],
            allocation_policy=allocation,
            labels=job_labels,
            logs_policy=b.LogsPolicy(destination=b.LogsPolicy.Destination.CLOUD_LOGGING),
        )

    # -- job helpers for pollers --------------------------------------------------------------

    async def get_job(self, job_name: str | None = None) -> BatchJobInfo:
        """The job's current state (default: the job of the last run()).

        NOT_FOUND raises PermanentSubmissionError(code="NOT_FOUND"): the job is gone.
        """
        name = self._name(job_name)
        client = self._get_client()
        job = await self._retrying(
            "GetJob", lambda: client.get_job(name=name, retry=None, timeout=self.rpc_timeout)
        )
        return _job_info(job)

    async def cancel_job(self, job_name: str | None = None) -> None:
        """Stop the job (CancelJob; DeleteJob on APIs without it). Gone already is fine."""
        name = self._name(job_name)
        client = self._get_client()
        if not hasattr(client, "cancel_job"):
            # Older client versions have no CancelJob; deleting also stops the job.
            await self.delete_job(name)
            return
        try:
            with _tolerate_not_found():
                await self._retrying(
                    "CancelJob",
                    lambda: client.cancel_job(name=name, retry=None, timeout=self.rpc_timeout),
                )
        except PermanentSubmissionError as exc:
            if exc.code != "UNIMPLEMENTED":  # an endpoint that predates CancelJob
                raise
            await self.delete_job(name)

    async def delete_job(self, job_name: str | None = None) -> None:
        """Delete the job (stopping it if it still runs). Gone already is fine."""
        name = self._name(job_name)
        client = self._get_client()
        with _tolerate_not_found():
            await self._retrying(
                "DeleteJob",
                lambda: client.delete_job(name=name, retry=None, timeout=self.rpc_timeout),
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
            raise InvokerConfigurationError("no job: pass job_name= or call run() first")
        return name

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = make_batch_client()
            self._owns_client = True
        return self._client

    async def _create_or_adopt(self, client: Any, job: Any, the_id: str, name: str) -> Any:
        parent = self.settings.parent
        from google.api_core import exceptions as gexc

        try:
            return await self._retrying(
                "CreateJob",
                lambda: client.create_job(
                    parent=parent, job=job, job_id=the_id, retry=None, timeout=self.rpc_timeout
                ),
                passthrough=gexc.AlreadyExists,
            )
        except gexc.AlreadyExists:
            # Submitted before (a resubmission, or a create whose reply we never saw).
            logger.info("Batch job %s already exists; adopting it", name)
            return await self._retrying(
                "GetJob", lambda: client.get_job(name=name, retry=None, timeout=self.rpc_timeout)
            )

    async def _retrying(
        self,
        what: str,
        call: Callable[[], Awaitable[T]],
        passthrough: type[BaseException] | None = None,
    ) -> T:
        """``call()`` under our retry policy; errors become SubmissionError subclasses.

        ``passthrough`` is re-raised untouched so a caller can treat it as an answer.
        """
        delay = self.initial_backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await call()
            except Exception as exc:
                if passthrough is not None and isinstance(exc, passthrough):
                    raise
                code = _status_name(exc)
                if code is None:
                    raise
                if code not in TRANSIENT_CODES:
                    raise PermanentSubmissionError(
                        f"Cloud Batch {what} failed with {code}: {_message(exc)}", code=code
                    ) from exc
                if attempt >= self.max_attempts:
                    raise TransientSubmissionError(
                        f"Cloud Batch {what} still failing with {code} after "
                        f"{attempt} attempts: {_message(exc)}",
                        code=code,
                    ) from exc
                pause = random.uniform(0, delay)  # full jitter: callers do not stampede
                logger.warning(
                    "Cloud Batch %s failed with %s (attempt %d/%d); retrying in %.2fs",
                    what,
                    code,
                    attempt,
                    self.max_attempts,
                    pause,
                )
                await asyncio.sleep(pause)
                delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # the loop returns or raises


@contextlib.contextmanager
def _tolerate_not_found() -> Any:
    try:
        yield
    except SubmissionError as exc:
        if exc.code != "NOT_FOUND":
            raise
        logger.info("Batch job already gone (%s)", exc)


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


# libyaml's safe loader when PyYAML was built with it: same documents, ~10x faster,
# which matters when an operator submits hundreds of runs a second.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(what: str, text: str) -> Any:
    try:
        value = yaml.load(text, Loader=_SafeLoader)  # a safe loader (C or Python)
    except yaml.YAMLError as exc:
        raise InvokerConfigurationError(f"{what} is not valid YAML: {exc}") from exc
    return {} if value is None else value


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InvokerConfigurationError(f"configuration cannot be sent as JSON: {exc}") from exc


def _json_default(value: Any) -> Any:
    # YAML has dates and sets; JSON does not. ISO text is what the YAML said anyway.
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _job_info(job: Any) -> BatchJobInfo:
    events = job.status.status_events
    last = str(events[-1].description) if events else ""  # Batch appends in time order
    state = job.status.state
    return BatchJobInfo(
        name=str(job.name),
        uid=str(job.uid),
        state=str(getattr(state, "name", state)),
        last_event=last,
    )
