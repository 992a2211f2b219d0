"""Operator settings, read from the environment once at start-up.

One frozen dataclass so every knob is visible in one place with the reason for
its default, and so handlers receive settings as a value instead of reading
``os.environ`` at random moments.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

__all__ = ["ConfigError", "OperatorConfig"]


class ConfigError(ValueError):
    """An operator setting has a value that cannot be used; raised at start-up, never later."""


def _float(env: Mapping[str, str], key: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r} must be at least {minimum}")
    return value


def _int(env: Mapping[str, str], key: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r} must be at least {minimum}")
    return value


def _opt(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key, "").strip()
    return value or None


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator can be told through its environment."""

    workspace: Path
    """The pixi workspace local runs execute in (``WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD``,
    default the current directory) — the same variable the library reads."""

    local_launcher: Literal["pixi", "prefix"] = "pixi"
    """``pixi`` runs ``pixi run -e ENV NAME`` as the seed does; ``prefix`` activates the
    environment with py-rattler and execs the workflow directly, for images without pixi
    (``WT_OPERATOR_LOCAL_LAUNCHER``)."""

    max_concurrent_local_runs: int = 4
    """Local runs share the operator pod's CPU and memory, so only this many run at once;
    the rest wait in phase ``Queued`` (``WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS``)."""

    kill_grace_seconds: float = 10.0
    """Between SIGTERM and SIGKILL when a local run is cancelled or times out; the chart's
    terminationGracePeriodSeconds is longer (``WT_OPERATOR_KILL_GRACE_SECONDS``)."""

    batch_poll_interval: float = 30.0
    """How often a submitted Batch job's state is read. Batch jobs run for minutes to hours,
    so 30 s keeps the API cost negligible (``WT_OPERATOR_BATCH_POLL_INTERVAL``)."""

    google_cloud_project: str | None = None
    """Default GCP project for CloudBatch runs (``GOOGLE_CLOUD_PROJECT``)."""

    cloud_run_region: str = "us-central1"
    """Default Batch region (``CLOUD_RUN_REGION``), the library's default too."""

    batch_service_account: str | None = None
    """Default service-account email Batch jobs run as (``BATCH_SERVICE_ACCOUNT``)."""

    batch_emulator_host: str | None = None
    """``host:port`` of a Batch emulator (insecure gRPC) instead of Google, for tests and
    demos (``BATCH_EMULATOR_HOST``)."""

    log_tail_lines: int = 20
    """How many of a failed run's last output lines go into ``status.message``; enough to
    see the error, small enough to keep the object light (``WT_OPERATOR_LOG_TAIL_LINES``)."""

    metrics_port: int = 9090
    """Port of the Prometheus ``/metrics`` endpoint; 0 turns it off
    (``WT_OPERATOR_METRICS_PORT``)."""

    health_port: int = 8080
    """Port of the liveness endpoint ``/healthz``; 0 turns it off (``WT_OPERATOR_HEALTH_PORT``)."""

    retry_backoff_max: float = 60.0
    """Cap of the exponential backoff when the Kubernetes or Batch API fails transiently
    (``WT_OPERATOR_RETRY_BACKOFF_MAX``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """Read and validate all settings; a bad value fails start-up with its variable named."""
        e = os.environ if env is None else env
        raw_launcher = e.get("WT_OPERATOR_LOCAL_LAUNCHER", "pixi") or "pixi"
        if raw_launcher == "pixi":
            launcher: Literal["pixi", "prefix"] = "pixi"
        elif raw_launcher == "prefix":
            launcher = "prefix"
        else:
            raise ConfigError(
                f"WT_OPERATOR_LOCAL_LAUNCHER={raw_launcher!r}: use 'pixi' or 'prefix'"
            )
        workspace = e.get("WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD") or os.getcwd()
        return cls(
            workspace=Path(workspace),
            local_launcher=launcher,
            max_concurrent_local_runs=_int(
                e, "WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS", 4, minimum=1
            ),
            kill_grace_seconds=_float(e, "WT_OPERATOR_KILL_GRACE_SECONDS", 10.0),
            batch_poll_interval=_float(e, "WT_OPERATOR_BATCH_POLL_INTERVAL", 30.0, minimum=0.05),
            google_cloud_project=_opt(e, "GOOGLE_CLOUD_PROJECT"),
            cloud_run_region=_opt(e, "CLOUD_RUN_REGION") or "us-central1",
            batch_service_account=_opt(e, "BATCH_SERVICE_ACCOUNT"),
            batch_emulator_host=_opt(e, "BATCH_EMULATOR_HOST"),
            log_tail_lines=_int(e, "WT_OPERATOR_LOG_TAIL_LINES", 20, minimum=0),
            metrics_port=_int(e, "WT_OPERATOR_METRICS_PORT", 9090),
            health_port=_int(e, "WT_OPERATOR_HEALTH_PORT", 8080),
            retry_backoff_max=_float(e, "WT_OPERATOR_RETRY_BACKOFF_MAX", 60.0, minimum=0.1),
        )
