"""The WorkflowRun API as Python sees it: names, phases, reasons and payload shapes.

Exists so every module (the operator, the kubectl plugin, tests, benchmarks)
spells the API the same way: one place for the group/version/plural, the
finalizer and label keys, the name of a run's log ConfigMap, and ``TypedDict``
shapes of the raw ``spec``/``status`` dictionaries the API server sends.

Import-light on purpose (standard library only): the kubectl plugin imports it.
"""

from __future__ import annotations

import enum
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "ANNOTATION_LOG_BYTES",
    "ANNOTATION_LOG_COMPLETE",
    "ANNOTATION_LOG_TRUNCATED",
    "ANNOTATION_LOG_WRITER",
    "ANNOTATION_PREVIOUS_SCHEDULED_TIME",
    "ANNOTATION_RERUN_OF",
    "ANNOTATION_SCHEDULED_TIME",
    "ANNOTATION_TRIGGER",
    "API_VERSION",
    "ARGO_TRACKING_LABEL",
    "FINALIZER",
    "GITOPS_MARKERS",
    "GROUP",
    "HELM_RELEASE_ANNOTATION",
    "KIND",
    "LABEL_RUN_NAME",
    "LABEL_RUN_UID",
    "LABEL_SCHEDULE",
    "LOG_CONFIGMAP_PREFIX",
    "LOG_KEY",
    "OTLP_ENDPOINT_ENV_VAR",
    "PEERING_NAME",
    "PLURAL",
    "PREVIOUS_SCHEDULED_TIME_ENV_VAR",
    "SCHEDULED_TIME_ENV_VAR",
    "SCHEDULE_KIND",
    "SCHEDULE_PLURAL",
    "TERMINAL_PHASES",
    "TRACEPARENT_ENV_VAR",
    "VERSION",
    "CloudBatchSpec",
    "CloudBatchStatus",
    "CloudRunSpec",
    "CloudRunStatus",
    "ConditionDict",
    "EnvVarDict",
    "KeyRefDict",
    "LogStatus",
    "Phase",
    "Reason",
    "RunSpec",
    "RunStatus",
    "human_duration",
    "log_configmap_name",
    "schedule_run_body",
]

GROUP = "wt.dev"
VERSION = "v1alpha1"
PLURAL = "workflowruns"
KIND = "WorkflowRun"
API_VERSION = f"{GROUP}/{VERSION}"

TRACEPARENT_ENV_VAR = "TRACEPARENT"
"""Set for every workflow: a W3C traceparent whose trace id is the run's uid."""
OTLP_ENDPOINT_ENV_VAR = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""Set for the workflow from ``spec.otel.endpoint``."""

PEERING_NAME = "wt-operator"
"""The KopfPeering / ClusterKopfPeering replicas meet in (the chart creates it)."""

FINALIZER = "wt.dev/finalizer"
"""Held while a run is active, so deleting it first stops its process tree or Batch job."""

LABEL_RUN_UID = "wt.dev/run-uid"
"""On objects the operator creates for a run (its log ConfigMap): the run's metadata.uid."""
LABEL_RUN_NAME = "wt.dev/run-name"
"""On objects the operator creates for a run: the run's name (cut to 63 characters)."""

GITOPS_MARKERS: tuple[tuple[Literal["annotation", "label"], str, str], ...] = (
    ("annotation", "argocd.argoproj.io/tracking-id", "Argo CD"),
    ("label", "argocd.argoproj.io/instance", "Argo CD"),
    ("label", "kustomize.toolkit.fluxcd.io/name", "Flux"),
    ("label", "helm.toolkit.fluxcd.io/name", "Flux"),
)
"""How a run managed by a GitOps tool is recognised: (where, key, tool). Such a tool
re-creates a deleted run, which would then run again, so the operator-wide default TTL
never deletes one (the chart's gitopsGuard policy mirrors this list)."""

ARGO_TRACKING_LABEL = "app.kubernetes.io/instance"
"""Argo CD's tracking label (its default before 3.0). Helm sets it too, on everything it
installs, so alone it marks nothing: it counts only on an object Helm did not install
(no :data:`HELM_RELEASE_ANNOTATION`), where it can only be Argo CD's."""

HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"
"""Set by ``helm install/upgrade`` on every object of a release (never by ``helm template``,
which Argo CD uses): Helm re-creates nothing on its own, so such a run is not GitOps-managed."""

SCHEDULE_PLURAL = "workflowschedules"
SCHEDULE_KIND = "WorkflowSchedule"

LABEL_SCHEDULE = "wt.dev/schedule"
"""On each run a WorkflowSchedule created: the schedule's name (selects its history)."""
ANNOTATION_SCHEDULED_TIME = "wt.dev/scheduled-time"
"""On each run of a schedule: its slot, RFC 3339 in the schedule's zone (for a manual
run, when it was triggered). The workflow gets it as :data:`SCHEDULED_TIME_ENV_VAR`."""
ANNOTATION_PREVIOUS_SCHEDULED_TIME = "wt.dev/previous-scheduled-time"
"""On each run of a schedule: the slot before its own, so the run's reporting window is
``[previous, scheduled)``. The workflow gets it as :data:`PREVIOUS_SCHEDULED_TIME_ENV_VAR`."""
ANNOTATION_TRIGGER = "wt.dev/trigger"
"""On each run of a schedule: ``schedule`` (a slot) or ``manual`` (``kubectl wt trigger``)."""
SCHEDULED_TIME_ENV_VAR = "WT_SCHEDULED_TIME"
PREVIOUS_SCHEDULED_TIME_ENV_VAR = "WT_PREVIOUS_SCHEDULED_TIME"

ANNOTATION_RERUN_OF = "wt.dev/rerun-of"
"""Set by ``kubectl wt rerun`` on the new run: the name of the run it repeats."""

LOG_KEY = "output"
"""Key of a log ConfigMap holding the run's (masked) output."""
ANNOTATION_LOG_COMPLETE = "wt.dev/log-complete"
"""``"true"`` once the run ended and its log will not change any more."""
ANNOTATION_LOG_BYTES = "wt.dev/log-bytes"
"""How many bytes of output the workflow wrote in all (more than stored when truncated)."""
ANNOTATION_LOG_TRUNCATED = "wt.dev/log-truncated"
"""``"true"`` when the middle of the output was cut to respect the size limit."""


def schedule_run_body(
    schedule: dict[str, Any],
    *,
    scheduled: str,
    previous: str | None,
    trigger: Literal["schedule", "manual"],
    name: str | None = None,
    generate_name: str | None = None,
) -> dict[str, Any]:
    """The WorkflowRun a WorkflowSchedule starts (at a slot, or by ``kubectl wt trigger``).

    One builder for the operator and the plugin, so a manual run is the same as a
    scheduled one: the template's labels and annotations, the schedule's label, the
    reporting window as annotations (RFC 3339 strings, in the schedule's zone), and the
    schedule as controlling owner (deleted with it, listed as its history).
    """
    meta = schedule["metadata"]
    template = schedule["spec"]["runTemplate"]
    tmeta = template.get("metadata") or {}
    # A GitOps tool's tracking marker copied onto a run would make the tool prune it (it is
    # not in Git) and the chart's gitopsGuard refuse its TTL: runs belong to the schedule.
    markers = {key for _, key, _ in GITOPS_MARKERS} | {ARGO_TRACKING_LABEL}
    labels = {k: v for k, v in (tmeta.get("labels") or {}).items() if k not in markers}
    annotations = {
        **{k: v for k, v in (tmeta.get("annotations") or {}).items() if k not in markers},
        ANNOTATION_SCHEDULED_TIME: scheduled,
        ANNOTATION_TRIGGER: trigger,
    }
    if previous:
        annotations[ANNOTATION_PREVIOUS_SCHEDULED_TIME] = previous
    metadata: dict[str, Any] = {
        "namespace": meta["namespace"],
        "labels": {**labels, LABEL_SCHEDULE: meta["name"]},
        "annotations": annotations,
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": SCHEDULE_KIND,
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
            }
        ],
    }
    if name is not None:
        metadata["name"] = name
    if generate_name is not None:
        metadata["generateName"] = generate_name
    spec = {k: v for k, v in template["spec"].items() if k != "cancel"}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints a Job's DURATION and any object's AGE.

    ``status.duration`` and the plugin's ages use it so a run reads like a Job
    beside it: about two significant figures — ``95s``, ``3m7s``, ``45m``, ``2h5m``,
    ``20h``, ``3d4h``, ``12d``, ``2y40d``.
    """
    total = int(seconds)
    if total < -1:
        return "<invalid>"  # a clock skew kubectl would not hide either
    if total < 120:
        return f"{max(0, total)}s"
    minutes = total // 60
    if minutes < 10:
        return _two_units(minutes, "m", total % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return _two_units(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


ANNOTATION_LOG_WRITER = "wt.dev/log-writer"
"""A random token of the operator's writer, set at create: a create retried after a lost
reply adopts the object carrying its own token, never one a namespace co-editor made."""
LOG_CONFIGMAP_PREFIX = "wt-log-"
"""Every log ConfigMap's name starts with this (the admission policy limits the
operator's ConfigMap writes to it)."""


def log_configmap_name(uid: str) -> str:
    """Name of the ConfigMap (in the run's namespace) holding a Local run's output.

    Derived from the uid, not the name: a run created under a recycled name can
    never meet its predecessor's log. Anyone who can create ConfigMaps in the namespace
    can take this name first; the operator then writes ``<this name>-<random>`` (the API
    server's generateName, unknown until created) and records the one it wrote in
    ``status.log``, which only the operator can write.
    """
    return f"{LOG_CONFIGMAP_PREFIX}{uid}"


class Phase(enum.StrEnum):
    """``status.phase``: Pending → (Queued →) Running / Submitted → a terminal phase."""

    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUBMITTED = "Submitted"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})


class Reason(enum.StrEnum):
    """``status.reason`` and the reason of the ``Succeeded`` condition."""

    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUBMITTED = "Submitted"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    """The workflow ran and exited non-zero (Local) or its job failed (CloudBatch)."""
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    CANCELLED = "Cancelled"
    CANCELLING = "Cancelling"
    """Deleted; stopping the process tree or deleting the Batch job has not succeeded yet."""
    INVOKER_LOST = "InvokerLost"
    """The process died with an operator, or the Batch job vanished."""
    NOT_INSTALLED = "NotInstalled"
    INVALID_SPEC = "InvalidSpec"
    SUBMISSION_REJECTED = "SubmissionRejected"
    POLICY_DENIED = "PolicyDenied"
    """The cluster admin's policy forbids this run (Batch project/account/image, Local off, …)."""
    START_FAILED = "StartFailed"
    """Preparing or starting the workflow failed (exec error, results directory, …)."""
    JOB_CONFLICT = "JobConflict"
    """A Batch job with this run's id exists but belongs to another run."""
    JOB_NOT_FOUND = "JobNotFound"
    """The pre-deployed Cloud Run Job the run names does not exist (or is not visible)."""
    RETRYING = "Retrying"
    """Not a failure: a step failed transiently (Batch unavailable, …) and is retried with
    backoff; the phase is kept."""


class KeyRefDict(TypedDict):
    name: str
    key: str
    optional: NotRequired[bool]


class ValueFromDict(TypedDict, total=False):
    secretKeyRef: KeyRefDict
    configMapKeyRef: KeyRefDict
    gcpSecretVersion: str


class EnvVarDict(TypedDict):
    name: str
    value: NotRequired[str]
    valueFrom: NotRequired[ValueFromDict]


class ConditionDict(TypedDict):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: NotRequired[int]


class CloudBatchSpec(TypedDict, total=False):
    """``spec.cloudBatch``."""

    image: str
    cpuMilli: int
    memoryMib: int
    machineType: str
    gpu: dict[str, Any]
    network: dict[str, Any]
    project: str
    region: str
    serviceAccount: str
    labels: dict[str, str]


class CloudRunSpec(TypedDict, total=False):
    """``spec.cloudRun``: which pre-deployed Cloud Run Job runs the sandbox, and its inputs."""

    jobName: str
    project: str
    region: str
    environmentArchiveUrl: str
    environmentArchiveDigest: str
    resultsUploadUrl: str
    skipResultsArchiveUpload: bool


class RunSpec(TypedDict, total=False):
    """``spec`` of a WorkflowRun, as the API server stores it (after schema defaults)."""

    workflow: str
    invoker: Literal["Local", "CloudBatch", "CloudRunJob"]
    workflowRunId: str
    config: dict[str, Any]
    configFrom: dict[str, KeyRefDict]
    resultsUrl: str
    executionMode: str
    mockIo: bool
    otel: dict[str, str]
    env: list[EnvVarDict]
    lithopsConfig: dict[str, Any]
    activeDeadlineSeconds: int
    ttlSecondsAfterFinished: int
    local: dict[str, str]
    cloudBatch: CloudBatchSpec
    cloudRun: CloudRunSpec


class CloudBatchStatus(TypedDict, total=False):
    """``status.cloudBatch``: the run's Batch job."""

    jobName: str
    jobUid: str
    state: str
    logsUrl: str
    logsQuery: str


class CloudRunStatus(TypedDict, total=False):
    """``status.cloudRun``: the run's Cloud Run Job execution."""

    jobName: str
    """``projects/P/locations/R/jobs/J``: recorded before triggering, so a cancel finds it."""
    executionName: str
    executionUid: str
    state: str
    """PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED (or DELETED, NOT_FOUND)."""
    consoleUrl: str
    logsUrl: str


class LogStatus(TypedDict, total=False):
    """``status.log``: the ConfigMap the operator stores a Local run's output in."""

    configMap: str
    uid: str


class RunStatus(TypedDict, total=False):
    """``status`` of a WorkflowRun, as the operator writes it (merge patches of it, too)."""

    phase: str
    reason: str
    message: str
    conditions: list[ConditionDict]
    observedGeneration: int
    workflowRunId: str
    traceId: str
    startTime: str
    completionTime: str
    duration: str
    exitCode: int
    result: str
    cloudBatch: CloudBatchStatus
    cloudRun: CloudRunStatus
    log: LogStatus
