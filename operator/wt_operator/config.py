"""Operator settings, read from the environment once at start-up.

One frozen dataclass so every knob is visible in one place with the reason for
its default, and so handlers receive settings as a value instead of reading
``os.environ`` at random moments. The variable names the library reads itself
(workspace, results variable, GCP defaults) are imported from it, not retyped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, TypeVar

from wt_invokers.abstract import DEFAULT_RESULTS_ENV_VAR, RESULTS_ENV_VAR_SETTING
from wt_invokers.cloud_batch import (
    BATCH_EMULATOR_HOST_ENV_VAR,
    BATCH_SERVICE_ACCOUNT_ENV_VAR,
    CLOUD_RUN_REGION_ENV_VAR,
    DEFAULT_REGION,
    GOOGLE_CLOUD_PROJECT_ENV_VAR,
)
from wt_invokers.cloud_run_jobs import CLOUD_RUN_EMULATOR_HOST_ENV_VAR
from wt_invokers.local import CWD_ENV_VAR
from wt_operator.core.masking import SecretBudget
from wt_operator.core.policy import BatchDefaults, BatchPolicy, CloudRunPolicy
from wt_operator.reserved_env import ENV_NAME_PATTERN

__all__ = ["ConfigError", "OperatorConfig"]

N = TypeVar("N", int, float)


class ConfigError(ValueError):
    """An operator setting has a value that cannot be used; raised at start-up, never later."""


def _number(
    env: Mapping[str, str], key: str, default: N, kind: Callable[[str], N], minimum: N
) -> N:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        noun = "whole number" if kind is int else "number"
        raise ConfigError(f"{key}={raw!r} is not a {noun}") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r} must be at least {minimum}")
    return value


def _opt(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key, "").strip()
    return value or None


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{key}={raw!r}: use true or false")


def _list(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(key, "").split(",") if item.strip())


def _env_map(env: Mapping[str, str], key: str) -> dict[str, str]:
    raw = env.get(key, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{key} is not JSON (an object of variable names to values)") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a JSON object of variable names to values")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not re.fullmatch(ENV_NAME_PATTERN, name) or not isinstance(item, str) or "\0" in item:
            raise ConfigError(f"{key}: {name[:80]!r} needs a variable name and a string value")
        out[name] = item
    return out


def _root(env: Mapping[str, str], key: str) -> Path | None:
    raw = _opt(env, key)
    if raw is None:
        return None
    if not os.path.isabs(raw):
        raise ConfigError(f"{key}={raw!r} must be an absolute path")
    return Path(os.path.normpath(raw))


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator can be told through its environment."""

    workspace: Path
    """The pixi workspace local runs execute in (``WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD``,
    default the current directory) — the same variable the library reads."""

    local_enabled: bool = True
    """Whether Local runs may run at all (``WT_OPERATOR_LOCAL_ENABLED``). They execute in the
    operator pod with its identity; multi-tenant clusters may allow only CloudBatch."""

    local_launcher: Literal["pixi", "prefix"] = "prefix"
    """``prefix`` activates the environment with py-rattler and execs the workflow directly
    (no pixi binary, works on a read-only root); ``pixi`` runs ``pixi run --frozen -e ENV
    NAME`` as the seed does (``WT_OPERATOR_LOCAL_LAUNCHER``)."""

    max_concurrent_local_runs: int = 4
    """Local runs share the operator pod's CPU and memory, so only this many run at once;
    the rest wait in phase ``Queued`` (``WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS``)."""

    kill_grace_seconds: float = 10.0
    """Between SIGTERM and SIGKILL when a local run is cancelled or times out; the chart's
    terminationGracePeriodSeconds is longer (``WT_OPERATOR_KILL_GRACE_SECONDS``)."""

    allowed_env: tuple[str, ...] = ()
    """The only ``spec.env`` names runs may set, as ``*`` globs (``WT_OPERATOR_ALLOWED_ENV``,
    comma-separated; chart value ``operator.allowedEnv``). Unset: any name outside the
    reserved families. A deny-list of families stays one family short; this is the
    allow-list for clusters that want none of that risk. Reserved names never pass."""

    workflow_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Variables the admin gives every Local workflow (``WT_OPERATOR_WORKFLOW_ENV``, a JSON
    object, e.g. ``{"HTTPS_PROXY": "http://proxy:3128"}``; chart value
    ``operator.workflowEnv``). A workflow starts from a minimal environment, never the
    operator's own, so a proxy or CA bundle the workflows need is given here."""

    allowed_archive_urls: tuple[str, ...] = ()
    """Where Local runs may take a pixi-pack environment archive from (``spec.environment``),
    as ``*`` globs of the URL (``WT_OPERATOR_ALLOWED_ARCHIVE_URLS``, comma-separated; chart
    value ``operator.allowedArchiveUrls``). Unset: none — such runs are ``PolicyDenied``. An
    archive is code the run author chooses, run where Local workflows run, and its download
    is a request from the operator's network position; so only the admin's sources count."""

    local_results_root: Path | None = None
    """The directory ``file://`` (and plain path) results must lie under
    (``WT_OPERATOR_LOCAL_RESULTS_ROOT``; the chart sets it to its results volume). Unset:
    anywhere the operator can write, for development and tests; a run writing to another
    path is ``PolicyDenied``."""

    batch_poll_interval: float = 30.0
    """How often a submitted Batch job's state is read. Batch jobs run for minutes to hours,
    so 30 s keeps the API cost negligible (``WT_OPERATOR_BATCH_POLL_INTERVAL``)."""

    batch_defaults: BatchDefaults = dataclasses.field(default_factory=BatchDefaults)
    """Project, region and service account of CloudBatch runs that name none
    (``GOOGLE_CLOUD_PROJECT``, ``CLOUD_RUN_REGION``, ``BATCH_SERVICE_ACCOUNT``)."""

    batch_policy: BatchPolicy = dataclasses.field(default_factory=BatchPolicy)
    """What CloudBatch runs may use (``WT_OPERATOR_BATCH_ALLOWED_PROJECTS``,
    ``_SERVICE_ACCOUNTS``, ``_IMAGES``: comma-separated ``*`` globs, unset = anything) and
    whether Kubernetes Secret values may be copied into a job
    (``WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS``, default false)."""

    batch_emulator_host: str | None = None
    """``host:port`` of a Batch emulator (insecure gRPC) instead of Google, for tests and
    demos (``BATCH_EMULATOR_HOST``)."""

    cloud_run_policy: CloudRunPolicy = dataclasses.field(default_factory=CloudRunPolicy)
    """Which pre-deployed Cloud Run Jobs CloudRunJob runs may trigger, and in which projects
    (``WT_OPERATOR_CLOUD_RUN_ALLOWED_JOBS``, ``_PROJECTS``: comma-separated ``*`` globs, unset =
    any). Their project and region default to the Batch ones above; their executions are
    polled every ``batch_poll_interval``."""

    cloud_run_emulator_host: str | None = None
    """``host:port`` of a Cloud Run emulator (insecure gRPC) instead of Google, for tests and
    demos (``CLOUD_RUN_EMULATOR_HOST``)."""

    results_env_var: str = DEFAULT_RESULTS_ENV_VAR
    """The variable that carries resultsUrl to workflows (``WT_INVOKERS__RESULTS_ENV_VAR``);
    run authors may not set it through spec.env."""

    log_tail_lines: int = 20
    """How many of a failed run's last output lines go into ``status.message``; enough to
    see the error, small enough to keep the object light (``WT_OPERATOR_LOG_TAIL_LINES``)."""

    log_max_bytes: int = 512 * 1024
    """Most bytes of a Local run's output kept in its log ConfigMap (the start and the end
    are kept, the middle is cut); the API server refuses objects near 1 MiB
    (``WT_OPERATOR_LOG_MAX_BYTES``, 0 = store no output)."""

    log_flush_seconds: float = 5.0
    """How often the log ConfigMap of a running Local run is updated while output arrives
    (``WT_OPERATOR_LOG_FLUSH_SECONDS``): what ``kubectl wt logs -f`` lags behind."""

    secret_max_bytes: int = 64 * 1024
    """Most bytes of Secret values one run may reference in total
    (``WT_OPERATOR_SECRET_MAX_BYTES``); above it the run ends ``InvalidSpec``. Every form of
    every line is masked in the run's output, and building that masker costs CPU and memory
    in proportion (measured: about a second and 5 MB for 42 KB in 1,024 lines); credentials
    are a few KB."""

    secret_max_lines: int = 1024
    """Most lines of Secret values one run may reference in total
    (``WT_OPERATOR_SECRET_MAX_LINES``); above it the run ends ``InvalidSpec``."""

    ttl_seconds_after_finished: int | None = None
    """Default ``spec.ttlSecondsAfterFinished`` (``WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED``;
    unset = keep finished runs). Never applied to runs a GitOps tool manages."""

    metrics_port: int = 9090
    """Port of the Prometheus ``/metrics`` endpoint; 0 turns it off
    (``WT_OPERATOR_METRICS_PORT``)."""

    health_port: int = 8080
    """Port of the liveness endpoint ``/healthz``; 0 turns it off (``WT_OPERATOR_HEALTH_PORT``)."""

    retry_backoff_max: float = 60.0
    """Cap of the exponential backoff when the Kubernetes or Batch API fails transiently,
    and of the pause before kopf retries a step that gave up (a run saying ``Retrying``)
    (``WT_OPERATOR_RETRY_BACKOFF_MAX``)."""

    runner_socket: Path | None = None
    """The unix socket of the runner (``wt-runner``) that runs Local workflows in another
    container and uid (``WT_OPERATOR_RUNNER_SOCKET``). Unset (development, tests outside a
    pod), Local workflows run as children of this process."""

    runner_timeout: float = 30.0
    """How long the operator waits for the runner to accept a connection, answer a request
    or come back after a dropped connection before the run fails (``StartFailed`` before it
    started, ``InvokerLost`` after) (``WT_OPERATOR_RUNNER_TIMEOUT``)."""

    def secret_budget(self) -> SecretBudget:
        """A fresh count of one run's Secret text against the caps."""
        return SecretBudget(max_bytes=self.secret_max_bytes, max_lines=self.secret_max_lines)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """Read and validate all settings; a bad value fails start-up with its variable named."""
        e = os.environ if env is None else env
        d = cls(workspace=Path())  # the defaults are the fields' own, stated once above
        raw_launcher = e.get("WT_OPERATOR_LOCAL_LAUNCHER", "").strip() or d.local_launcher
        if raw_launcher not in ("pixi", "prefix"):
            raise ConfigError(
                f"WT_OPERATOR_LOCAL_LAUNCHER={raw_launcher!r}: use 'prefix' or 'pixi'"
            )
        launcher: Literal["pixi", "prefix"] = "pixi" if raw_launcher == "pixi" else "prefix"
        ttl_key = "WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED"
        log_max = _number(e, "WT_OPERATOR_LOG_MAX_BYTES", d.log_max_bytes, int, 0)
        if log_max > 900 * 1024:
            raise ConfigError(
                f"WT_OPERATOR_LOG_MAX_BYTES={log_max}: at most 921600 (a ConfigMap must stay "
                "under the API server's 1 MiB object limit)"
            )
        return cls(
            workspace=Path(e.get(CWD_ENV_VAR) or os.getcwd()),
            local_enabled=_bool(e, "WT_OPERATOR_LOCAL_ENABLED", d.local_enabled),
            local_launcher=launcher,
            max_concurrent_local_runs=_number(
                e, "WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS", d.max_concurrent_local_runs, int, 1
            ),
            kill_grace_seconds=_number(
                e, "WT_OPERATOR_KILL_GRACE_SECONDS", d.kill_grace_seconds, float, 0.0
            ),
            allowed_env=_list(e, "WT_OPERATOR_ALLOWED_ENV"),
            workflow_env=_env_map(e, "WT_OPERATOR_WORKFLOW_ENV"),
            allowed_archive_urls=_list(e, "WT_OPERATOR_ALLOWED_ARCHIVE_URLS"),
            local_results_root=_root(e, "WT_OPERATOR_LOCAL_RESULTS_ROOT"),
            batch_poll_interval=_number(
                e, "WT_OPERATOR_BATCH_POLL_INTERVAL", d.batch_poll_interval, float, 0.05
            ),
            batch_defaults=BatchDefaults(
                project=_opt(e, GOOGLE_CLOUD_PROJECT_ENV_VAR),
                region=_opt(e, CLOUD_RUN_REGION_ENV_VAR) or DEFAULT_REGION,
                service_account=_opt(e, BATCH_SERVICE_ACCOUNT_ENV_VAR),
            ),
            batch_policy=BatchPolicy(
                allowed_projects=_list(e, "WT_OPERATOR_BATCH_ALLOWED_PROJECTS"),
                allowed_service_accounts=_list(e, "WT_OPERATOR_BATCH_ALLOWED_SERVICE_ACCOUNTS"),
                allowed_images=_list(e, "WT_OPERATOR_BATCH_ALLOWED_IMAGES"),
                allowed_results_buckets=_list(e, "WT_OPERATOR_BATCH_ALLOWED_RESULTS_BUCKETS"),
                allow_plaintext_secrets=_bool(
                    e, "WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS", False
                ),
            ),
            batch_emulator_host=_opt(e, BATCH_EMULATOR_HOST_ENV_VAR),
            cloud_run_policy=CloudRunPolicy(
                allowed_jobs=_list(e, "WT_OPERATOR_CLOUD_RUN_ALLOWED_JOBS"),
                allowed_projects=_list(e, "WT_OPERATOR_CLOUD_RUN_ALLOWED_PROJECTS"),
            ),
            cloud_run_emulator_host=_opt(e, CLOUD_RUN_EMULATOR_HOST_ENV_VAR),
            results_env_var=_opt(e, RESULTS_ENV_VAR_SETTING) or DEFAULT_RESULTS_ENV_VAR,
            log_tail_lines=_number(e, "WT_OPERATOR_LOG_TAIL_LINES", d.log_tail_lines, int, 0),
            log_max_bytes=log_max,
            log_flush_seconds=_number(
                e, "WT_OPERATOR_LOG_FLUSH_SECONDS", d.log_flush_seconds, float, 0.1
            ),
            secret_max_bytes=_number(e, "WT_OPERATOR_SECRET_MAX_BYTES", d.secret_max_bytes, int, 1),
            secret_max_lines=_number(e, "WT_OPERATOR_SECRET_MAX_LINES", d.secret_max_lines, int, 1),
            ttl_seconds_after_finished=(
                _number(e, ttl_key, 0, int, 0) if _opt(e, ttl_key) is not None else None
            ),
            metrics_port=_number(e, "WT_OPERATOR_METRICS_PORT", d.metrics_port, int, 0),
            health_port=_number(e, "WT_OPERATOR_HEALTH_PORT", d.health_port, int, 0),
            retry_backoff_max=_number(
                e, "WT_OPERATOR_RETRY_BACKOFF_MAX", d.retry_backoff_max, float, 0.1
            ),
            runner_socket=(
                Path(raw_socket) if (raw_socket := _opt(e, "WT_OPERATOR_RUNNER_SOCKET")) else None
            ),
            runner_timeout=_number(e, "WT_OPERATOR_RUNNER_TIMEOUT", d.runner_timeout, float, 0.1),
        )
