"""The operator's pure layers: spec → invoker arguments, outcome → status, settings.

No cluster: these are the decisions a user sees in ``kubectl get wfr -o yaml``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wt_invokers import InstallationError, PermanentSubmissionError, TransientSubmissionError
from wt_operator.config import ConfigError, OperatorConfig
from wt_operator.errors import classify
from wt_operator.spec import InvalidSpecError, batch_run_kwargs, parse_spec, run_kwargs
from wt_operator.status import Reason, batch_outcome, is_active, log_tail, status_patch

ROOT = Path(__file__).resolve().parents[2]

LOCAL = {
    "workflow": "patrol-report >=1.2",
    "invoker": "Local",
    "resultsUrl": "file:///tmp/r",
    "config": {"region": "north", "days": 3},
}


def test_local_spec_becomes_the_invokers_run_arguments() -> None:
    req = parse_spec(
        {
            **LOCAL,
            "executionMode": "async",
            "mockIo": True,
            "otel": {"exporter": "console", "consoleExporterDst": "stdout"},
            "lithopsConfig": {"backend": "localhost"},
            "env": [{"name": "A", "value": "1"}],
        },
        uid="u-1",
    )
    assert req.workflow_run_id == "u-1"  # defaults to metadata.uid
    kwargs = run_kwargs(req, config_text=req.config_text or "", extra_env={"A": "1"})
    assert kwargs == {
        "workflow_run_id": "u-1",
        "config_text": "region: north\ndays: 3\n",
        "results_url": "file:///tmp/r",
        "execution_mode": "async",
        "mock_io": True,
        "otel_exporter": "console",
        "otel_console_exporter_dst": "stdout",
        "extra_env": {"A": "1"},
        "lithops_config_text": "backend: localhost\n",
    }
    assert yaml.safe_load(kwargs["config_text"]) == {"region": "north", "days": 3}


def test_explicit_run_id_and_references_are_kept_unresolved() -> None:
    req = parse_spec(
        {
            **{k: v for k, v in LOCAL.items() if k != "config"},
            "workflowRunId": "nightly-42",
            "configFrom": {"configMapKeyRef": {"name": "cfg", "key": "run.yaml"}},
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
                {
                    "name": "OPT",
                    "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k", "optional": True}},
                },
            ],
        },
        uid="u-2",
    )
    assert req.workflow_run_id == "nightly-42"
    assert req.config_text is None
    assert str(req.config_ref) == "ConfigMap 'cfg' key 'run.yaml'"
    assert [(e.name, e.ref.kind if e.ref else None) for e in req.env] == [
        ("TOKEN", "Secret"),
        ("OPT", "ConfigMap"),
    ]
    assert req.env[1].ref is not None and req.env[1].ref.optional


@pytest.mark.parametrize(
    ("workflow", "fragment"), [("", "not a valid MatchSpec"), ("pkg >=>=1", "not a valid")]
)
def test_unparseable_matchspec_is_an_invalid_spec(workflow: str, fragment: str) -> None:
    with pytest.raises(InvalidSpecError, match=fragment):
        parse_spec({**LOCAL, "workflow": workflow}, uid="u")


def test_cloud_batch_spec_maps_every_option() -> None:
    req = parse_spec(
        {
            **LOCAL,
            "invoker": "CloudBatch",
            "cloudBatch": {
                "image": "europe-docker.pkg.dev/p/r/wf:1",
                "cpuMilli": 2000,
                "memoryMib": 4096,
                "machineType": "n2-standard-4",
                "gpu": {"type": "nvidia-tesla-t4", "count": 2},
                "network": {"network": "n", "subnetwork": "s", "noExternalIp": True},
                "labels": {"team": "geo"},
            },
        },
        uid="u",
    )
    assert req.batch is not None
    assert batch_run_kwargs(req.batch, timeout=60.0) == {
        "docker_image_uri": "europe-docker.pkg.dev/p/r/wf:1",
        "cpu_milli": 2000,
        "memory_mib": 4096,
        "machine_type": "n2-standard-4",
        "gpu_type": "nvidia-tesla-t4",
        "gpu_count": 2,
        "network": "n",
        "subnetwork": "s",
        "no_external_ip": True,
        "labels": {"team": "geo"},
        "timeout": 60.0,
    }


def test_cloud_batch_without_image_is_invalid() -> None:
    with pytest.raises(InvalidSpecError, match=r"cloudBatch\.image"):
        parse_spec({**LOCAL, "invoker": "CloudBatch"}, uid="u")


NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def _conds(status: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}  # type: ignore[attr-defined,index]


def test_running_status_is_in_progress_for_people_and_kstatus() -> None:
    patch = status_patch("Running", Reason.RUNNING, "running", generation=1, now=NOW)
    assert patch["phase"] == "Running"
    assert patch["observedGeneration"] == 1
    assert patch["startTime"] == "2026-11-28T12:00:00Z"
    assert "completionTime" not in patch
    assert _conds(patch) == {
        "Succeeded": ("Unknown", "Running"),
        "Reconciling": ("True", "Running"),
        "Ready": ("False", "Running"),
        "Stalled": ("False", "Running"),
    }


def test_success_and_failure_are_terminal_with_kstatus_conditions() -> None:
    running = status_patch("Running", Reason.RUNNING, "", generation=1, now=NOW)
    later = NOW + dt.timedelta(seconds=30)
    ok = status_patch(
        "Succeeded", Reason.SUCCEEDED, "", generation=1, previous=running, now=later, exitCode=0
    )
    assert ok["startTime"] == running["startTime"]  # kept from the first transition
    assert ok["completionTime"] == "2026-11-28T12:00:30Z"
    assert ok["exitCode"] == 0
    assert _conds(ok)["Succeeded"] == ("True", "Succeeded")
    assert _conds(ok)["Ready"] == ("True", "Succeeded")
    assert _conds(ok)["Reconciling"][0] == "False"
    bad = status_patch("Failed", Reason.DEADLINE_EXCEEDED, "too slow", generation=1, now=later)
    assert _conds(bad)["Succeeded"] == ("False", "DeadlineExceeded")
    assert _conds(bad)["Stalled"] == ("True", "DeadlineExceeded")
    assert not is_active(bad) and not is_active(ok) and is_active(running) and is_active(None)


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    queued = status_patch("Queued", Reason.QUEUED, "", generation=1, now=NOW)
    running = status_patch(
        "Running",
        Reason.RUNNING,
        "",
        generation=1,
        previous=queued,
        now=NOW + dt.timedelta(seconds=5),
    )
    succ = {c["type"]: c for c in running["conditions"]}
    assert succ["Succeeded"]["lastTransitionTime"] == "2026-11-28T12:00:00Z"  # Unknown → Unknown


def test_log_tail_is_bounded() -> None:
    lines = [f"line {i}" for i in range(1000)]
    assert log_tail(lines, max_lines=3) == "line 997\nline 998\nline 999"
    huge = log_tail(["x" * 10_000], max_lines=5, max_chars=100)
    assert len(huge) == 100 and huge.startswith("…")
    assert log_tail(lines, max_lines=0) == ""


def test_batch_states_map_to_phases() -> None:
    assert batch_outcome("SUCCEEDED") == ("Succeeded", "Succeeded")
    assert batch_outcome("FAILED") == ("Failed", "Failed")
    assert batch_outcome("RUNNING") is None
    assert batch_outcome("QUEUED") is None


def test_errors_are_classified_in_one_place() -> None:
    denied = classify(PermanentSubmissionError("no", code="PERMISSION_DENIED"))
    assert denied is not None and denied.reason == Reason.SUBMISSION_REJECTED
    assert "PERMISSION_DENIED" in denied.message
    gone = classify(PermanentSubmissionError("gone", code="NOT_FOUND"))
    assert gone is not None and gone.reason == Reason.INVOKER_LOST
    missing = classify(InstallationError("pixi not found"))
    assert missing is not None and missing.reason == Reason.NOT_INSTALLED
    assert classify(TransientSubmissionError("later", code="UNAVAILABLE")) is None
    assert classify(RuntimeError("bug")) is None


def test_settings_are_read_once_and_validated(tmp_path: Path) -> None:
    cfg = OperatorConfig.from_env(
        {
            "WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD": str(tmp_path),
            "WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS": "8",
            "GOOGLE_CLOUD_PROJECT": "proj",
            "BATCH_EMULATOR_HOST": "127.0.0.1:1",
        }
    )
    assert cfg.workspace == tmp_path
    assert cfg.max_concurrent_local_runs == 8
    assert cfg.google_cloud_project == "proj"
    assert cfg.cloud_run_region == "us-central1"
    assert cfg.batch_emulator_host == "127.0.0.1:1"
    with pytest.raises(ConfigError, match="WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS"):
        OperatorConfig.from_env({"WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS": "zero"})
    with pytest.raises(ConfigError, match="WT_OPERATOR_LOCAL_LAUNCHER"):
        OperatorConfig.from_env({"WT_OPERATOR_LOCAL_LAUNCHER": "docker"})


def test_cli_requires_an_explicit_watch_scope() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wt_operator"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "--namespace" in proc.stderr and "--all-namespaces" in proc.stderr


def test_committed_crd_matches_its_generator() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "gen_crd.py"), "--check"], check=False
    )
    assert proc.returncode == 0, "crds/ is stale: run `make crds`"
