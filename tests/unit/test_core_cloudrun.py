"""The pure decisions of CloudRunJob runs: spec, admission, execution state → phase."""

from __future__ import annotations

from typing import Any

import pytest

from wt_invokers import PermanentSubmissionError, TransientSubmissionError
from wt_invokers.cloud_run_jobs import ExecutionInfo
from wt_operator.api import Phase, Reason
from wt_operator.core import cloudrun
from wt_operator.core.errors import InvalidSpecError, Terminal, Transient
from wt_operator.core.policy import BatchDefaults, BatchPolicy, CloudRunPolicy, admit
from wt_operator.core.spec import parse_spec

JOB = "projects/p/locations/us-central1/jobs/wt-sandbox"
EXECUTION = f"{JOB}/executions/wt-sandbox-x1"


def spec(**cloud_run: Any) -> dict[str, Any]:
    return {
        "workflow": "sample >=1",
        "invoker": "CloudRunJob",
        "resultsUrl": "gs://b/r/",
        "cloudRun": {
            "jobName": "wt-sandbox",
            "environmentArchiveUrl": "https://e/env.tar",
            "resultsUploadUrl": "https://u/o",
            **cloud_run,
        },
    }


def info(state: str, message: str = "") -> ExecutionInfo:
    return ExecutionInfo(name=EXECUTION, uid="e-1", state=state, message=message)


def test_the_spec_becomes_a_cloud_run_request() -> None:
    req = parse_spec(spec(project="p", region="europe-west4"), uid="u")
    assert req.cloud_run is not None
    assert req.cloud_run.job_name == "wt-sandbox"
    assert req.cloud_run.results_upload_url == "https://u/o"
    assert (req.cloud_run.project, req.cloud_run.region) == ("p", "europe-west4")


@pytest.mark.parametrize(
    ("cloud_run", "message"),
    [
        ({"skipResultsArchiveUpload": True}, "exactly one of resultsUploadUrl"),
        ({"resultsUploadUrl": None}, "exactly one of resultsUploadUrl"),
        ({"jobName": ""}, "spec.cloudRun.jobName is required"),
    ],
)
def test_a_spec_the_sandbox_could_not_run_is_refused(
    cloud_run: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_spec(spec(**cloud_run), uid="u")


def test_gcp_secret_versions_are_batch_only() -> None:
    raw = spec()
    raw["env"] = [
        {"name": "K", "valueFrom": {"gcpSecretVersion": "projects/p/secrets/s/versions/1"}}
    ]
    with pytest.raises(InvalidSpecError, match="only with invoker CloudBatch"):
        parse_spec(raw, uid="u")


def _admit(raw: dict[str, Any], policy: CloudRunPolicy, **batch: Any) -> Terminal | None:
    return admit(
        parse_spec(raw, uid="u"),
        local_enabled=True,
        policy=BatchPolicy(**batch),
        defaults=BatchDefaults(project="default-proj"),
        cloud_run=policy,
    )


def test_the_admins_lists_decide_which_jobs_and_projects() -> None:
    policy = CloudRunPolicy(allowed_jobs=("wt-sandbox*",), allowed_projects=("acme-*",))
    assert _admit(spec(project="acme-prod"), policy) is None
    denied = _admit(spec(project="acme-prod", jobName="miner"), policy)
    assert denied is not None and denied.reason == Reason.POLICY_DENIED
    assert "Cloud Run job 'miner' is not allowed here" in denied.message
    # No project in the spec: the operator's default is what is checked.
    denied = _admit(spec(), policy)
    assert denied is not None and "'default-proj' is not allowed" in denied.message
    assert _admit(spec(), CloudRunPolicy()) is None  # no lists: anything


def test_kubernetes_secret_values_need_the_admins_consent() -> None:
    raw = spec()
    raw["env"] = [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    denied = _admit(raw, CloudRunPolicy())
    assert denied is not None and "plain environment overrides" in denied.message
    assert _admit(raw, CloudRunPolicy(), allow_plaintext_secrets=True) is None


def test_resume_tracks_only_a_recorded_execution() -> None:
    assert isinstance(cloudrun.resume(None), cloudrun.Trigger)
    assert isinstance(cloudrun.resume({"jobName": JOB}), cloudrun.Trigger)
    recorded = cloudrun.execution_status(JOB, info("PENDING"))
    assert cloudrun.resume(recorded) == cloudrun.Track(execution=recorded)


@pytest.mark.parametrize(
    ("state", "phase", "reason"),
    [
        ("RUNNING", Phase.SUBMITTED, Reason.SUBMITTED),
        ("SUCCEEDED", Phase.SUCCEEDED, Reason.SUCCEEDED),
        ("FAILED", Phase.FAILED, Reason.FAILED),
        ("CANCELLED", Phase.CANCELLED, Reason.CANCELLED),
    ],
)
def test_observe_maps_each_state_to_a_phase(state: str, phase: Phase, reason: Reason) -> None:
    recorded = cloudrun.execution_status(JOB, info("PENDING"))
    moved = cloudrun.observe(recorded, info(state, "exit code 2"))
    assert moved is not None
    assert (moved.phase, moved.reason) == (phase, reason)
    assert moved.cloud_run is not None and moved.cloud_run["state"] == state
    if state == "FAILED":
        assert moved.message == "the Cloud Run execution failed; exit code 2"
    assert cloudrun.observe(moved.cloud_run, info(state)) is None  # nothing new: no write


def test_the_status_links_the_executions_console_page() -> None:
    status = cloudrun.execution_status(JOB, info("PENDING"))
    assert status["consoleUrl"] == (
        "https://console.cloud.google.com/run/jobs/executions/details/us-central1"
        "/wt-sandbox-x1/tasks?project=p"
    )


def test_a_missing_job_is_its_own_terminal_reason_and_outages_are_transient() -> None:
    missing = cloudrun.trigger_failed(PermanentSubmissionError("gone", code="NOT_FOUND"), JOB)
    assert isinstance(missing, Terminal) and missing.reason == Reason.JOB_NOT_FOUND
    assert f"the Cloud Run Job {JOB} does not exist" in missing.message
    refused = cloudrun.trigger_failed(PermanentSubmissionError("no", code="PERMISSION_DENIED"), JOB)
    assert isinstance(refused, Terminal) and refused.reason == Reason.SUBMISSION_REJECTED
    assert "Cloud Run refused" in refused.message
    outage = cloudrun.trigger_failed(TransientSubmissionError("x", code="UNAVAILABLE"), JOB)
    assert isinstance(outage, Transient)
