"""The RunJob request for one invocation: which job, and the sandbox's command line.

Exists so what an execution is told is a pure function of the invocation and
its target — inspectable in a test, validated before the first RPC — while
:mod:`wt_invokers.cloud_run_jobs` only sends it. The container of a pre-deployed job
runs ``wt-invokers.sandbox``; its flags are upstream's.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from wt_invokers._batch_client import DEFAULT_REGION
from wt_invokers._batch_job import LITHOPS_CONFIG_JSON_ENV_VAR
from wt_invokers._cloud_run_client import CORRELATION_ENV_VAR
from wt_invokers.exceptions import InvokerConfigurationError
from wt_invokers.invocation import MAX_ARG_BYTES, Invocation, compact_json, parse_yaml

__all__ = [
    "DEFAULT_REGION",
    "JOB_NAME_PATTERN",
    "SANDBOX_STAGING_RESULTS_URL",
    "JobTarget",
    "SandboxArgs",
    "build_run_job_request",
    "sandbox_args",
]


JOB_NAME_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
"""What Cloud Run accepts as a job's short name."""

_PROJECT_PATTERN = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION_PATTERN = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

SANDBOX_STAGING_RESULTS_URL = "file:///results"
"""The sandbox's local staging directory: a results URL only when the archive is uploaded."""


@dataclasses.dataclass(frozen=True)
class JobTarget:
    """Which pre-deployed Cloud Run Job runs the sandbox."""

    job_name: str
    """Short name of the job (``wt-sandbox``), deployed beforehand by an admin."""
    project_id: str
    """The GCP project the job lives in."""
    region: str = DEFAULT_REGION
    """The region the job lives in."""

    def __post_init__(self) -> None:
        if not JOB_NAME_PATTERN.match(self.job_name):
            raise InvokerConfigurationError(
                f"job_name {self.job_name!r} is not a Cloud Run job name "
                "(lowercase letters, digits and hyphens, starting with a letter, ≤ 63)"
            )
        if not _PROJECT_PATTERN.match(self.project_id):
            raise InvokerConfigurationError(f"project_id {self.project_id!r} is not a project id")
        if not _REGION_PATTERN.match(self.region):
            raise InvokerConfigurationError(f"region {self.region!r} is not a region")

    @property
    def name(self) -> str:
        """``projects/P/locations/R/jobs/J``."""
        return f"projects/{self.project_id}/locations/{self.region}/jobs/{self.job_name}"


@dataclasses.dataclass(frozen=True)
class SandboxArgs:
    """Where the sandbox gets its environment and puts its results."""

    environment_tar_url: str
    """URL of the pixi-pack environment archive the sandbox unpacks."""
    results_upload_url: str | None = None
    """Signed URL the results archive is PUT to; required unless the upload is skipped."""
    skip_results_archive_upload: bool = False
    """The workflow writes to ``results_url`` itself; no archive is uploaded."""
    timeout: float | None = None
    """Seconds the execution may run (Cloud Run's task timeout override); None: the job's."""
    environment_tar_digest: str | None = None
    """``sha256:<hex>`` the archive must have; the sandbox refuses another (None: unchecked)."""

    def validate(self, results_url: str) -> None:
        """Upstream's rules, checked before anything is sent."""
        if not self.environment_tar_url:
            raise InvokerConfigurationError("environment_tar_url is required")
        if self.environment_tar_digest is not None and not _DIGEST.match(
            self.environment_tar_digest
        ):
            raise InvokerConfigurationError(
                f"environment_tar_digest {self.environment_tar_digest!r} is not sha256:<64 hex>"
            )
        if self.skip_results_archive_upload:
            if self.results_upload_url is not None:
                raise InvokerConfigurationError(
                    "results_upload_url and skip_results_archive_upload are mutually exclusive"
                )
            if results_url == SANDBOX_STAGING_RESULTS_URL:
                raise InvokerConfigurationError(
                    "skip_results_archive_upload needs results_url to be a real destination, "
                    f"not the sandbox's staging {SANDBOX_STAGING_RESULTS_URL}"
                )
        elif not self.results_upload_url:
            raise InvokerConfigurationError(
                "results_upload_url is required unless skip_results_archive_upload is set"
            )
        if self.timeout is not None and self.timeout <= 0:
            raise InvokerConfigurationError("timeout must be positive")


def sandbox_args(matchspec: str, invocation: Invocation, sandbox: SandboxArgs) -> list[str]:
    """The ``wt-invokers.sandbox`` command line for this invocation (upstream's flags)."""
    config_json = compact_json(invocation.validate())
    _check_size("the config as JSON (--config-json)", config_json)
    args = [
        "--matchspec",
        matchspec,
        "--workflow-run-id",
        invocation.workflow_run_id,
        "--environment-tar-url",
        sandbox.environment_tar_url,
        *(["--environment-tar-digest", d] if (d := sandbox.environment_tar_digest) else []),
        "--results-url",
        invocation.results_url,
        "--config-json",
        config_json,
        "--execution-mode",
        invocation.execution_mode,
    ]
    if sandbox.skip_results_archive_upload:
        args.append("--dangerously-skip-results-archive-upload")
    elif sandbox.results_upload_url is not None:
        args += ["--results-upload-url", sandbox.results_upload_url]
    args.append("--mock-io" if invocation.mock_io else "--no-mock-io")
    if invocation.otel_exporter:
        args += ["--otel-exporter", invocation.otel_exporter]
    if invocation.otel_console_exporter_dst:
        args += ["--otel-console-exporter-dst", invocation.otel_console_exporter_dst]
    return args


def sandbox_env(invocation: Invocation, results_env_var: str) -> dict[str, str]:
    """The execution's environment overrides, the correlation variable included."""
    env = dict(invocation.extra_env)
    if invocation.lithops_config_text is not None:
        lithops = parse_yaml("lithops_config_text", invocation.lithops_config_text)
        env[LITHOPS_CONFIG_JSON_ENV_VAR] = compact_json(lithops)
    env[results_env_var] = invocation.results_url
    env[CORRELATION_ENV_VAR] = invocation.identity
    for name, value in env.items():
        _check_size(f"environment variable {name}", f"{name}={value}")
    return env


def build_run_job_request(
    run_v2: Any,
    target: JobTarget,
    invocation: Invocation,
    sandbox: SandboxArgs,
    *,
    matchspec: str,
    results_env_var: str,
) -> Any:
    """The ``run_v2.RunJobRequest`` that triggers this invocation's execution; pure."""
    sandbox.validate(invocation.results_url)
    args = sandbox_args(matchspec, invocation, sandbox)
    env = sandbox_env(invocation, results_env_var)
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                args=args,
                env=[run_v2.EnvVar(name=k, value=v) for k, v in sorted(env.items())],
            )
        ],
    )
    if sandbox.timeout is not None:
        # Whole seconds, rounded up: never cut a run short of its budget.
        overrides.timeout = {"seconds": math.ceil(sandbox.timeout)}
    return run_v2.RunJobRequest(name=target.name, overrides=overrides)


def _check_size(what: str, text: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_ARG_BYTES:
        raise InvokerConfigurationError(
            f"{what} is {size / 1024:.0f} KiB; Cloud Run hands it to the container as one "
            "string, and Linux refuses to start a program with a string over 128 KiB. "
            "Keep large data out of the config (read it from storage instead)."
        )
