"""The kubectl plugin's pure parts: what ``kubectl wt`` decides before and after API calls.

Exit codes scripts branch on, the names and manifests it creates, the describe
screen, which part of a rewritten log is new. No cluster (tests/integration has those).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest

from wt_kubectl.cloud_logging import batch_log_location, cloud_run_log_location, entry_text
from wt_kubectl.core import (
    exit_code_for,
    generate_name_from,
    new_log_text,
    parse_duration,
    rerun_manifest,
    run_name,
    run_reason,
    submit_manifest,
)
from wt_kubectl.describe import render_describe
from wt_kubectl.errors import UsageError, api_error
from wt_kubectl.follow import Progress, final_lines, transition_line

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("90", 90)],
)
def test_durations_read_like_kubectl_timeouts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5x", "5m3", "-1s", "1h-5m"])
def test_bad_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(UsageError, match="30s"):
        parse_duration(text)


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({"phase": "Succeeded", "exitCode": 0}, 0),
        ({"phase": "Failed", "exitCode": 3}, 3),
        ({"phase": "Failed", "reason": "InvokerLost"}, 1),
        ({"phase": "Failed", "exitCode": -15}, 143),  # death by SIGTERM, as shells report it
        ({"phase": "Failed", "exitCode": 0}, 1),  # failed is never success
        ({"phase": "Failed", "exitCode": 300}, 1),
        ({"phase": "Cancelled"}, 130),
    ],
)
def test_a_finished_run_maps_to_the_exit_code_wait_returns(status: Any, code: int) -> None:
    assert exit_code_for(status) == code


@pytest.mark.parametrize("phase", ["Pending", "Queued", "Running", "Submitted", None])
def test_an_active_run_has_no_exit_code_yet(phase: str | None) -> None:
    assert exit_code_for({"phase": phase} if phase else {}) is None


# ---------------------------------------------------------------- names and manifests


@pytest.mark.parametrize(
    ("source", "prefix"),
    [
        ("runs/Patrol_North.yaml", "patrol-north-"),
        ("nightly.yml", "nightly-"),
        ("a.b.json", "a-b-"),
        ("-", "workflowrun-"),
        (None, "workflowrun-"),
        ("___.yaml", "workflowrun-"),
    ],
)
def test_generate_name_comes_from_the_file_name(source: str | None, prefix: str) -> None:
    assert generate_name_from(source) == prefix


def test_generate_name_leaves_room_for_the_random_suffix_within_63() -> None:
    prefix = generate_name_from("x" * 80 + ".yaml")
    assert len(prefix) + 5 <= 63 and prefix.endswith("-")


@pytest.mark.parametrize("text", ["wfr/a", "workflowrun/a", "workflowruns.wt.dev/a", "a"])
def test_run_names_accept_kubectl_resource_forms(text: str) -> None:
    assert run_name(text) == "a"


def _manifest(**meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wt.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": dict(meta),
        "spec": {"workflow": "w", "invoker": "Local", "resultsUrl": "file:///r"},
    }


def test_submit_without_a_name_uses_generate_name_from_the_file() -> None:
    body, ns = submit_manifest(
        [_manifest()], source="patrol.yaml", name=None, namespace_flag=None, default_namespace="d"
    )
    assert body["metadata"] == {"generateName": "patrol-", "namespace": "d"}
    assert ns == "d"


def test_submit_name_flag_wins_over_the_manifest() -> None:
    body, _ = submit_manifest(
        [_manifest(name="old", generateName="g-")],
        source="x.yaml",
        name="new",
        namespace_flag=None,
        default_namespace="d",
    )
    assert body["metadata"]["name"] == "new" and "generateName" not in body["metadata"]


def test_submit_of_an_exported_run_drops_what_the_server_filled_in() -> None:
    exported = _manifest(name="r", uid="u", resourceVersion="7", finalizers=["wt.dev/finalizer"])
    exported["status"] = {"phase": "Succeeded"}
    body, _ = submit_manifest(
        [None, exported], source="r.yaml", name=None, namespace_flag=None, default_namespace="d"
    )
    assert body["metadata"] == {"name": "r", "namespace": "d"}
    assert "status" not in body


def test_submit_namespace_follows_kubectl() -> None:
    _, ns = submit_manifest(
        [_manifest(namespace="team")],
        source="x",
        name=None,
        namespace_flag=None,
        default_namespace="d",
    )
    assert ns == "team"
    with pytest.raises(UsageError, match="--namespace=team"):
        submit_manifest(
            [_manifest(namespace="team")],
            source="x",
            name=None,
            namespace_flag="other",
            default_namespace="d",
        )


@pytest.mark.parametrize(
    ("docs", "error"),
    [
        ([_manifest(), _manifest()], "exactly one WorkflowRun"),
        ([], "exactly one WorkflowRun"),
        ([{"apiVersion": "v1", "kind": "ConfigMap"}], "holds a ConfigMap"),
        (["just text"], "exactly one WorkflowRun"),
    ],
)
def test_submit_refuses_anything_but_one_workflowrun(docs: list[Any], error: str) -> None:
    with pytest.raises(UsageError, match=error):
        submit_manifest(
            docs, source="f.yaml", name=None, namespace_flag=None, default_namespace="d"
        )


OLD_RUN: dict[str, Any] = {
    "apiVersion": "wt.dev/v1alpha1",
    "kind": "WorkflowRun",
    "metadata": {
        "name": "nightly-x7k2p",
        "generateName": "nightly-",
        "namespace": "team",
        "uid": "0b7c-old",
        "resourceVersion": "42",
        "labels": {"team": "geo", "app.kubernetes.io/instance": "argo-app"},
        "annotations": {
            "owner": "ana",
            "argocd.argoproj.io/tracking-id": "app:wt.dev/WorkflowRun:team/nightly",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "wt.dev/last-handled-configuration": "{}",
            "wt.dev/rerun-of": "older",
        },
        "finalizers": ["wt.dev/finalizer"],
    },
    "spec": {"workflow": "w", "invoker": "Local", "workflowRunId": "0b7c-old", "config": {"a": 1}},
    "status": {"phase": "Failed", "exitCode": 3},
}


def test_rerun_is_a_new_independent_run_with_the_same_spec() -> None:
    body = rerun_manifest(OLD_RUN, name=None)
    assert body["metadata"] == {
        "namespace": "team",
        "generateName": "nightly-",
        "labels": {"team": "geo"},
        "annotations": {"owner": "ana", "wt.dev/rerun-of": "nightly-x7k2p"},
    }
    assert body["spec"] == {"workflow": "w", "invoker": "Local", "config": {"a": 1}}
    assert "status" not in body
    body["spec"]["config"]["a"] = 2  # a deep copy: the original is untouched
    assert OLD_RUN["spec"]["config"] == {"a": 1}


def test_rerun_can_keep_the_run_id_and_take_a_name() -> None:
    body = rerun_manifest(OLD_RUN, name="again", keep_workflow_run_id=True)
    assert body["metadata"]["name"] == "again" and "generateName" not in body["metadata"]
    assert body["spec"]["workflowRunId"] == "0b7c-old"


def test_rerun_of_a_named_run_generates_from_its_name() -> None:
    old = {"metadata": {"name": "sample-fails", "namespace": "n"}, "spec": {}}
    assert rerun_manifest(old, name=None)["metadata"]["generateName"] == "sample-fails-"


# ---------------------------------------------------------------- following a stored log


def test_a_growing_log_prints_only_the_new_part() -> None:
    assert new_log_text("", "a\n") == ("a\n", False)
    assert new_log_text("a\n", "a\nb\n") == ("b\n", False)
    assert new_log_text("a\nb\n", "a\nb\n") == ("", False)


def test_a_log_cut_in_the_middle_still_lines_up_on_its_tail() -> None:
    lines = [f"stdout line {i}\n" for i in range(1, 400)]
    before = "".join(lines[:300])
    after = "".join(lines[:10]) + "[… 1234 bytes cut …]\n" + "".join(lines[200:])
    new, skipped = new_log_text(before, after)
    assert new == "".join(lines[300:]) and not skipped


def test_a_log_that_moved_past_what_was_printed_says_so() -> None:
    new, skipped = new_log_text("old tail\n", "head\n[cut]\nnewer\n")
    assert skipped and new == "head\n[cut]\nnewer\n"


# ---------------------------------------------------------------- describe and progress

FAILED_RUN: dict[str, Any] = {
    "metadata": {
        "name": "sample-fails",
        "namespace": "team",
        "uid": "u1",
        "creationTimestamp": "2026-03-01T11:58:00Z",
        "annotations": {"wt.dev/rerun-of": "sample-first"},
    },
    "spec": {"workflow": "wt-sample-workflow", "invoker": "Local"},
    "status": {
        "phase": "Failed",
        "reason": "Failed",
        "message": "exit code 3\nstderr line 1\nstderr line 2",
        "startTime": "2026-03-01T11:58:01Z",
        "completionTime": "2026-03-01T11:58:05Z",
        "exitCode": 3,
        "workflowRunId": "u1",
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "conditions": [
            {
                "type": "Succeeded",
                "status": "False",
                "reason": "Failed",
                "message": "exit code 3\n…",
            }
        ],
    },
}

EVENTS = [
    {
        "type": "Warning",
        "reason": "Failed",
        "message": "exit code 3",
        "lastTimestamp": "2026-03-01T11:58:05Z",
        "source": {"component": "wt-operator"},
    },
    {
        "type": "Normal",
        "reason": "Running",
        "message": "started",
        "lastTimestamp": "2026-03-01T11:58:01Z",
        "source": {"component": "wt-operator"},
    },
]


def test_describe_shows_why_when_and_the_events_in_order() -> None:
    text = render_describe(FAILED_RUN, EVENTS, NOW)
    lines = text.splitlines()
    assert "Phase:          Failed" in lines
    assert "Reason:         Failed" in lines
    assert "Message:        exit code 3" in lines
    assert "                stderr line 2" in lines  # the message's tail, indented under it
    assert "Duration:       4s" in lines  # computed when an older operator wrote none
    assert "Exit Code:      3" in lines
    assert "Rerun Of:       sample-first" in lines
    assert "Trace ID:       0af7651916cd43dd8448eb211c80319c" in lines
    assert "Completed:      2026-03-01T11:58:05Z (115s ago)" in lines
    assert "Output:         kubectl wt logs sample-fails -n team" in lines
    events = lines[lines.index("Events:") + 1 :]
    assert events[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert events[2].split()[:3] == ["Normal", "Running", "119s"]
    assert events[3].split()[:3] == ["Warning", "Failed", "115s"]


def test_describe_orders_events_of_one_second_by_their_event_time() -> None:
    # A fast run's Running and Failed Events share their second-precision timestamps.
    second = "2026-03-01T11:58:05Z"
    events = [
        {**EVENTS[0], "lastTimestamp": second, "eventTime": "2026-03-01T11:58:05.912000Z"},
        {**EVENTS[1], "lastTimestamp": second, "eventTime": "2026-03-01T11:58:05.101000Z"},
    ]
    lines = render_describe(FAILED_RUN, events, NOW).splitlines()
    rows = lines[lines.index("Events:") + 3 :]
    assert [row.split()[1] for row in rows] == ["Running", "Failed"]


def test_describe_prefers_the_operators_duration_and_shows_the_batch_job() -> None:
    run = {
        "metadata": {"name": "b", "namespace": "n"},
        "spec": {"invoker": "CloudBatch"},
        "status": {
            "phase": "Submitted",
            "duration": "7m",
            "startTime": "2026-03-01T11:00:00Z",
            "cloudBatch": {
                "jobName": "projects/p/locations/r/jobs/j",
                "jobUid": "j-1",
                "state": "RUNNING",
                "logsUrl": "https://console/x",
            },
        },
    }
    lines = render_describe(run, [], NOW).splitlines()
    assert "Duration:       7m so far" in lines
    assert "  State:        RUNNING" in lines
    assert "  Logs:         https://console/x" in lines
    assert "Reason:         <none>" in lines  # runs an older operator handled
    assert lines[-1] == "Events:         <none>"


def test_describe_shows_the_cloud_run_execution_and_where_its_output_is() -> None:
    execution = "projects/p/locations/europe-west4/jobs/wt-sandbox/executions/wt-sandbox-x1"
    run = {
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"invoker": "CloudRunJob"},
        "status": {
            "phase": "Submitted",
            "cloudRun": {
                "jobName": "projects/p/locations/europe-west4/jobs/wt-sandbox",
                "executionName": execution,
                "state": "RUNNING",
                "consoleUrl": "https://console/exec",
            },
        },
    }
    lines = render_describe(run, [], NOW).splitlines()
    assert "Cloud Run Execution:" in lines
    assert f"  Name:         {execution}" in lines
    assert "  Console:      https://console/exec" in lines
    assert "Output:         kubectl wt logs c -n n" in lines


def test_cloud_run_logs_select_the_executions_entries() -> None:
    execution = "projects/p1/locations/europe-west4/jobs/wt-sandbox/executions/wt-sandbox-x1"
    location = cloud_run_log_location({"executionName": execution})
    assert location is not None
    project, query, url = location
    assert project == "p1"
    assert 'resource.type="cloud_run_job" AND resource.labels.job_name="wt-sandbox"' in query
    assert 'labels."run.googleapis.com/execution_name"="wt-sandbox-x1"' in query
    assert url.startswith("https://console.cloud.google.com/logs/query;query=")
    assert cloud_run_log_location({"jobName": "projects/p1/locations/r/jobs/j"}) is None


def test_wait_prints_plain_lines_per_transition_off_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress("r", out, tty=False)
    progress.update({"phase": "Pending"})
    progress.update({"phase": "Running", "reason": "Running", "message": "started"})
    progress.update({"phase": "Running", "reason": "Running", "message": "started"})
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["r: Pending", "r: Running: started"]


def test_wait_redraws_one_line_on_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress("r", out, tty=True, clock=iter([0.0, 65.0, 65.0]).__next__)
    progress.update({"phase": "Running"})
    progress.finish(["r: Succeeded after 1m5s"])
    text = out.getvalue()
    assert text.startswith("\r\x1b[2K") and "r: Running  [65s]" in text
    assert text.endswith("\r\x1b[2Kr: Succeeded after 1m5s\n") and text.count("\n") == 1


def test_a_failed_run_ends_with_its_reason_exit_code_and_message() -> None:
    status = FAILED_RUN["status"]
    deadline = [{"type": "Succeeded", "status": "False", "reason": "DeadlineExceeded"}]
    assert transition_line("x", {**status, "conditions": deadline}) == (
        "x: Failed (DeadlineExceeded): exit code 3"
    )
    assert final_lines("x", status, 3, NOW) == [
        "x: Failed after 4s, exit code 3",
        "  exit code 3",
        "  stderr line 1",
        "  stderr line 2",
    ]


# ---------------------------------------------------------------- Cloud Logging and errors


def test_batch_logs_use_the_recorded_query_and_link() -> None:
    job = {"jobName": "projects/p1/locations/r/jobs/j", "logsQuery": "q", "logsUrl": "https://l"}
    assert batch_log_location(job) == ("p1", "q", "https://l")


def test_batch_logs_of_older_runs_derive_the_query_from_the_job() -> None:
    location = batch_log_location({"jobName": "projects/p1/locations/r/jobs/j", "jobUid": "u-9"})
    assert location is not None
    project, query, url = location
    assert project == "p1" and 'labels.job_uid="u-9"' in query
    assert "projects/p1/logs/batch_task_logs" in query
    assert url.startswith("https://console.cloud.google.com/logs/query;query=") and "p1" in url
    assert batch_log_location({}) is None


def test_log_entries_print_their_text_or_message() -> None:
    assert entry_text({"textPayload": "hello\n"}) == "hello"
    assert entry_text({"jsonPayload": {"message": "hi", "x": 1}}) == "hi"
    assert json.loads(entry_text({"jsonPayload": {"x": 1}})) == {"x": 1}


def _status(code: int, reason: str, message: str, **details: str) -> str:
    return json.dumps(
        {"kind": "Status", "code": code, "reason": reason, "message": message, "details": details}
    )


def test_not_found_names_the_namespace_and_how_to_list() -> None:
    body = _status(404, "NotFound", 'workflowruns.wt.dev "x" not found', name="x")
    msg = str(
        api_error(404, body, verb="get", resource="workflowruns.wt.dev", namespace="team", name="x")
    )
    assert msg == (
        'workflowrun "x" not found in namespace "team" '
        "(list runs with: kubectl get wfr -n team; pick another namespace with -n)"
    )


def test_a_missing_crd_says_to_install_it() -> None:
    # As `submit` calls it: with the name (or generateName) of the run being created.
    msg = str(
        api_error(
            404,
            b"404 page not found",
            verb="create",
            resource="workflowruns.wt.dev",
            namespace="n",
            name="train-",
        )
    )
    assert "install the WorkflowRun CRD" in msg


def test_forbidden_says_which_verb_and_resource_are_needed() -> None:
    body = _status(
        403,
        "Forbidden",
        'workflowruns.wt.dev is forbidden: User "ana" cannot create resource "workflowruns"',
    )
    msg = str(api_error(403, body, verb="create", resource="workflowruns.wt.dev", namespace="t"))
    assert msg.startswith(
        'forbidden: user "ana" may not create workflowruns.wt.dev in namespace "t"'
    )
    assert "edit role" in msg and "docs/kubectl-plugin.md" in msg


def test_invalid_manifests_show_the_servers_reason() -> None:
    body = _status(422, "Invalid", 'spec.invoker: Unsupported value: "Remote"')
    msg = str(api_error(422, body, verb="create", resource="workflowruns.wt.dev", namespace="t"))
    assert 'spec.invoker: Unsupported value: "Remote"' in msg and "kubectl explain" in msg


def test_the_reason_comes_from_the_succeeded_condition_which_every_operator_writes() -> None:
    # An operator older than status.reason leaves the CRD's default "Pending" there.
    stale = {"reason": "Pending", "conditions": [{"type": "Succeeded", "reason": "Failed"}]}
    assert run_reason(stale) == "Failed"
    assert run_reason({"reason": "Queued"}) == "Queued"
    assert run_reason({}) == ""
