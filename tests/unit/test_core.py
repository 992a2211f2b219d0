"""The operator's pure core: spec → request, decisions → status, errors, policy, settings.

No cluster and no I/O: these are the decisions a user sees in ``kubectl get wfr -o yaml``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wt_invokers import (
    InstallationError,
    InvocationStartError,
    InvokerConfigurationError,
    PermanentSubmissionError,
    TransientSubmissionError,
)
from wt_invokers.cloud_batch import BatchJobInfo
from wt_operator.api import GITOPS_MARKERS, Phase, Reason
from wt_operator.config import ConfigError, OperatorConfig
from wt_operator.core import batch, local
from wt_operator.core.errors import (
    InvalidSpecError,
    Terminal,
    Transient,
    classify,
)
from wt_operator.core.globs import glob_match
from wt_operator.core.invocation import invocation, trace_id, traceparent
from wt_operator.core.masking import Masker
from wt_operator.core.retention import expiry, gitops_manager, ttl_for
from wt_operator.core.spec import parse_spec
from wt_operator.core.status import (
    Transition,
    is_active,
    log_tail,
    remaining,
    status_patch,
)
from wt_operator.shell.peering import oldest_first_priority

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
    inv = invocation(req, uid="u-1", config_text=req.config_text or "", env={"A": "1"})
    assert (inv.workflow_run_id, inv.run_uid, inv.results_url) == ("u-1", "u-1", "file:///tmp/r")
    assert (inv.execution_mode, inv.mock_io) == ("async", True)
    assert (inv.otel_exporter, inv.otel_console_exporter_dst) == ("console", "stdout")
    assert inv.extra_env["A"] == "1" and inv.extra_env["TRACEPARENT"] == traceparent("u-1")
    assert inv.lithops_config_text == "backend: localhost\n"
    assert yaml.safe_load(inv.config_text) == {"region": "north", "days": 3}


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
    opts = req.batch.options
    assert (opts.docker_image_uri, opts.cpu_milli, opts.memory_mib) == (
        "europe-docker.pkg.dev/p/r/wf:1",
        2000,
        4096,
    )
    assert (opts.machine_type, opts.gpu_type, opts.gpu_count) == (
        "n2-standard-4",
        "nvidia-tesla-t4",
        2,
    )
    assert (opts.network, opts.subnetwork, opts.no_external_ip) == ("n", "s", True)
    assert dict(opts.labels) == {"team": "geo"}


def test_cloud_batch_without_image_is_invalid() -> None:
    with pytest.raises(InvalidSpecError, match=r"cloudBatch\.image"):
        parse_spec({**LOCAL, "invoker": "CloudBatch"}, uid="u")


NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def _conds(status: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}  # type: ignore[attr-defined,index]


def _patch(
    phase: str,
    reason: Reason,
    message: str = "",
    previous: object = None,
    now: dt.datetime = NOW,
    **fields: object,
) -> dict[str, object]:
    t = Transition(Phase(phase), reason, message, **fields)  # type: ignore[arg-type]
    return dict(status_patch(t, previous=previous or {}, generation=1, now=now))  # type: ignore[arg-type]


def test_running_status_is_in_progress_for_people_and_kstatus() -> None:
    patch = _patch("Running", Reason.RUNNING, "running")
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
    running = _patch("Running", Reason.RUNNING)
    later = NOW + dt.timedelta(seconds=90)
    ok = _patch("Succeeded", Reason.SUCCEEDED, previous=running, now=later, exit_code=0)
    assert ok["startTime"] == running["startTime"]  # kept from the first transition
    assert ok["completionTime"] == "2026-11-28T12:01:30Z"
    assert ok["duration"] == "90s"  # as kubectl prints a Job of 90 s
    assert (ok["exitCode"], ok["reason"]) == (0, "Succeeded")
    assert _conds(ok)["Succeeded"] == ("True", "Succeeded")
    assert _conds(ok)["Ready"] == ("True", "Succeeded")
    assert _conds(ok)["Reconciling"][0] == "False"
    bad = _patch("Failed", Reason.DEADLINE_EXCEEDED, "too slow", now=later)
    assert _conds(bad)["Succeeded"] == ("False", "DeadlineExceeded")
    assert _conds(bad)["Stalled"] == ("True", "DeadlineExceeded")
    assert not is_active(bad) and not is_active(ok) and is_active(running) and is_active(None)


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    queued = _patch("Queued", Reason.QUEUED)
    running = _patch("Running", Reason.RUNNING, previous=queued, now=NOW + dt.timedelta(seconds=5))
    succ = {c["type"]: c for c in running["conditions"]}  # type: ignore[attr-defined]
    assert succ["Succeeded"]["lastTransitionTime"] == "2026-11-28T12:00:00Z"  # Unknown → Unknown


def test_log_tail_is_bounded() -> None:
    lines = [f"line {i}" for i in range(1000)]
    assert log_tail(lines, max_lines=3) == "line 997\nline 998\nline 999"
    huge = log_tail(["x" * 10_000], max_lines=5, max_chars=100)
    assert len(huge) == 100 and huge.startswith("…")
    assert log_tail(lines, max_lines=0) == ""


@pytest.mark.parametrize(
    ("state", "phase", "reason"),
    [
        ("SUCCEEDED", "Succeeded", "Succeeded"),
        ("FAILED", "Failed", "Failed"),
        ("CANCELLED", "Cancelled", "Cancelled"),
        ("DELETION_IN_PROGRESS", "Failed", "InvokerLost"),
        ("RUNNING", "Submitted", "Submitted"),
    ],
)
def test_batch_states_map_to_phases(state: str, phase: str, reason: str) -> None:
    job = batch.job_status("projects/p/locations/r/jobs/j", uid="u", state="QUEUED")
    moved = batch.observe(job, BatchJobInfo(job["jobName"], "u", state))
    assert moved is not None and (moved.phase, moved.reason) == (phase, reason)
    assert batch.observe({**job, "state": "RUNNING"}, BatchJobInfo("", "u", "RUNNING")) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermanentSubmissionError("no", code="PERMISSION_DENIED"), Reason.SUBMISSION_REJECTED),
        (PermanentSubmissionError("gone", code="NOT_FOUND"), Reason.INVOKER_LOST),
        (PermanentSubmissionError("taken", code="ALREADY_EXISTS"), Reason.JOB_CONFLICT),
        (InstallationError("pixi not found"), Reason.NOT_INSTALLED),
        (InvokerConfigurationError("bad url"), Reason.INVALID_SPEC),
        (InvalidSpecError("bad spec"), Reason.INVALID_SPEC),
        (InvocationStartError("E2BIG"), Reason.START_FAILED),
        (NotADirectoryError(20, "Not a directory"), Reason.START_FAILED),
        (RuntimeError("bug"), Reason.START_FAILED),
    ],
)
def test_errors_are_classified_in_one_place(error: BaseException, expected: Reason) -> None:
    verdict = classify(error)
    assert isinstance(verdict, Terminal) and verdict.reason == expected


def test_transient_errors_decide_nothing() -> None:
    assert isinstance(classify(TransientSubmissionError("later", code="UNAVAILABLE")), Transient)


def test_secrets_are_masked_in_every_form_they_take() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n"
        "AQEFAASCBKcwggSjAgEAAoIB\n-----END PRIVATE KEY-----\n"
    )
    masker = Masker(["s3cr3t-token\n", pem, "ab"])
    assert masker.mask("token: s3cr3t-token") == "token: ***"  # trailing newline stripped
    assert masker.mask("MIIEvQIBADANBgkqhkiG9w0B") == "***"  # one line of a multi-line value
    assert masker.mask(pem).count("MIIE") == 0
    assert masker.mask("ab cd") == "ab cd"  # too short to mask without destroying output
    assert not Masker([]) and Masker(["abc"])


def test_log_tail_is_cut_after_masking() -> None:
    secret = "x" * 50 + "SECRET-VALUE"
    masker = Masker([secret])
    lines = [masker.mask(secret)] + ["y" * 10] * 3
    tail = log_tail(lines, max_lines=5, max_chars=40)
    assert "SECRET" not in tail and "xxxx" not in tail


def test_the_trace_id_is_the_uid() -> None:
    uid = "0b5f3c4e-9f7a-4c1d-8a53-6f1e2d3c4b5a"
    assert trace_id(uid) == "0b5f3c4e9f7a4c1d8a536f1e2d3c4b5a"
    version, trace, span, flags = traceparent(uid).split("-")
    assert (version, trace, flags, len(span)) == ("00", trace_id(uid), "01", 16)
    assert len(trace_id("not-a-uuid")) == 32


def test_deadline_counts_from_start_time() -> None:
    assert remaining({"startTime": "2026-11-28T12:00:00Z"}, 60, NOW.timestamp() + 45) == 15
    assert remaining({}, 60, NOW.timestamp()) == 60  # not started: the whole budget
    assert remaining({"startTime": "2026-11-28T12:00:00Z"}, None, 0) is None


def test_ttl_is_explicit_else_the_default_but_never_for_gitops_managed_runs() -> None:
    argo = {"annotations": {"argocd.argoproj.io/tracking-id": "app:wt.dev/WorkflowRun:ns/r"}}
    flux = {"labels": {"kustomize.toolkit.fluxcd.io/name": "runs"}}
    assert ttl_for({}, {}, 600) == 600
    assert ttl_for({}, argo, 600) is None and ttl_for({}, flux, 600) is None
    assert ttl_for({"ttlSecondsAfterFinished": 0}, flux, 600) == 0  # asked for explicitly
    assert ttl_for({}, {}, None) is None
    assert gitops_manager(argo) == "Argo CD" and gitops_manager({}) is None
    # Argo CD's tracking label counts, except on what Helm installed (Helm sets it too).
    label = {"labels": {"app.kubernetes.io/instance": "runs"}}
    helm = {**label, "annotations": {"meta.helm.sh/release-name": "runs"}}
    assert gitops_manager(label) == "Argo CD" and ttl_for({}, label, 600) is None
    assert gitops_manager(helm) is None and ttl_for({}, helm, 600) == 600
    assert len(GITOPS_MARKERS) >= 4
    assert expiry({"completionTime": "2026-11-28T12:00:00Z"}, 30) == NOW.timestamp() + 30
    assert expiry({}, 30) is None


@pytest.mark.parametrize(
    ("pattern", "value", "allowed"),
    [
        ("us-docker.pkg.dev/acme/*", "us-docker.pkg.dev/acme/wf/x:1", True),
        ("us-docker.pkg.dev/acme/*", "us-docker.pkg.dev/acme-evil/x:1", False),
        ("acme-*", "acme-prod", True),
        ("acme-*", "xacme-prod", False),
        ("a.b", "aXb", False),
        # A trailing newline is not "the end": re.match with ^…$ let it through.
        ("acme-prod", "acme-prod\n", False),
        ("acme-*", "acme-prod\n", False),
    ],
)
def test_policy_globs_are_anchored_and_literal(pattern: str, value: str, allowed: bool) -> None:
    assert glob_match(value, [pattern]) is allowed


def test_the_oldest_replica_has_the_highest_priority() -> None:
    older, newer = oldest_first_priority(1_800_000_000.0), oldest_first_priority(1_800_000_000.5)
    assert older > newer
    assert len({oldest_first_priority(1_800_000_000.0) for _ in range(50)}) > 1  # no ties


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
    assert cfg.batch_defaults.project == "proj"
    assert cfg.batch_defaults.region == "us-central1"
    assert cfg.batch_emulator_host == "127.0.0.1:1"
    assert cfg.local_launcher == "prefix" and cfg.local_enabled
    assert cfg.ttl_seconds_after_finished is None
    policy = OperatorConfig.from_env(
        {
            "WT_OPERATOR_BATCH_ALLOWED_PROJECTS": "acme-prod, acme-*",
            "WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS": "true",
            "WT_OPERATOR_LOCAL_ENABLED": "false",
            "WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED": "0",
        }
    )
    assert policy.batch_policy.allowed_projects == ("acme-prod", "acme-*")
    assert policy.batch_policy.allow_plaintext_secrets and not policy.local_enabled
    assert policy.ttl_seconds_after_finished == 0
    with pytest.raises(ConfigError, match="WT_OPERATOR_LOCAL_ENABLED"):
        OperatorConfig.from_env({"WT_OPERATOR_LOCAL_ENABLED": "maybe"})
    with pytest.raises(ConfigError, match="WT_OPERATOR_LOG_MAX_BYTES"):
        OperatorConfig.from_env({"WT_OPERATOR_LOG_MAX_BYTES": "2000000"})
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


@pytest.mark.parametrize(
    ("code", "message", "recorded"),
    [
        (3, "the workflow exited with 3", 3),
        (-15, "the workflow was killed by signal 15 (SIGTERM)", 143),
        (-9, "the workflow was killed by signal 9 (SIGKILL)", 137),
    ],
)
def test_a_signal_killed_workflow_says_so_and_records_128_plus_n(
    code: int, message: str, recorded: int
) -> None:
    # The library returns -N for death by signal N (upstream's convention); status.exitCode
    # stays a shell's 128+N, never negative, and the message names the signal.
    req = parse_spec(LOCAL, uid="u-1")
    t = local.outcome(local.Exited(code), req, tail="")
    assert (t.phase, t.message, t.exit_code, t.result) == (
        Phase.FAILED,
        message,
        recorded,
        str(recorded),
    )


def test_an_environment_archive_is_parsed_for_local_runs_only_and_must_be_pinned() -> None:
    digest = "sha256:" + "ab" * 32
    archive = {"archiveUrl": "https://example.org/env.tar", "archiveDigest": digest}
    req = parse_spec({**LOCAL, "environment": archive}, uid="u")
    assert req.archive is not None
    assert (req.archive.url, req.archive.digest) == ("https://example.org/env.tar", digest)
    assert parse_spec(LOCAL, uid="u").archive is None
    with pytest.raises(InvalidSpecError, match="only with invoker Local"):
        parse_spec(
            {
                **LOCAL,
                "invoker": "CloudBatch",
                "cloudBatch": {"image": "i"},
                "environment": archive,
            },
            uid="u",
        )
    for bad, fragment in [
        ({**archive, "archiveDigest": "latest"}, "archiveDigest"),
        ({**archive, "archiveDigest": digest.upper()}, "archiveDigest"),
        ({"archiveUrl": "https://example.org/env.tar"}, "archiveDigest"),
        ({**archive, "archiveUrl": "file:///etc/passwd"}, "archiveUrl"),
    ]:
        with pytest.raises(InvalidSpecError, match=fragment):
            parse_spec({**LOCAL, "environment": bad}, uid="u")
