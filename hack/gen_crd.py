"""Generate crds/wt.dev_workflowruns.yaml — the one source of truth for the WorkflowRun API.

Written as Python rather than hand-edited YAML so every field carries a
description (``kubectl explain wfr.spec`` teaches the resource) and the CEL
rules sit beside the fields they guard. Run ``make crds`` after editing; a unit
test fails when the committed YAML and this generator disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from wt_operator import reserved_env
from wt_operator.config import OperatorConfig

ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = ROOT / "crds" / "wt.dev_workflowruns.yaml"


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
            "name": s(f"Name of the {kind}.", minLength=1, maxLength=253),
            "key": s(f"The key of the {kind} to select.", minLength=1, maxLength=253),
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
            "Name of the variable. Names that loaders, shells or interpreters read as code or "
            "as a code search path (LD_*, PYTHON*, PATH, BASH_ENV, …) and the names the "
            "operator sets itself (WT_*, PIXI_*, CONDA_*, …) are refused.",
            minLength=1,
            maxLength=256,
            pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
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
            "pixi workspace) or CloudBatch (a Google Cloud Batch job).",
            enum=["Local", "CloudBatch"],
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
                "rule": "!(has(self.config) && has(self.configFrom))",
                "message": "set config or configFrom, not both",
            },
            {
                "rule": "self.invoker == 'CloudBatch' || !has(self.env) || !self.env.exists(e, "
                "has(e.valueFrom) && has(e.valueFrom.gcpSecretVersion))",
                "message": "valueFrom.gcpSecretVersion works only with invoker CloudBatch "
                "(Batch resolves it); use secretKeyRef for Local runs",
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
            "PolicyDenied, StartFailed, JobConflict."
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
            "Short outcome for kubectl get: the exit code (Local) or the Batch job id (CloudBatch)."
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
                    ],
                    "schema": {
                        "openAPIV3Schema": obj(
                            "A WorkflowRun runs one compiled wt workflow once, locally in the "
                            "operator's pixi workspace or as a Google Cloud Batch job, and records "
                            "its outcome.",
                            {
                                "apiVersion": s("APIVersion of this object."),
                                "kind": s("Kind of this object."),
                                "metadata": {"type": "object"},
                                "spec": SPEC,
                                "status": STATUS,
                            },
                            required=["spec"],
                        )
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by hack/gen_crd.py — edit that file, then run `make crds`.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, width=100)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if CRD_PATH.read_text() == render() else 1)
    CRD_PATH.write_text(render())
