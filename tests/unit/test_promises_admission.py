"""What the README promises before anything runs: the spec, the admin's policy, errors, retention.

Each test names a promise a run author or an admin relies on and fails by assertion when
the decision behind it is broken: what is refused and why, which errors end a run and which
are retried, what the workflow is told, and when a finished run is deleted.
"""

from __future__ import annotations

from typing import Any

import pytest

from wt_invokers import PermanentSubmissionError, TransientSubmissionError
from wt_operator.api import Reason
from wt_operator.core.errors import Terminal, Transient, classify
from wt_operator.core.invocation import invocation, trace_id
from wt_operator.core.policy import BatchDefaults, BatchPolicy, admit, placement
from wt_operator.core.retention import expiry, ttl_for
from wt_operator.core.spec import InvalidSpecError, parse_spec

UID = "0b5f3c4e-9f7a-4c1d-8a53-6f1e2d3c4b5a"
LOCAL: dict[str, Any] = {
    "workflow": "wt-sample-workflow >=1.2",
    "invoker": "Local",
    "resultsUrl": "file:///tmp/results/",
}
BATCH: dict[str, Any] = {
    "workflow": "wt-sample-workflow >=1.2",
    "invoker": "CloudBatch",
    "resultsUrl": "gs://b/r/",
    "cloudBatch": {"image": "us-docker.pkg.dev/acme/wf/sample:1.2", "project": "acme-prod"},
}
SECRET_ENV = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]


def _admit(spec: dict[str, Any], *, local_enabled: bool = True, **policy: Any) -> Terminal | None:
    return admit(
        parse_spec(spec, uid=UID),
        local_enabled=local_enabled,
        policy=BatchPolicy(**policy),
        defaults=BatchDefaults(project="default-project", service_account="sa@default"),
    )


def test_local_runs_switched_off_are_policy_denied_naming_the_setting() -> None:
    denied = _admit(LOCAL, local_enabled=False)
    assert denied is not None and denied.reason == Reason.POLICY_DENIED
    assert "WT_OPERATOR_LOCAL_ENABLED=false" in denied.message
    assert _admit(LOCAL) is None
    assert _admit(BATCH, local_enabled=False) is None  # only Local is switched off


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        ({"allowed_projects": ("acme-*",)}, True),
        ({"allowed_projects": ("other-*",)}, False),
        ({"allowed_projects": ("acme-pro",)}, False),  # anchored: no prefix match
        ({"allowed_images": ("us-docker.pkg.dev/acme/*",)}, True),
        ({"allowed_images": ("us-docker.pkg.dev/other/*",)}, False),
        ({"allowed_service_accounts": ("sa@default",)}, True),  # the default counts
        ({"allowed_service_accounts": ("sa@other",)}, False),
    ],
)
def test_batch_runs_outside_the_admins_lists_are_denied(
    policy: dict[str, Any], allowed: bool
) -> None:
    denied = _admit(BATCH, **policy)
    assert (denied is None) is allowed
    if denied is not None:
        assert denied.reason == Reason.POLICY_DENIED
        assert "allowed" in denied.message and "not started" in denied.message


def test_a_restricted_value_the_run_does_not_set_is_denied() -> None:
    no_account = admit(
        parse_spec(BATCH, uid=UID),
        local_enabled=True,
        policy=BatchPolicy(allowed_service_accounts=("sa@*",)),
        defaults=BatchDefaults(project="p"),
    )
    assert no_account is not None and "set spec.cloudBatch.serviceAccount" in no_account.message


def test_kubernetes_secrets_are_not_copied_into_a_batch_job_unless_allowed() -> None:
    denied = _admit({**BATCH, "env": SECRET_ENV})
    assert denied is not None and "gcpSecretVersion" in denied.message
    assert _admit({**BATCH, "env": SECRET_ENV}, allow_plaintext_secrets=True) is None
    assert _admit({**LOCAL, "env": SECRET_ENV}) is None  # Local runs read them in the pod


def test_the_runs_placement_wins_over_the_operators_defaults() -> None:
    where = placement(parse_spec(BATCH, uid=UID), BatchDefaults(project="d", region="europe-west4"))
    assert (where.project, where.region) == ("acme-prod", "europe-west4")
    spec = {**BATCH, "cloudBatch": {**BATCH["cloudBatch"], "region": "asia-east1"}}
    assert placement(parse_spec(spec, uid=UID), BatchDefaults()).region == "asia-east1"


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PYTHONPATH", "BASH_ENV", "PATH", "WT_X"])
def test_a_reserved_env_name_is_an_invalid_spec(name: str) -> None:
    with pytest.raises(InvalidSpecError, match=name):
        parse_spec({**LOCAL, "env": [{"name": name, "value": "x"}]}, uid=UID)


def test_the_results_variable_cannot_be_set_by_the_author() -> None:
    spec = {**LOCAL, "env": [{"name": "MY_RESULTS", "value": "x"}]}
    with pytest.raises(InvalidSpecError, match="resultsUrl"):
        parse_spec(spec, uid=UID, results_env_var="MY_RESULTS")
    assert parse_spec(spec, uid=UID).env[0].name == "MY_RESULTS"


def test_a_secret_manager_version_is_refused_for_local_runs() -> None:
    env = [{"name": "T", "valueFrom": {"gcpSecretVersion": "projects/p/secrets/s/versions/1"}}]
    with pytest.raises(InvalidSpecError, match="only with invoker CloudBatch"):
        parse_spec({**LOCAL, "env": env}, uid=UID)
    assert parse_spec({**BATCH, "env": env}, uid=UID).env[0].gcp_secret_version


def test_the_workflow_is_told_its_run_id_which_defaults_to_the_uid() -> None:
    assert parse_spec(LOCAL, uid=UID).workflow_run_id == UID
    assert parse_spec({**LOCAL, "workflowRunId": "copied"}, uid=UID).workflow_run_id == "copied"


def test_the_workflow_gets_its_env_results_and_trace_context_but_is_marked_by_the_uid() -> None:
    req = parse_spec({**LOCAL, "workflowRunId": "copied", "config": {"a": 1}}, uid=UID)
    inv = invocation(req, uid=UID, config_text="a: 1\n", env={"TOKEN": "t"})
    assert (inv.workflow_run_id, inv.run_uid) == ("copied", UID)
    assert inv.results_url == "file:///tmp/results/" and inv.config_text == "a: 1\n"
    assert inv.extra_env["TOKEN"] == "t"
    assert inv.extra_env["TRACEPARENT"].split("-")[1] == trace_id(UID) == UID.replace("-", "")


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (TransientSubmissionError("later", code="UNAVAILABLE"), Transient),
        (PermanentSubmissionError("no", code="PERMISSION_DENIED"), Terminal),
        (InvalidSpecError("bad"), Terminal),
        (RuntimeError("bug"), Terminal),
    ],
)
def test_transient_errors_never_end_a_run_and_the_rest_end_it_once(
    error: BaseException, verdict: type
) -> None:
    assert isinstance(classify(error), verdict)


def test_a_refused_batch_submission_names_the_code() -> None:
    verdict = classify(PermanentSubmissionError("denied", code="PERMISSION_DENIED"))
    assert isinstance(verdict, Terminal)
    assert verdict.reason == Reason.SUBMISSION_REJECTED and "PERMISSION_DENIED" in verdict.message


def test_an_unexpected_error_ends_the_run_with_its_type() -> None:
    verdict = classify(LookupError("bug"))
    assert isinstance(verdict, Terminal) and verdict.reason == Reason.START_FAILED
    assert "LookupError" in verdict.message


ARGO = {"annotations": {"argocd.argoproj.io/tracking-id": "app:wt.dev/WorkflowRun:ns/r"}}


@pytest.mark.parametrize(
    ("spec", "metadata", "default", "ttl"),
    [
        ({}, {}, None, None),  # kept forever by default
        ({}, {}, 600, 600),  # the admin's default
        ({"ttlSecondsAfterFinished": 30}, {}, 600, 30),  # the run's own wins
        ({"ttlSecondsAfterFinished": 0}, {}, None, 0),  # 0: at once, not "unset"
        ({}, ARGO, 600, None),  # never the default for a GitOps-managed run
        ({"ttlSecondsAfterFinished": 5}, ARGO, 600, 5),
    ],
)
def test_a_finished_run_is_deleted_after_its_ttl(
    spec: dict[str, Any], metadata: dict[str, Any], default: int | None, ttl: int | None
) -> None:
    assert ttl_for(spec, metadata, default) == ttl


def test_the_ttl_counts_from_completion_and_an_unfinished_run_never_expires() -> None:
    done = {"startTime": "2026-11-28T11:00:00Z", "completionTime": "2026-11-28T12:00:00Z"}
    assert expiry(done, 60) == expiry({"completionTime": "2026-11-28T12:01:00Z"}, 0)
    assert expiry({"startTime": "2026-11-28T11:00:00Z"}, 60) is None
