"""The Cloud Batch job of an invocation, as pure functions.

Exists so what is submitted can be computed, inspected and tested without a
network: the job id (deterministic, so a resubmission meets ``ALREADY_EXISTS``
instead of creating a second job), its labels (which say whose job it is), the
job message itself with everything Batch or Linux would refuse caught before the
first RPC, and where its logs are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from wt_invokers._process import PROCESS_MARKER_ENV_VAR, RUN_ID_ENV_VAR
from wt_invokers.exceptions import InvokerConfigurationError
from wt_invokers.invocation import (
    MAX_ARG_BYTES,
    Invocation,
    compact_json,
    parse_yaml,
    workflow_args,
)

__all__ = [
    "JOB_ID_PATTERN",
    "LITHOPS_CONFIG_JSON_ENV_VAR",
    "RUN_ID_LABEL",
    "RUN_UID_LABEL",
    "BatchJobOptions",
    "build_job",
    "job_id",
    "job_logs_query",
    "job_logs_url",
    "label_value",
    "owner_label",
]

LITHOPS_CONFIG_JSON_ENV_VAR = "LITHOPS_CONFIG_JSON"
"""Job environment variable carrying ``lithops_config_text`` as compact JSON.

A Batch VM has no file of ours to point ``LITHOPS_CONFIG_FILE`` at, so the
parsed configuration travels in the job's environment instead.
"""

RUN_ID_LABEL = "wt-run-id"
"""Job label holding the (sanitised) workflow run id, for finding jobs in the console."""

RUN_UID_LABEL = "wt-run-uid"
"""Job label holding the invocation's ``run_uid``: whose job it is. A job found under
this invocation's id but carrying another uid is never adopted."""

JOB_ID_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
"""What Cloud Batch accepts as a job id."""

_JOB_ID_PREFIX = "wt-"
_HASH_CHARS = 12  # 48 bits: collisions need ~16 million distinct keys
_LABEL_MAX = 63
_NON_ID_CHARS = re.compile(r"[^a-z0-9-]+")
_NON_LABEL_CHARS = re.compile(r"[^a-z0-9_-]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def job_id(key: str, readable: str | None = None) -> str:
    """The Batch job id for ``key``: deterministic, valid, and distinct per key.

    Deterministic so that resubmitting finds the job (``ALREADY_EXISTS``) instead of
    creating another; the readable part is ``readable`` (default: ``key``) sanitised
    and cut, and the hash of the *full* key keeps keys that read alike apart.
    Always ``wt-…``: Batch wants a leading letter and ≤ 63 characters.
    """
    slug = _NON_ID_CHARS.sub("-", (readable if readable is not None else key).lower()).strip("-")
    room = 63 - len(_JOB_ID_PREFIX) - 1 - _HASH_CHARS
    slug = slug[:room].strip("-")
    digest = _digest(key)
    return f"{_JOB_ID_PREFIX}{slug}-{digest}" if slug else f"{_JOB_ID_PREFIX}{digest}"


def label_value(value: str) -> str:
    """A GCP label value: lowercase ``[a-z0-9_-]``, ≤ 63 chars (long ones keep a hash)."""
    clean = _NON_LABEL_CHARS.sub("_", value.lower())
    if len(clean) <= _LABEL_MAX:
        return clean
    return f"{clean[: _LABEL_MAX - _HASH_CHARS - 1]}-{_digest(value)}"


def _label_key(key: str) -> str:
    """A GCP label key: like a value, but non-empty and starting with a letter."""
    clean = label_value(key)
    if not clean or not clean[0].isalpha():
        clean = label_value(f"l-{key}")
    return clean


def owner_label(invocation: Invocation) -> tuple[str, str]:
    """The label that says whose job it is: ``wt-run-uid`` (or ``wt-run-id`` without a uid)."""
    if invocation.run_uid:
        return RUN_UID_LABEL, label_value(invocation.run_uid)
    return RUN_ID_LABEL, label_value(invocation.workflow_run_id)


def job_logs_url(job_name: str) -> str:
    """The Cloud Console page of a job's logs (``projects/P/locations/R/jobs/J``)."""
    parts = job_name.split("/")
    if len(parts) != 6:
        raise InvokerConfigurationError(f"not a Batch job name: {job_name!r}")
    project, region, the_id = parts[1], parts[3], parts[5]
    return (
        f"https://console.cloud.google.com/batch/jobsDetail/regions/{quote(region)}"
        f"/jobs/{quote(the_id)}/logs?project={quote(project)}"
    )


def job_logs_query(project_id: str, job_uid: str) -> str:
    """The Cloud Logging filter selecting a job's task and agent log entries."""
    return (
        f'logName=("projects/{project_id}/logs/batch_task_logs" OR '
        f'"projects/{project_id}/logs/batch_agent_logs") AND labels.job_uid="{job_uid}"'
    )


@dataclasses.dataclass(frozen=True)
class BatchJobOptions:
    """Where and on what a Batch job runs: the Cloud Batch keywords of ``run()``, defined once."""

    docker_image_uri: str | None = None
    """The container image holding the workflow (required)."""
    cpu_milli: int = 8000
    memory_mib: int = 32768
    machine_type: str | None = None
    timeout: float | None = None
    """Seconds; becomes the task's max_run_duration (rounded up)."""
    gpu_type: str | None = None
    gpu_count: int = 1
    network: str | None = None
    subnetwork: str | None = None
    no_external_ip: bool = False
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> BatchJobOptions:
        """Pop this class's fields out of ``kwargs`` (the seed's ``run(**kwargs)``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: kwargs.pop(name) for name in list(kwargs) if name in names})

    def validate(self) -> None:
        if not self.docker_image_uri:
            raise InvokerConfigurationError("docker_image_uri is required for Cloud Batch")
        if self.cpu_milli <= 0 or self.memory_mib <= 0:
            raise InvokerConfigurationError("cpu_milli and memory_mib must be positive")
        if self.gpu_type and self.gpu_count < 1:
            raise InvokerConfigurationError("gpu_count must be at least 1")
        if self.timeout is not None and self.timeout <= 0:
            raise InvokerConfigurationError("timeout must be positive")


def _check_size(what: str, text: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_ARG_BYTES:
        raise InvokerConfigurationError(
            f"{what} is {size / 1024:.0f} KiB; Cloud Batch hands it to the container as one "
            f"string, and Linux refuses to start a program with a string over 128 KiB. "
            "Keep large data out of the config (read it from storage instead)."
        )


def build_job(
    b: Any,
    invocation: Invocation,
    options: BatchJobOptions,
    *,
    entrypoint: list[str],
    results_env_var: str,
    service_account: str | None,
    package_name: str,
    secret_env: Mapping[str, str] | None = None,
    inherited_env: Mapping[str, str] | None = None,
) -> Any:
    """The ``batch_v1.Job`` (module ``b``) to submit; pure.

    ``inherited_env`` (the caller's ``WT_*`` variables, when it forwards them) comes
    first: ``extra_env``, the invoker's own variables and secrets of the same name win.

    ``secret_env`` maps variable names to Secret Manager versions
    (``projects/P/secrets/S/versions/V``): Batch resolves them on the VM, so their
    values never pass through here. Raises InvokerConfigurationError for anything
    Batch would refuse or the workflow could not start with.
    """
    config = invocation.validate()
    options.validate()
    config_json = compact_json(config)
    _check_size("the config as JSON (--config-json)", config_json)
    commands = [*entrypoint, *workflow_args(invocation, ["--config-json", config_json])]

    secrets = dict(secret_env or {})
    # Only what the workflow needs, and what the caller chose to forward.
    env = {k: v for k, v in (inherited_env or {}).items() if k not in secrets}
    env.update(invocation.extra_env)
    if invocation.lithops_config_text is not None:
        lithops = parse_yaml("lithops_config_text", invocation.lithops_config_text)
        env[LITHOPS_CONFIG_JSON_ENV_VAR] = compact_json(lithops)
    env[RUN_ID_ENV_VAR] = invocation.workflow_run_id
    env[PROCESS_MARKER_ENV_VAR] = invocation.identity
    env[results_env_var] = invocation.results_url
    for name, value in env.items():
        _check_size(f"environment variable {name}", f"{name}={value}")
    overlap = sorted(set(secrets) & set(env))
    if overlap:
        raise InvokerConfigurationError(f"{', '.join(overlap)} set both as value and as secret")

    task = b.TaskSpec(
        runnables=[
            b.Runnable(
                container=b.Runnable.Container(
                    image_uri=options.docker_image_uri, commands=commands
                )
            )
        ],
        compute_resource=b.ComputeResource(
            cpu_milli=options.cpu_milli, memory_mib=options.memory_mib
        ),
        environment=b.Environment(variables=env, secret_variables=secrets),
        max_retry_count=0,  # a rerun is the caller's decision, not Batch's
    )
    if options.timeout is not None:
        # Whole seconds, rounded up: Batch should never cut a run short of its budget.
        task.max_run_duration = dt.timedelta(seconds=math.ceil(options.timeout))

    # proto-plus copies a message passed to a constructor: finish it before nesting.
    policy = b.AllocationPolicy.InstancePolicy()
    if options.machine_type:
        policy.machine_type = options.machine_type
    if options.gpu_type:
        policy.accelerators = [
            b.AllocationPolicy.Accelerator(type_=options.gpu_type, count=options.gpu_count)
        ]
    instance = b.AllocationPolicy.InstancePolicyOrTemplate(
        policy=policy, install_gpu_drivers=bool(options.gpu_type)
    )
    allocation = b.AllocationPolicy(instances=[instance])
    if options.network or options.subnetwork or options.no_external_ip:
        allocation.network = b.AllocationPolicy.NetworkPolicy(
            network_interfaces=[
                b.AllocationPolicy.NetworkInterface(
                    network=options.network or "",
                    subnetwork=options.subnetwork or "",
                    no_external_ip_address=options.no_external_ip,
                )
            ]
        )
    if service_account:
        allocation.service_account = b.ServiceAccount(email=service_account)

    labels = {_label_key(k): label_value(v) for k, v in options.labels.items()}
    labels[RUN_ID_LABEL] = label_value(invocation.workflow_run_id)
    key, value = owner_label(invocation)
    labels[key] = value
    labels.setdefault("wt-workflow", label_value(package_name))

    return b.Job(
        task_groups=[b.TaskGroup(task_count=1, parallelism=1, task_spec=task)],
        allocation_policy=allocation,
        labels=labels,
        logs_policy=b.LogsPolicy(destination=b.LogsPolicy.Destination.CLOUD_LOGGING),
    )
