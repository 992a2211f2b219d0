"""WorkflowRun spec → a typed :class:`RunRequest`, as pure functions.

The API server's schema and CEL rules already reject malformed objects; what
remains here is what a schema cannot say (a MatchSpec that does not parse, an
environment name reserved by an operator setting) and the one translation of
the raw ``spec`` dictionary into types, so the rest of the operator never reads
``spec[...]`` itself. Objects stored before a CRD rule existed are checked
again here (object names, env names), so an upgrade never lets them through —
but only for runs not yet admitted: a run the operator already submitted or
started is never failed by a rule that is newer than it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import yaml
from rattler import MatchSpec

from wt_invokers.cloud_batch import BatchJobOptions
from wt_operator.api import RunSpec
from wt_operator.core.errors import InvalidSpecError
from wt_operator.core.globs import glob_match
from wt_operator.reserved_env import ENV_NAME_PATTERN, reserved_reason

__all__ = [
    "BatchRequest",
    "EnvSource",
    "KeyRef",
    "RunRequest",
    "config_text_problem",
    "env_name_problem",
    "key_ref_problem",
    "parse_spec",
    "render_yaml",
]


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
    """One ``spec.env`` entry: a literal, a Secret/ConfigMap key, or a Secret Manager version."""

    name: str
    value: str | None = None
    ref: KeyRef | None = None
    gcp_secret_version: str | None = None
    """``projects/P/secrets/S/versions/V``, resolved by Cloud Batch itself."""


@dataclasses.dataclass(frozen=True)
class BatchRequest:
    """``spec.cloudBatch``: the job's resources plus where it runs (defaults not applied)."""

    options: BatchJobOptions
    project: str | None = None
    region: str | None = None
    service_account: str | None = None


@dataclasses.dataclass(frozen=True)
class EnvironmentArchive:
    """``spec.environment``: a digest-pinned pixi-pack archive a Local run starts from."""

    url: str
    digest: str


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
    otel_endpoint: str | None = None
    env: tuple[EnvSource, ...] = ()
    lithops_config_text: str | None = None
    active_deadline_seconds: int | None = None
    environment: str = "default"
    batch: BatchRequest | None = None
    archive: EnvironmentArchive | None = None
    """Local runs from a pixi-pack archive (``spec.environment``) instead of the workspace."""

    @property
    def uses_kubernetes_secrets(self) -> bool:
        return any(e.ref is not None and e.ref.kind == "Secret" for e in self.env)


def render_yaml(value: Any) -> str:
    """Render a free-form spec object as the YAML text the workflow reads."""
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True)


OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A DNS subdomain (RFC 1123), what Kubernetes requires of Secret and ConfigMap names:
no ``/``, so a name can never step out of its namespace in an API path."""

KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
"""A Secret/ConfigMap data key, as the API server requires it (``.`` and ``..`` aside)."""

_MAX_NAME = 253


def key_ref_problem(name: str, key: str) -> str | None:
    """What is wrong with a Secret/ConfigMap reference, or None.

    The same rules as the CRD's patterns, for objects stored before them.
    """
    if len(name) > _MAX_NAME or not re.fullmatch(OBJECT_NAME_PATTERN, name):
        return (
            f"name {name[:80]!r} is not a Kubernetes object name (lowercase letters, digits, "
            "'-' and '.', at most 253 characters)"
        )
    if len(key) > _MAX_NAME or not re.fullmatch(KEY_PATTERN, key) or key in (".", ".."):
        return f"key {key[:80]!r} is not a valid key (letters, digits, '-', '_' and '.')"
    return None


def env_name_problem(
    name: str, *, results_env_var: str | None = None, allowed: Sequence[str] = ()
) -> str | None:
    """Why a run author may not set ``name``, or None when they may.

    ``allowed`` is the admin's allow-list (``operator.allowedEnv`` globs): when set, only
    names it matches pass, and the reserved families still never do.
    """
    if not re.fullmatch(ENV_NAME_PATTERN, name):
        return f"{name[:80]!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
    why = reserved_reason(name, results_env_var=results_env_var)
    if why is not None:
        return why
    if allowed and not glob_match(name, allowed):
        return (
            f"{name} is not in the admin's list of names runs may set (WT_OPERATOR_ALLOWED_ENV, "
            f"chart value operator.allowedEnv: {', '.join(allowed)})"
        )
    return None


def config_text_problem(text: str) -> str | None:
    """Why config text read from a ConfigMap cannot be used, or None.

    Says where (line, column), never what: the YAML parser's own message quotes the
    text, which must not reach ``status.message`` when it came from another object.
    """
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"is not valid YAML{where}"
    return None


def _key_ref(
    kind: Literal["Secret", "ConfigMap"], raw: Mapping[str, Any], where: str, *, check: bool
) -> KeyRef:
    ref = KeyRef(
        kind=kind,
        name=str(raw["name"]),
        key=str(raw["key"]),
        optional=bool(raw.get("optional", False)),
    )
    why = key_ref_problem(ref.name, ref.key) if check else None
    if why is not None:
        raise InvalidSpecError(f"{where}: {kind} {why}; the workflow was not started")
    return ref


def _env(
    raw_env: Any, results_env_var: str | None, allowed: Sequence[str], *, check: bool
) -> tuple[EnvSource, ...]:
    out: list[EnvSource] = []
    for item in raw_env or []:
        name = str(item["name"])
        why = env_name_problem(name, results_env_var=results_env_var, allowed=allowed)
        if check and why is not None:
            raise InvalidSpecError(f"spec.env: {why}; the workflow was not started")
        value_from = item.get("valueFrom") or {}
        ref: KeyRef | None = None
        where = f"spec.env {name[:80]!r}"
        if "secretKeyRef" in value_from:
            ref = _key_ref("Secret", value_from["secretKeyRef"], where, check=check)
        elif "configMapKeyRef" in value_from:
            ref = _key_ref("ConfigMap", value_from["configMapKeyRef"], where, check=check)
        version = value_from.get("gcpSecretVersion")
        out.append(
            EnvSource(
                name=name,
                value=item.get("value"),
                ref=ref,
                gcp_secret_version=str(version) if version else None,
            )
        )
    return tuple(out)


def _batch(cb: Mapping[str, Any]) -> BatchRequest:
    if not cb.get("image"):
        raise InvalidSpecError("spec.cloudBatch.image is required when invoker is CloudBatch")
    gpu = cb.get("gpu") or {}
    net = cb.get("network") or {}
    defaults = BatchJobOptions()
    options = BatchJobOptions(
        docker_image_uri=str(cb["image"]),
        cpu_milli=int(cb.get("cpuMilli") or defaults.cpu_milli),
        memory_mib=int(cb.get("memoryMib") or defaults.memory_mib),
        machine_type=cb.get("machineType") or None,
        gpu_type=gpu.get("type") or None,
        gpu_count=int(gpu.get("count", defaults.gpu_count)),
        network=net.get("network") or None,
        subnetwork=net.get("subnetwork") or None,
        no_external_ip=bool(net.get("noExternalIp", False)),
        labels=dict(cb.get("labels") or {}),
    )
    return BatchRequest(
        options=options,
        project=cb.get("project") or None,
        region=cb.get("region") or None,
        service_account=cb.get("serviceAccount") or None,
    )


def parse_spec(
    spec: RunSpec | Mapping[str, Any],
    *,
    uid: str,
    results_env_var: str | None = None,
    allowed_env: Sequence[str] = (),
    admitted: bool = False,
) -> RunRequest:
    """Validate what the schema cannot and build a :class:`RunRequest`.

    ``results_env_var`` is the variable carrying the results URL, refused in ``env``;
    ``allowed_env`` the admin's allow-list of env names. ``admitted``: the run was
    already submitted or started, so the name rules (which an upgrade may have made
    stricter) are not applied again — it is tracked to its end, never failed by them.

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
        config_ref = _key_ref(
            "ConfigMap",
            spec["configFrom"]["configMapKeyRef"],
            "spec.configFrom",
            check=not admitted,
        )
    else:
        config_text = render_yaml(spec.get("config") or {})

    archive = _archive(spec.get("environment"), invoker)
    env = _env(spec.get("env"), results_env_var, allowed_env, check=not admitted)
    if invoker == "Local" and any(e.gcp_secret_version for e in env):
        raise InvalidSpecError(
            "spec.env: valueFrom.gcpSecretVersion works only with invoker CloudBatch"
        )
    lithops = spec.get("lithopsConfig")
    otel = spec.get("otel") or {}
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
        otel_endpoint=otel.get("endpoint"),
        env=env,
        lithops_config_text=render_yaml(lithops) if lithops else None,
        active_deadline_seconds=int(deadline) if deadline is not None else None,
        environment=str((spec.get("local") or {}).get("environment", "default")),
        batch=_batch(spec.get("cloudBatch") or {}) if invoker == "CloudBatch" else None,
        archive=archive,
    )


_ARCHIVE_URL = re.compile(r"^https?://\S+$")
_ARCHIVE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _archive(raw: Any, invoker: str) -> EnvironmentArchive | None:
    # Checked again here (the CRD checks at apply): a stored object predates no schema.
    if not raw:
        return None
    if invoker != "Local":
        raise InvalidSpecError("spec.environment (an archive) works only with invoker Local")
    url, digest = str(raw.get("archiveUrl", "")), str(raw.get("archiveDigest", ""))
    if not _ARCHIVE_URL.match(url) or len(url) > 2048:
        raise InvalidSpecError("spec.environment.archiveUrl must be an http:// or https:// URL")
    if not _ARCHIVE_DIGEST.match(digest):
        raise InvalidSpecError(
            "spec.environment.archiveDigest must be sha256:<64 lowercase hex digits>"
        )
    return EnvironmentArchive(url=url, digest=digest)
