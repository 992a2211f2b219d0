"""WorkflowRun spec → invoker arguments, as pure functions.

The API server's schema already rejects malformed objects; what remains here is
what a schema cannot say (a MatchSpec that does not parse, YAML rendering) and
the translation into the exact keyword arguments the invokers take, so it can
be unit-tested without a cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

import yaml
from rattler import MatchSpec

__all__ = [
    "BatchOptions",
    "EnvSource",
    "InvalidSpecError",
    "KeyRef",
    "RunRequest",
    "batch_run_kwargs",
    "parse_spec",
    "render_yaml",
    "run_kwargs",
]


class InvalidSpecError(ValueError):
    """The spec passed the schema but cannot be run as written; the run fails with InvalidSpec."""


class _KeyRefDict(TypedDict, total=False):
    name: str
    key: str
    optional: bool


@dataclasses.dataclass(frozen=True)
class KeyRef:
    """A reference to one key of a Secret or ConfigMap in the run's namespace."""

    kind: Literal["Secret", "ConfigMap"]
    name: str
    key: str
    optional: bool = False

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} key {self.key!r}"


@dataclasses.dataclass(frozen=True)
class EnvSource:
    """One ``spec.env`` entry: a literal value or a reference resolved at start."""

    name: str
    value: str | None = None
    ref: KeyRef | None = None


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """``spec.cloudBatch`` with the operator's defaults not yet applied."""

    image: str
    cpu_milli: int | None = None
    memory_mib: int | None = None
    machine_type: str | None = None
    gpu_type: str | None = None
    gpu_count: int = 1
    network: str | None = None
    subnetwork: str | None = None
    no_external_ip: bool = False
    project: str | None = None
    region: str | None = None
    service_account: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """Everything a run needs, parsed from the spec; references are still unresolved."""

    workflow: str
    invoker: Literal["Local", "CloudBatch"]
    workflow_run_id: str
    results_url: str
    execution_mode: str = "sequential"
    mock_io: bool = False
    config_text: str | None = None
    """The YAML config; None when it comes from ``config_ref`` (read at start)."""
    config_ref: KeyRef | None = None
    otel_exporter: str | None = None
    otel_console_exporter_dst: str | None = None
    env: tuple[EnvSource, ...] = ()
    lithops_config_text: str | None = None
    active_deadline_seconds: int | None = None
    environment: str = "default"
    batch: BatchOptions | None = None


def render_yaml(value: Any) -> str:
    """Render a free-form spec object as the YAML text the workflow reads."""
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _key_ref(kind: Literal["Secret", "ConfigMap"], raw: Mapping[str, Any]) -> KeyRef:
    return KeyRef(
        kind=kind,
        name=str(raw["name"]),
        key=str(raw["key"]),
        optional=bool(raw.get("optional", False)),
    )


def _env(raw_env: Any) -> tuple[EnvSource, ...]:
    out: list[EnvSource] = []
    for item in raw_env or []:
        value_from = item.get("valueFrom")
        ref: KeyRef | None = None
        if value_from:
            if "secretKeyRef" in value_from:
                ref = _key_ref("Secret", value_from["secretKeyRef"])
            elif "configMapKeyRef" in value_from:
                ref = _key_ref("ConfigMap", value_from["configMapKeyRef"])
        out.append(EnvSource(name=str(item["name"]), value=item.get("value"), ref=ref))
    return tuple(out)


def parse_spec(spec: Mapping[str, Any], *, uid: str) -> RunRequest:
    """Validate what the schema cannot and build a :class:`RunRequest`.

    Raises:
        InvalidSpecError: with a message meant for ``status.message``.
    """
    workflow = str(spec.get("workflow", "")).strip()
    try:
        matchspec = MatchSpec(workflow)
    except Exception as exc:  # rattler's InvalidMatchSpecError
        raise InvalidSpecError(
            f"spec.workflow {workflow!r} is not a valid MatchSpec: {exc}"
        ) from exc
    if matchspec.name is None:
        raise InvalidSpecError(f"spec.workflow {workflow!r} names no package")
    invoker = spec.get("invoker")
    if invoker not in ("Local", "CloudBatch"):
        raise InvalidSpecError(f"spec.invoker {invoker!r} must be Local or CloudBatch")

    config_text: str | None = None
    config_ref: KeyRef | None = None
    if spec.get("configFrom"):
        config_ref = _key_ref("ConfigMap", spec["configFrom"]["configMapKeyRef"])
    else:
        config_text = render_yaml(spec.get("config") or {})

    lithops = spec.get("lithopsConfig")
    otel = spec.get("otel") or {}
    batch: BatchOptions | None = None
    if invoker == "CloudBatch":
        cb = spec.get("cloudBatch") or {}
        if not cb.get("image"):
            raise InvalidSpecError("spec.cloudBatch.image is required when invoker is CloudBatch")
        gpu = cb.get("gpu") or {}
        net = cb.get("network") or {}
        batch = BatchOptions(
            image=str(cb["image"]),
            cpu_milli=cb.get("cpuMilli"),
            memory_mib=cb.get("memoryMib"),
            machine_type=cb.get("machineType"),
            gpu_type=gpu.get("type"),
            gpu_count=int(gpu.get("count", 1)),
            network=net.get("network"),
            subnetwork=net.get("subnetwork"),
            no_external_ip=bool(net.get("noExternalIp", False)),
            project=cb.get("project"),
            region=cb.get("region"),
            service_account=cb.get("serviceAccount"),
            labels=dict(cb.get("labels") or {}),
        )
    deadline = spec.get("activeDeadlineSeconds")
    return RunRequest(
        workflow=workflow,
        invoker=invoker,
        workflow_run_id=str(spec.get("workflowRunId") or uid),
        results_url=str(spec["resultsUrl"]),
        execution_mode=str(spec.get("executionMode", "sequential")),
        mock_io=bool(spec.get("mockIo", False)),
        config_text=config_text,
        config_ref=config_ref,
        otel_exporter=otel.get("exporter"),
        otel_console_exporter_dst=otel.get("consoleExporterDst"),
        env=_env(spec.get("env")),
        lithops_config_text=render_yaml(lithops) if lithops else None,
        active_deadline_seconds=int(deadline) if deadline is not None else None,
        environment=str((spec.get("local") or {}).get("environment", "default")),
        batch=batch,
    )


def run_kwargs(
    req: RunRequest, *, config_text: str, extra_env: Mapping[str, str]
) -> dict[str, Any]:
    """The keyword arguments of ``AbstractInvoker.run`` common to both invokers."""
    return {
        "workflow_run_id": req.workflow_run_id,
        "config_text": config_text,
        "results_url": req.results_url,
        "execution_mode": req.execution_mode,
        "mock_io": req.mock_io,
        "otel_exporter": req.otel_exporter,
        "otel_console_exporter_dst": req.otel_console_exporter_dst,
        "extra_env": dict(extra_env),
        "lithops_config_text": req.lithops_config_text,
    }


def batch_run_kwargs(opts: BatchOptions, *, timeout: float | None) -> dict[str, Any]:
    """The CloudBatch-only keyword arguments of ``CloudBatchInvoker.run``.

    ``timeout`` becomes the task's max_run_duration so Batch itself enforces the
    deadline even while the operator is down.
    """
    kwargs: dict[str, Any] = {"docker_image_uri": opts.image, "no_external_ip": opts.no_external_ip}
    if opts.cpu_milli is not None:
        kwargs["cpu_milli"] = opts.cpu_milli
    if opts.memory_mib is not None:
        kwargs["memory_mib"] = opts.memory_mib
    if opts.machine_type:
        kwargs["machine_type"] = opts.machine_type
    if opts.gpu_type:
        kwargs["gpu_type"] = opts.gpu_type
        kwargs["gpu_count"] = opts.gpu_count
    if opts.network:
        kwargs["network"] = opts.network
    if opts.subnetwork:
        kwargs["subnetwork"] = opts.subnetwork
    if opts.labels:
        kwargs["labels"] = dict(opts.labels)
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs
