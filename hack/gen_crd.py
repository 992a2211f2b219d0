"""Generate crds/wt.dev_workflowruns.yaml and crds/wt.dev_workflowschedules.yaml — the one
source of truth for the WorkflowRun and WorkflowSchedule APIs.

Written as Python rather than hand-edited YAML so every field carries a
description (``kubectl explain wfr.spec`` teaches the resource) and the CEL
rules sit beside the fields they guard. Run ``make crds`` after editing; a unit
test fails when the committed YAML and this generator disagree.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from wt_operator import reserved_env
from wt_operator.config import OperatorConfig
from wt_operator.core.spec import KEY_PATTERN, OBJECT_NAME_PATTERN

ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = ROOT / "crds" / "wt.dev_workflowruns.yaml"
SCHEDULE_CRD_PATH = ROOT / "crds" / "wt.dev_workflowschedules.yaml"


def s(desc: str, **kw: Any) -> dict[str, Any]:
    return {"type": "string", "description": desc, **kw}


def i(desc: str, **kw: Any) -> dict[str, Any]:
    return {"type": "integer", "description": desc, **kw}


def b(desc: str, **kw: Any) -> dict[str, Any]:
    return {"type": "boolean", "description": desc, **kw}


def obj(desc: str, props: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"type": "object", "description": desc, "properties": props, **kw}


def free(desc: str) -> dict[str, Any]:
    return {"type": "object", "description": desc, "x-kubernetes-preserve-unknown-fields": True}


def key_ref(kind: str) -> dict[str, Any]:
    return obj(
        f"Selects a key of a {kind} in the run's namespace.",
        {
            "name": s(
                f"Name of the {kind} (a DNS subdomain: it names an object of the run's "
                "own namespace, nothing else).",
                minLength=1,
                maxLength=253,
                pattern=OBJECT_NAME_PATTERN,
            ),
            "key": s(
                f"The key of the {kind} to select.",
                minLength=1,
                maxLength=253,
                pattern=KEY_PATTERN,
                **{
                    "x-kubernetes-validations": [
                        {"rule": "self != '.' && self != '..'", "message": "not a valid key"}
                    ]
                },
            ),
            "optional": b(
                f"If true, a missing {kind} or key leaves the variable unset "
                "instead of failing the run."
            ),
        },
        required=["name", "key"],
    )


_CAPS = OperatorConfig(workspace=Path())
SECRET_CAP = (
    f"All Secret values one run references count together against the operator's cap "
    f"(default {_CAPS.secret_max_bytes} bytes and {_CAPS.secret_max_lines} lines; chart "
    "values operator.secretMaxBytes/secretMaxLines): above it the run ends InvalidSpec, "
    "because every line of them is masked in the run's output."
)

ENV_VAR = obj(
    "An environment variable for the workflow (a subset of core/v1 EnvVar). Values taken "
    "from Secrets are resolved when the run starts and never written to status, events or logs.",
    {
        "name": s(
            "Name of the variable ([A-Za-z_][A-Za-z0-9_]*). Refused, in any case: names that "
            "loaders, shells or interpreters read as code or as a code search path (LD_*, "
            "PYTHON*, PATH, BASH_ENV, …), names that redirect the workflow (*_PROXY, SSL_*, "
            "*_CA_BUNDLE, GOOGLE_*, CLOUDSDK_*, OTEL_*, TMPDIR, XDG_*, …) and the names the "
            "operator sets itself (WT_*, PIXI_*, CONDA_*, HOME, LANG, TZ, …). The cluster "
            "admin may allow only some names (operator.allowedEnv).",
            minLength=1,
            maxLength=256,
            pattern=reserved_env.ENV_NAME_PATTERN,
        ),
        "value": s(
            "Literal value (at most 32 KiB; larger data belongs in the config).", maxLength=32768
        ),
        "valueFrom": obj(
            "Take the value from a Secret or ConfigMap key, or (CloudBatch only) from a "
            "Google Secret Manager secret version, instead of a literal.",
            {
                "secretKeyRef": {
                    **key_ref("Secret"),
                    "description": "Selects a key of a Secret in the run's namespace. "
                    + SECRET_CAP,
                },
                "configMapKeyRef": key_ref("ConfigMap"),
                "gcpSecretVersion": s(
                    "A Secret Manager secret version, projects/P/secrets/S/versions/V "
                    "(CloudBatch only). Batch resolves it on the VM: the value never passes "
                    "through the operator or the job definition.",
                    maxLength=512,
                    pattern=r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$",
                ),
            },
            **{
                "x-kubernetes-validations": [
                    {
                        "rule": "(has(self.secretKeyRef) ? 1 : 0) + "
                        "(has(self.configMapKeyRef) ? 1 : 0) + "
                        "(has(self.gcpSecretVersion) ? 1 : 0) == 1",
                        "message": "valueFrom needs exactly one of secretKeyRef, "
                        "configMapKeyRef or gcpSecretVersion",
                    }
                ]
            },
        ),
    },
    required=["name"],
    **{
        "x-kubernetes-validations": [
            {
                "rule": "!(has(self.value) && has(self.valueFrom))",
                "message": "set value or valueFrom, not both",
            },
            reserved_env.cel_rule(),
        ]
    },
)

SPEC = obj(
    "What to run and where. Immutable once created: a changed run is a new WorkflowRun.",
    {
        "workflow": s(
            'Conda MatchSpec of the workflow package, e.g. "patrol-report >=1.2".',
            minLength=1,
            maxLength=512,
        ),
        "invoker": s(
            "Where the workflow runs: Local (a subprocess of the operator, in its "
            "pixi workspace), CloudBatch (a Google Cloud Batch job) or CloudRunJob (an "
            "execution of a pre-deployed Cloud Run Job running the wt-invokers sandbox).",
            enum=["Local", "CloudBatch", "CloudRunJob"],
        ),
        "workflowRunId": s(
            "The run id the workflow is told (--config run id, WT_INVOKERS__RUN_ID); "
            "defaults to metadata.uid. It does not identify the run: the Batch job and "
            "the local processes belong to metadata.uid, so a copied manifest is a new run.",
            maxLength=128,
            pattern=r"^[A-Za-z0-9]([A-Za-z0-9._:-]*[A-Za-z0-9])?$",
        ),
        "config": free(
            "The workflow's parameters; passed to it as YAML (--config-file) or "
            "JSON (--config-json on Cloud Batch)."
        ),
        "configFrom": obj(
            "Take the workflow's parameters (YAML text) from a ConfigMap key instead of config.",
            {"configMapKeyRef": key_ref("ConfigMap")},
            required=["configMapKeyRef"],
        ),
        "resultsUrl": s(
            "Where the workflow writes its results (gs://…, file:///…); passed in "
            "the results environment variable. A file:// directory is created.",
            minLength=1,
            maxLength=2048,
        ),
        "executionMode": s(
            "How the workflow schedules its steps.",
            enum=["sequential", "async"],
            default="sequential",
        ),
        "mockIo": b("Run with mocked inputs and outputs (--mock-io).", default=False),
        "otel": obj(
            "OpenTelemetry export settings passed to the workflow. The workflow also gets a "
            "W3C TRACEPARENT whose trace id is the run's uid, so its spans form one trace.",
            {
                "exporter": s(
                    "Exporter to use (--otel-exporter): console, gcp (Cloud Trace) or otlp "
                    "(an OpenTelemetry collector at endpoint).",
                    enum=["console", "gcp", "otlp"],
                ),
                "consoleExporterDst": s(
                    "Where the console exporter writes (--otel-console-exporter-dst).",
                    enum=["stdout", "file"],
                ),
                "endpoint": s(
                    "OTLP endpoint URL (exporter otlp), e.g. http://otel-collector.obs:4317; "
                    "passed as OTEL_EXPORTER_OTLP_ENDPOINT.",
                    maxLength=1024,
                    pattern=r"^https?://\S+$",
                ),
            },
            **{
                "x-kubernetes-validations": [
                    {
                        "rule": "has(self.endpoint) == (has(self.exporter) && "
                        "self.exporter == 'otlp')",
                        "message": "otel.endpoint is required with exporter otlp and "
                        "only allowed with it",
                    }
                ]
            },
        ),
        "env": {
            "type": "array",
            "description": "Extra environment variables for the workflow.",
            "maxItems": 200,
            "items": ENV_VAR,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
        "lithopsConfig": free(
            "Lithops configuration for workflows that fan out with Lithops; "
            "passed as a file named by LITHOPS_CONFIG_FILE."
        ),
        "ttlSecondsAfterFinished": i(
            "Delete the run this many seconds after it finished (counted from "
            "status.completionTime), as for Jobs; 0 deletes it at once. Unset: the "
            "operator's default (WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED), else kept forever.",
            minimum=0,
            maximum=31536000,
        ),
        "activeDeadlineSeconds": i(
            "Wall-clock limit counted from status.startTime; when "
            "exceeded the run is killed (Local) or its job cancelled "
            "(CloudBatch) and it fails with reason DeadlineExceeded.",
            minimum=1,
            maximum=31536000,
        ),
        "local": obj(
            "Options of the Local invoker.",
            {
                "environment": s(
                    "pixi environment of the operator's workspace to run in.",
                    default="default",
                    pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
                )
            },
        ),
        "environment": obj(
            "Local runs only: run the workflow from a pixi-pack environment archive instead "
            "of the operator's workspace; the operator downloads it, checks its digest and "
            "unpacks it once per digest, so a new workflow version needs neither a new image "
            "nor a volume.",
            {
                "archiveUrl": s(
                    "Where the archive (pixi-pack's environment.tar) is: http:// or https://.",
                    pattern=r"^https?://\S+$",
                    maxLength=2048,
                ),
                "archiveDigest": s(
                    "sha256:<64 lowercase hex digits> of the archive; any other archive is "
                    "refused before it is unpacked.",
                    pattern=r"^sha256:[0-9a-f]{64}$",
                ),
            },
            required=["archiveUrl", "archiveDigest"],
        ),
        "cloudBatch": obj(
            "Options of the CloudBatch invoker (required when invoker is CloudBatch). "
            "Unset fields fall back to the operator's settings.",
            {
                "image": s(
                    "Container image holding the workflow (docker_image_uri).",
                    minLength=1,
                    maxLength=1024,
                ),
                "cpuMilli": i(
                    "CPU for the task in milli-cores (default 8000).", minimum=1, maximum=1000000
                ),
                "memoryMib": i(
                    "Memory for the task in MiB (default 32768).", minimum=1, maximum=16777216
                ),
                "machineType": s("Compute Engine machine type, e.g. n2-standard-8.", maxLength=128),
                "gpu": obj(
                    "Accelerators attached to the VM.",
                    {
                        "type": s(
                            "Accelerator type, e.g. nvidia-tesla-t4.", minLength=1, maxLength=128
                        ),
                        "count": i("Number of accelerators.", minimum=1, maximum=16, default=1),
                    },
                    required=["type"],
                ),
                "network": obj(
                    "VPC placement of the job's VMs.",
                    {
                        "network": s(
                            "Network URL, e.g. projects/p/global/networks/n.", maxLength=1024
                        ),
                        "subnetwork": s("Subnetwork URL.", maxLength=1024),
                        "noExternalIp": b("Give the VMs no external IP address."),
                    },
                ),
                "project": s(
                    "GCP project (default: the operator's GOOGLE_CLOUD_PROJECT).", maxLength=128
                ),
                "region": s(
                    "Batch region (default: the operator's CLOUD_RUN_REGION).", maxLength=64
                ),
                "serviceAccount": s("Service account email the job runs as.", maxLength=256),
                "labels": {
                    "type": "object",
                    "description": "Labels added to the Batch job.",
                    "maxProperties": 32,
                    "additionalProperties": {"type": "string", "maxLength": 63},
                },
            },
            required=["image"],
        ),
        "cloudRun": obj(
            "Options of the CloudRunJob invoker (required when invoker is CloudRunJob): which "
            "pre-deployed Cloud Run Job runs the sandbox, where the sandbox gets the workflow's "
            "environment and where the results go. Unset fields fall back to the operator's "
            "settings.",
            {
                "jobName": s(
                    "Short name of the Cloud Run Job an admin deployed (its container runs "
                    "wt-invokers.sandbox).",
                    minLength=1,
                    maxLength=63,
                    pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
                ),
                "project": s(
                    "GCP project of the job (default: the operator's GOOGLE_CLOUD_PROJECT).",
                    maxLength=30,
                ),
                "region": s(
                    "Region of the job (default: the operator's CLOUD_RUN_REGION).", maxLength=64
                ),
                "environmentArchiveUrl": s(
                    "URL of the pixi-pack environment archive holding the workflow "
                    "(https:// or a signed URL); the sandbox downloads and unpacks it.",
                    minLength=1,
                    maxLength=4096,
                ),
                "environmentArchiveDigest": s(
                    "sha256:<64 hex> the archive must have: the sandbox refuses another before "
                    "unpacking it (recommended; unchecked when unset).",
                    pattern=r"^sha256:[0-9a-f]{64}$",
                ),
                "resultsUploadUrl": s(
                    "Signed URL the sandbox PUTs the results archive to. Set this or "
                    "skipResultsArchiveUpload.",
                    minLength=1,
                    maxLength=4096,
                ),
                "skipResultsArchiveUpload": b(
                    "The workflow writes to resultsUrl (a bucket) itself and no archive is "
                    "uploaded; resultsUrl must then be a real destination."
                ),
            },
            required=["jobName", "environmentArchiveUrl"],
            **{
                "x-kubernetes-validations": [
                    {
                        "rule": "has(self.resultsUploadUrl) != "
                        "(has(self.skipResultsArchiveUpload) && self.skipResultsArchiveUpload)",
                        "message": "set exactly one of resultsUploadUrl and "
                        "skipResultsArchiveUpload: true",
                    }
                ]
            },
        ),
    },
    required=["workflow", "invoker", "resultsUrl"],
    **{
        "x-kubernetes-validations": [
            {
                "rule": "self == oldSelf",
                "message": "spec is immutable: create a new WorkflowRun to run again",
            },
            {
                "rule": "self.invoker != 'CloudBatch' || has(self.cloudBatch)",
                "message": "cloudBatch (with image) is required when invoker is CloudBatch",
            },
            {
                "rule": "self.invoker == 'Local' || !has(self.environment)",
                "message": "environment (an archive) works only with invoker Local",
            },
            {
                "rule": "self.invoker != 'CloudRunJob' || has(self.cloudRun)",
                "message": "cloudRun (with jobName and environmentArchiveUrl) is required when "
                "invoker is CloudRunJob",
            },
            {
                "rule": "!(has(self.config) && has(self.configFrom))",
                "message": "set config or configFrom, not both",
            },
            {
                "rule": "self.invoker == 'CloudBatch' || !has(self.env) || !self.env.exists(e, "
                "has(e.valueFrom) && has(e.valueFrom.gcpSecretVersion))",
                "message": "valueFrom.gcpSecretVersion works only with invoker CloudBatch "
                "(Batch resolves it); use secretKeyRef for Local and CloudRunJob runs",
            },
        ]
    },
)

CONDITION = obj(
    "A condition in the Kubernetes convention.",
    {
        "type": s("Condition type: Succeeded, Ready, Reconciling or Stalled."),
        "status": s("True, False or Unknown.", enum=["True", "False", "Unknown"]),
        "reason": s("CamelCase reason for the last transition."),
        "message": s("Human readable details."),
        "lastTransitionTime": s("When the status last changed.", format="date-time"),
        "observedGeneration": i("metadata.generation this condition was computed for."),
    },
    required=["type", "status"],
)

# Applied by the API server whenever an object without status is read (no write
# involved), so a run nobody has picked up yet reads as Pending/Reconciling — kstatus
# (Flux) would otherwise call a status-less object Current, i.e. healthy.
STATUS_DEFAULT = {
    "phase": "Pending",
    "reason": "Pending",
    "message": "waiting for the operator",
    "conditions": [
        {
            "type": "Succeeded",
            "status": "Unknown",
            "reason": "Pending",
            "message": "waiting for the operator",
        },
        {
            "type": "Reconciling",
            "status": "True",
            "reason": "Pending",
            "message": "waiting for the operator",
        },
    ],
}

STATUS = obj(
    "Observed state of the run, written by the operator.",
    {
        "phase": s(
            "Lifecycle phase.",
            enum=["Pending", "Queued", "Running", "Submitted", "Succeeded", "Failed", "Cancelled"],
        ),
        "conditions": {
            "type": "array",
            "description": "Succeeded (Unknown/True/False) plus "
            "the kstatus conditions Reconciling, Ready and Stalled.",
            "items": CONDITION,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
        "reason": s(
            "CamelCase reason of the last transition (the Succeeded condition's reason): "
            "Queued, Running, Submitted, Succeeded, Failed, DeadlineExceeded, Cancelled, "
            "Cancelling, InvokerLost, NotInstalled, InvalidSpec, SubmissionRejected, "
            "PolicyDenied, StartFailed, JobConflict, Retrying (not a failure: a step is retried)."
        ),
        "observedGeneration": i("metadata.generation the status reflects."),
        "workflowRunId": s("The run id passed to the workflow (spec.workflowRunId or the uid)."),
        "traceId": s(
            "W3C trace id of the run (its uid without dashes): the workflow's spans carry it."
        ),
        "startTime": s("When the operator started handling the run.", format="date-time"),
        "completionTime": s("When the run reached a terminal phase.", format="date-time"),
        "duration": s("completionTime - startTime, printed as kubectl prints a Job's (3m7s)."),
        "exitCode": i("Exit code of the local workflow process (128+N for signal N)."),
        "result": s(
            "Short outcome for kubectl get: the exit code (Local), the Batch job id "
            "(CloudBatch) or the Cloud Run execution id (CloudRunJob)."
        ),
        "cloudBatch": obj(
            "The Cloud Batch job of this run.",
            {
                "jobName": s("Full job name, projects/…/locations/…/jobs/…"),
                "jobUid": s("The job's uid assigned by Batch."),
                "state": s(
                    "The job's state as Batch reports it (QUEUED … SUCCEEDED/FAILED), or "
                    "DELETED once the operator deleted it."
                ),
                "logsUrl": s("Cloud Console link to the job's logs."),
                "logsQuery": s("Cloud Logging query selecting the job's log entries."),
            },
        ),
        "cloudRun": obj(
            "The Cloud Run Job execution of this run.",
            {
                "jobName": s("Full job name, projects/…/locations/…/jobs/…"),
                "executionName": s("Full execution name, …/jobs/…/executions/…"),
                "executionUid": s("The execution's uid assigned by Cloud Run."),
                "state": s(
                    "PENDING, RUNNING, SUCCEEDED, FAILED or CANCELLED as read from Cloud Run; "
                    "DELETED once the run was deleted and the execution stopped; NOT_FOUND "
                    "when it vanished."
                ),
                "consoleUrl": s("Cloud Console page of the execution."),
                "logsUrl": s("Where Cloud Run says the execution's logs are."),
            },
        ),
        "log": obj(
            "Where the operator stores a Local run's output: kubectl wt logs shows this "
            "ConfigMap only, and only while it is the object with this uid. Normally "
            "wt-log-<run uid>; when someone else created that name first, "
            "wt-log-<run uid>-<random> (a LogNameTaken Warning Event says so).",
            {
                "configMap": s("Name of the ConfigMap, in the run's namespace."),
                "uid": s("metadata.uid of that ConfigMap as the operator created it."),
            },
        ),
        "message": s("Human summary; on a local failure, the tail of the workflow's output."),
    },
    default=STATUS_DEFAULT,
)


_IMMUTABLE = "self == oldSelf"


def cancellable(spec: dict[str, Any]) -> dict[str, Any]:
    """The run's spec with ``cancel``: immutable except that one field, which may only go
    from unset to true.

    The rule comparing the whole spec becomes one comparison per field, generated from the
    fields the spec has, so a field added to SPEC later is immutable without anyone
    remembering to list it here.
    """
    out = copy.deepcopy(spec)
    fields = sorted(out["properties"])
    out["properties"]["cancel"] = b(
        "Cancel the run in place (kubectl wt cancel): its process tree is killed or its Batch "
        "job deleted, and it ends Cancelled with its status, output and Events kept — unlike "
        "deleting it. May only be set (to true), never changed back. Set by "
        "concurrencyPolicy Replace of a WorkflowSchedule on the run it replaces.",
        **{
            "x-kubernetes-validations": [
                {"rule": "self == true", "message": "spec.cancel can only be set to true"}
            ]
        },
    )
    same = " && ".join(
        f"has(self.{f}) == has(oldSelf.{f}) && (!has(self.{f}) || self.{f} == oldSelf.{f})"
        for f in fields
    )
    rules = [r for r in out["x-kubernetes-validations"] if r["rule"] != _IMMUTABLE]
    out["x-kubernetes-validations"] = [
        {
            "rule": same,
            "message": "spec is immutable except spec.cancel: create a new WorkflowRun to run "
            "again",
        },
        {
            "rule": "!has(oldSelf.cancel) || has(self.cancel)",
            "message": "spec.cancel cannot be undone: a cancelled run stays cancelled",
        },
        *rules,
    ]
    return out


def template_spec() -> dict[str, Any]:
    """A WorkflowRun spec as a schedule's runTemplate holds it: the same fields and rules,
    except immutability (a template is edited in place) and cancel (a run's, not a
    template's)."""
    out = copy.deepcopy(SPEC)
    out["description"] = (
        "The spec of each run, validated as a WorkflowRun's spec. Editing it changes the "
        "runs of later slots only."
    )
    out["x-kubernetes-validations"] = [
        r for r in out["x-kubernetes-validations"] if r["rule"] != _IMMUTABLE
    ]
    return out


def string_map(desc: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": desc,
        "maxProperties": 64,
        "additionalProperties": {"type": "string"},
    }


SCHEDULE_NAME_MAX = 52
"""As CronJob: the run's name adds a dash and the slot's minute since the epoch, and the
schedule's name must fit a label value (63)."""

SCHEDULE_SPEC = obj(
    "When to run which workflow, and what to keep.",
    {
        "schedule": s(
            "Cron line in the standard five fields (minute hour day-of-month month "
            "day-of-week), or @hourly, @daily (@midnight), @weekly, @monthly, @yearly "
            "(@annually). Read in timeZone: a wall time that is skipped when clocks go "
            "forward has no run that day; one repeated when they go back runs once.",
            minLength=1,
            maxLength=128,
            pattern=r"^(@[a-z]+|\S+( +\S+){4})$",
        ),
        "timeZone": s(
            "IANA time zone the schedule is read in, e.g. Europe/Berlin (default UTC). An "
            "unknown zone stalls the schedule with a condition saying so.",
            maxLength=64,
            pattern=r"^[A-Za-z][A-Za-z0-9_+/-]*$",
            default="UTC",
        ),
        "suspend": b(
            "Start no runs while true; slots that pass are not caught up on resume. "
            "Set by the operator when suspendAfterFailures is reached.",
            default=False,
        ),
        "concurrencyPolicy": s(
            "When a slot comes while a run of this schedule is still active: Allow starts "
            "another, Forbid waits for it (within startingDeadlineSeconds), Replace cancels "
            "it (spec.cancel, so it stays in the history as Cancelled) and starts the new one.",
            enum=["Allow", "Forbid", "Replace"],
            default="Forbid",
        ),
        "startingDeadlineSeconds": i(
            "A slot not started within this many seconds (operator down, Forbid waiting) is "
            "missed. Unset: no deadline, but after an outage only the newest slot runs.",
            minimum=0,
            maximum=31536000,
        ),
        "successfulRunsHistoryLimit": i(
            "Succeeded runs to keep (older ones are deleted).", minimum=0, maximum=1000, default=3
        ),
        "failedRunsHistoryLimit": i(
            "Failed and Cancelled runs to keep (older ones are deleted).",
            minimum=0,
            maximum=1000,
            default=1,
        ),
        "suspendAfterFailures": i(
            "Suspend the schedule (spec.suspend) after this many consecutive failed runs, with "
            "a Suspended condition saying why. Unset: never.",
            minimum=1,
            maximum=1000,
        ),
        "runTemplate": obj(
            "The WorkflowRun each slot creates.",
            {
                "metadata": obj(
                    "Labels and annotations of each run (the operator adds its own).",
                    {
                        "labels": string_map("Labels of each run."),
                        "annotations": string_map("Annotations of each run."),
                    },
                ),
                "spec": template_spec(),
            },
            required=["spec"],
        ),
    },
    required=["schedule", "runTemplate"],
)

SCHEDULE_STATUS = obj(
    "Observed state of the schedule, written by the operator.",
    {
        "conditions": {
            "type": "array",
            "description": "Ready, Suspended, Stalled and Reconciling (kstatus reads Ready "
            "and Stalled; Stalled is True when the schedule cannot run or was suspended "
            "after failures).",
            "items": CONDITION,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
        "observedGeneration": i("metadata.generation the status reflects."),
        "lastScheduleTime": s("The slot of the newest run started.", format="date-time"),
        "lastSuccessfulTime": s("When the newest succeeded run completed.", format="date-time"),
        "nextScheduleTime": s("The next slot.", format="date-time"),
        "lastSlotTime": s(
            "The newest slot dealt with (run or missed); later slots are the ones still due.",
            format="date-time",
        ),
        "active": {
            "type": "array",
            "description": "The schedule's runs still active.",
            "items": obj(
                "A run of the schedule.",
                {
                    "name": s("The WorkflowRun's name."),
                    "uid": s("The WorkflowRun's uid."),
                    "scheduledTime": s("Its slot.", format="date-time"),
                },
            ),
        },
        "activeCount": i("How many runs are active (the ACTIVE column)."),
        "missedSlots": i("Slots missed since the schedule was created (deadline, outage)."),
        "consecutiveFailures": i("Failed runs in a row (reset by a success or a resume)."),
        "failuresCountedThrough": s(
            "The slot of the newest finished run counted in consecutiveFailures.",
            format="date-time",
        ),
    },
)


def build_schedule() -> dict[str, Any]:
    """The WorkflowSchedule CRD."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "workflowschedules.wt.dev"},
        "spec": {
            "group": "wt.dev",
            "scope": "Namespaced",
            "names": {
                "kind": "WorkflowSchedule",
                "listKind": "WorkflowScheduleList",
                "plural": "workflowschedules",
                "singular": "workflowschedule",
                "shortNames": ["wfs"],
                "categories": ["wt"],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
                        {"name": "Timezone", "type": "string", "jsonPath": ".spec.timeZone"},
                        {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
                        {"name": "Active", "type": "integer", "jsonPath": ".status.activeCount"},
                        {
                            "name": "Last Schedule",
                            "type": "date",
                            "jsonPath": ".status.lastScheduleTime",
                        },
                        # A string: kubectl prints a future date column as <invalid>.
                        {"name": "Next", "type": "string", "jsonPath": ".status.nextScheduleTime"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": obj(
                            "A WorkflowSchedule creates a WorkflowRun from its template at each "
                            "slot of a cron schedule (what a CronJob is to Jobs), tells each run "
                            "its slot and the previous one (WT_SCHEDULED_TIME, "
                            "WT_PREVIOUS_SCHEDULED_TIME) and keeps a bounded history.",
                            {
                                "apiVersion": s("APIVersion of this object."),
                                "kind": s("Kind of this object."),
                                "metadata": {"type": "object"},
                                "spec": SCHEDULE_SPEC,
                                "status": SCHEDULE_STATUS,
                            },
                            required=["spec"],
                            **{
                                "x-kubernetes-validations": [
                                    {
                                        "rule": f"self.metadata.name.size() <= {SCHEDULE_NAME_MAX}",
                                        "message": "a WorkflowSchedule's name has at most "
                                        f"{SCHEDULE_NAME_MAX} characters (its runs add the "
                                        "slot to it)",
                                    }
                                ]
                            },
                        )
                    },
                }
            ],
        },
    }


def build() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "workflowruns.wt.dev"},
        "spec": {
            "group": "wt.dev",
            "scope": "Namespaced",
            "names": {
                "kind": "WorkflowRun",
                "listKind": "WorkflowRunList",
                "plural": "workflowruns",
                "singular": "workflowrun",
                "shortNames": ["wfr"],
                "categories": ["wt"],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
                        {"name": "Invoker", "type": "string", "jsonPath": ".spec.invoker"},
                        {"name": "Workflow", "type": "string", "jsonPath": ".spec.workflow"},
                        {"name": "Exit/Job", "type": "string", "jsonPath": ".status.result"},
                        {"name": "Duration", "type": "string", "jsonPath": ".status.duration"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                        {
                            "name": "Message",
                            "type": "string",
                            "jsonPath": ".status.message",
                            "priority": 1,
                        },
                        {
                            "name": "Execution",
                            "type": "string",
                            "jsonPath": ".status.cloudRun.consoleUrl",
                            "priority": 1,
                        },
                    ],
                    "schema": {
                        "openAPIV3Schema": obj(
                            "A WorkflowRun runs one compiled wt workflow once, locally in the "
                            "operator's pixi workspace, as a Google Cloud Batch job or as a Cloud "
                            "Run Job execution, and records its outcome.",
                            {
                                "apiVersion": s("APIVersion of this object."),
                                "kind": s("Kind of this object."),
                                "metadata": {"type": "object"},
                                "spec": cancellable(SPEC),
                                "status": STATUS,
                            },
                            required=["spec"],
                        )
                    },
                }
            ],
        },
    }


def render(crd: dict[str, Any] | None = None) -> str:
    header = "# Generated by hack/gen_crd.py — edit that file, then run `make crds`.\n"
    return header + yaml.safe_dump(build() if crd is None else crd, sort_keys=False, width=100)


if __name__ == "__main__":
    outputs = {CRD_PATH: render(), SCHEDULE_CRD_PATH: render(build_schedule())}
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if all(p.read_text() == text for p, text in outputs.items()) else 1)
    for path, text in outputs.items():
        path.write_text(text)
