"""CloudBatchInvoker through the REAL google-cloud-batch async client over real gRPC.

The only stand-in is Google Cloud Batch itself: ``InProcessBatchServer`` (a gRPC
BatchService on loopback, reached through ``BATCH_EMULATOR_HOST``) — GCP cannot
run here. Its counters let the tests see what reached "Batch", so "no RPC was
made" and "no second job was created" are asserted, not assumed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest
from google.cloud import batch_v1
from hypothesis import given, settings
from hypothesis import strategies as st

from wt_invokers import (
    CloudBatchInvoker,
    InvokerConfigurationError,
    PermanentSubmissionError,
    TransientSubmissionError,
)
from wt_invokers.cloud_batch import (
    JOB_ID_PATTERN,
    LITHOPS_CONFIG_JSON_ENV_VAR,
    RUN_ID_LABEL,
    job_id,
    job_logs_query,
    job_logs_url,
    make_batch_client,
)
from wt_invokers.local import PROCESS_MARKER_ENV_VAR, RUN_ID_ENV_VAR
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.workflows import SAMPLE_WORKFLOW

IMAGE = "europe-docker.pkg.dev/wt/wf/sample:1.2.0"
PARENT = "projects/wt-test/locations/us-central1"
GCP_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUD_RUN_REGION", "BATCH_SERVICE_ACCOUNT")

Make = Callable[..., CloudBatchInvoker]


@pytest.fixture
def server() -> Iterator[InProcessBatchServer]:
    """Google Cloud Batch STAND-IN: a real gRPC BatchService on loopback."""
    with InProcessBatchServer() as srv:
        yield srv


@pytest.fixture
def batch_env(
    server: InProcessBatchServer, monkeypatch: pytest.MonkeyPatch
) -> InProcessBatchServer:
    """The environment an operator pod would have, pointed at the stand-in."""
    for name in (*GCP_ENV, "WT_INVOKERS__RESULTS_ENV_VAR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BATCH_EMULATOR_HOST", server.address)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "wt-test")
    return server


@pytest.fixture
async def make(batch_env: InProcessBatchServer) -> AsyncIterator[Make]:
    """Invokers with fast backoff; their own clients are closed afterwards."""
    made: list[CloudBatchInvoker] = []

    def factory(**kwargs: Any) -> CloudBatchInvoker:
        kwargs.setdefault("initial_backoff", 0.01)
        kwargs.setdefault("max_backoff", 0.05)
        inv = CloudBatchInvoker(SAMPLE_WORKFLOW, **kwargs)
        made.append(inv)
        return inv

    yield factory
    for inv in made:
        await inv.close()


async def submit(inv: CloudBatchInvoker, run_id: str = "run-1", **kwargs: Any) -> None:
    kwargs.setdefault("docker_image_uri", IMAGE)
    await inv.run(run_id, "steps: 3\n", "gs://wt/results/run-1/", "local", True, **kwargs)


# -- the job that reaches Batch ----------------------------------------------------------


async def test_job_shape_is_what_batch_needs_and_nothing_of_the_operator_leaks(
    make: Make, server: InProcessBatchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WT_SENTINEL_OPERATOR_SECRET", "must-not-leak")
    monkeypatch.setenv("BATCH_SERVICE_ACCOUNT", "runner@wt-test.iam.gserviceaccount.com")
    extra_env = {"API_TOKEN": "t0k", "MODE": "fast"}
    labels = {"Team": "Data Science", "cost-center": "A" * 80}
    inv = make(forward_wt_env=False)  # as the operator builds it
    await inv.run(
        "Nightly Run #7",
        "name: demo\nparams:\n  alpha: 0.5\n  items: [1, 2]\n",
        "gs://wt/results/nightly-7/",
        "distributed",
        False,
        otel_exporter="otlp",
        otel_console_exporter_dst="/tmp/otel.txt",
        extra_env=extra_env,
        lithops_config_text="lithops:\n  backend: gcp_batch\n",
        docker_image_uri=IMAGE,
        cpu_milli=4000,
        memory_mib=16384,
        machine_type="n1-standard-8",
        timeout=3600.5,
        gpu_type="nvidia-tesla-t4",
        gpu_count=2,
        network="global/networks/wt",
        subnetwork="regions/us-central1/subnetworks/wt",
        no_external_ip=True,
        labels=labels,
    )

    assert inv.job_name == f"{PARENT}/jobs/{job_id('Nightly Run #7')}"
    job = server.jobs[inv.job_name]
    assert inv.job_uid == job.uid
    assert len(job.task_groups) == 1
    group = job.task_groups[0]
    assert group.task_count == 1
    assert len(group.task_spec.runnables) == 1
    container = group.task_spec.runnables[0].container
    assert container.image_uri == IMAGE
    assert list(container.commands) == [
        *["pixi", "run", "-e", "default", SAMPLE_WORKFLOW],
        *["run", "--config-json", '{"name":"demo","params":{"alpha":0.5,"items":[1,2]}}'],
        *["--execution-mode", "distributed", "--no-mock-io"],
        *["--otel-exporter", "otlp", "--otel-console-exporter-dst", "/tmp/otel.txt"],
    ]
    assert dict(group.task_spec.environment.variables) == {
        "API_TOKEN": "t0k",
        "MODE": "fast",
        "WT_RESULTS": "gs://wt/results/nightly-7/",
        RUN_ID_ENV_VAR: "Nightly Run #7",
        PROCESS_MARKER_ENV_VAR: "Nightly Run #7",
        LITHOPS_CONFIG_JSON_ENV_VAR: '{"lithops":{"backend":"gcp_batch"}}',
    }
    assert extra_env == {"API_TOKEN": "t0k", "MODE": "fast"}  # the caller's dict is untouched
    assert group.task_spec.compute_resource.cpu_milli == 4000
    assert group.task_spec.compute_resource.memory_mib == 16384
    assert group.task_spec.max_run_duration.total_seconds() == 3601
    instance = job.allocation_policy.instances[0]
    assert instance.policy.machine_type == "n1-standard-8"
    [gpu] = instance.policy.accelerators
    assert (gpu.type_, gpu.count) == ("nvidia-tesla-t4", 2)
    assert instance.install_gpu_drivers
    [nic] = job.allocation_policy.network.network_interfaces
    assert nic.network == "global/networks/wt"
    assert nic.subnetwork == "regions/us-central1/subnetworks/wt"
    assert nic.no_external_ip_address
    assert job.allocation_policy.service_account.email == "runner@wt-test.iam.gserviceaccount.com"
    assert job.logs_policy.destination == batch_v1.LogsPolicy.Destination.CLOUD_LOGGING
    assert job.labels[RUN_ID_LABEL] == "nightly_run_7"
    assert job.labels["team"] == "data_science"
    assert len(job.labels["cost-center"]) <= 63
    assert labels["Team"] == "Data Science"
    assert "must-not-leak" not in str(job)


async def test_defaults_need_only_project_and_image(
    make: Make, server: InProcessBatchServer
) -> None:
    inv = make()
    await submit(inv)
    job = server.jobs[f"{PARENT}/jobs/{job_id('run-1')}"]
    spec = job.task_groups[0].task_spec
    assert (spec.compute_resource.cpu_milli, spec.compute_resource.memory_mib) == (8000, 32768)
    assert "--mock-io" in spec.runnables[0].container.commands
    assert not job.allocation_policy.instances[0].policy.accelerators
    assert not job.allocation_policy.network.network_interfaces
    assert not job.allocation_policy.service_account.email
    assert job.status.state == batch_v1.JobStatus.State.QUEUED


async def test_constructor_arguments_override_the_environment(
    make: Make, server: InProcessBatchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_RUN_REGION", "europe-west4")
    from_env = make()
    assert (from_env.project_id, from_env.region) == ("wt-test", "europe-west4")
    inv = make(project_id="other", region="asia-east1", service_account="sa@x.iam")
    await submit(inv)
    assert inv.job_name == f"projects/other/locations/asia-east1/jobs/{job_id('run-1')}"
    assert server.jobs[inv.job_name].allocation_policy.service_account.email == "sa@x.iam"


# -- rejected before any RPC ---------------------------------------------------------------


async def test_missing_project_is_a_configuration_error_of_run_not_of_the_constructor(
    batch_env: InProcessBatchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    inv = CloudBatchInvoker(SAMPLE_WORKFLOW)  # as upstream: asking needs no GCP settings
    assert inv.entrypoint == f"pixi run -e default {SAMPLE_WORKFLOW}"
    assert await inv.is_installed()
    with pytest.raises(InvokerConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        await submit(inv)
    assert batch_env.calls == {}
    # Settings are read when a call needs them: a project set later is used.
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "late-project")
    await submit(inv)
    assert inv.job_name is not None and inv.job_name.startswith("projects/late-project/")
    await inv.close()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"config_text": "a: [1, 2\n"}, "config_text is not valid YAML"),
        ({"lithops_config_text": "x: {"}, "lithops_config_text is not valid YAML"),
        ({"docker_image_uri": None}, "docker_image_uri"),
        ({"docker_image_uri": ""}, "docker_image_uri"),
        ({"workflow_run_id": ""}, "workflow_run_id"),
    ],
)
async def test_bad_input_is_rejected_before_any_rpc(
    make: Make, server: InProcessBatchServer, change: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {
        "workflow_run_id": "run-1",
        "config_text": "a: 1\n",
        "results_url": "gs://wt/r/",
        "execution_mode": "local",
        "mock_io": True,
        "docker_image_uri": IMAGE,
        **change,
    }
    with pytest.raises(ValueError, match=match) as info:
        await make().run(**args)
    assert isinstance(info.value, InvokerConfigurationError)
    assert server.calls == {}


# -- idempotency and the retry policy -----------------------------------------------------------


async def test_resubmitting_a_run_adopts_its_job_instead_of_creating_another(
    make: Make, server: InProcessBatchServer
) -> None:
    first, second = make(), make()
    await submit(first)
    await submit(second)
    assert server.created_jobs == 1
    assert server.create_calls == 2
    assert second.job_name == first.job_name
    assert second.job_uid == first.job_uid


@pytest.mark.parametrize(
    "lost_as", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
)
async def test_a_lost_create_reply_is_retried_and_the_stored_job_adopted(
    make: Make, server: InProcessBatchServer, lost_as: grpc.StatusCode
) -> None:
    server.lose_reply_after_commit("CreateJob", times=1, code=lost_as)
    inv = make()
    await submit(inv)
    assert server.created_jobs == 1
    assert server.create_calls == 2  # the lost one, then ALREADY_EXISTS
    stored = server.jobs[f"{PARENT}/jobs/{job_id('run-1')}"]
    assert (inv.job_name, inv.job_uid) == (stored.name, stored.uid)


async def test_a_burst_of_unavailable_is_retried_until_the_job_is_created(
    make: Make, server: InProcessBatchServer
) -> None:
    server.fail_next("CreateJob", grpc.StatusCode.UNAVAILABLE, times=3)
    inv = make()
    await submit(inv)
    assert server.create_calls == 4
    assert server.created_jobs == 1
    assert inv.job_name in server.jobs


async def test_permission_denied_is_permanent_and_tried_once(
    make: Make, server: InProcessBatchServer
) -> None:
    server.deny(code=grpc.StatusCode.PERMISSION_DENIED, method="CreateJob")
    with pytest.raises(PermanentSubmissionError) as info:
        await submit(make())
    assert info.value.code == "PERMISSION_DENIED"
    assert server.calls == {"CreateJob": 1}
    assert server.created_jobs == 0


async def test_transient_errors_give_up_after_max_attempts(
    make: Make, server: InProcessBatchServer
) -> None:
    server.fail_next("CreateJob", grpc.StatusCode.RESOURCE_EXHAUSTED, times=10)
    with pytest.raises(TransientSubmissionError) as info:
        await submit(make(max_attempts=3))
    assert info.value.code == "RESOURCE_EXHAUSTED"
    assert server.create_calls == 3
    assert server.created_jobs == 0


async def test_only_our_retry_policy_runs_not_the_clients_own(
    make: Make, server: InProcessBatchServer
) -> None:
    # google-cloud-batch retries GetJob on UNAVAILABLE by default; that would show as
    # more calls than our max_attempts.
    inv = make(max_attempts=2)
    await submit(inv)
    server.fail_next("GetJob", grpc.StatusCode.UNAVAILABLE, times=5)
    with pytest.raises(TransientSubmissionError):
        await inv.get_job()
    assert server.calls["GetJob"] == 2


async def test_a_job_of_another_run_under_the_same_id_is_never_adopted(
    make: Make, server: InProcessBatchServer
) -> None:
    # A copied manifest: same run id, same job id requested, another run (uid).
    await submit(make(), run_uid="uid-a", job_id="wt-copied-run")
    with pytest.raises(PermanentSubmissionError, match="belongs to another run") as info:
        await submit(make(), run_uid="uid-b", job_id="wt-copied-run")
    assert info.value.code == "ALREADY_EXISTS"
    assert server.created_jobs == 1
    # The same run submitting again still adopts its own job.
    again = make()
    await submit(again, run_uid="uid-a", job_id="wt-copied-run")
    assert again.job_name == f"{PARENT}/jobs/wt-copied-run"
    assert server.created_jobs == 1


async def test_the_job_id_and_owner_label_derive_from_the_run_uid(
    make: Make, server: InProcessBatchServer
) -> None:
    first, second = make(), make()
    await submit(first, run_uid="6f1c-uid-a")
    await submit(second, run_uid="6f1c-uid-b")  # same workflow_run_id "run-1"
    assert server.created_jobs == 2
    assert first.job_name != second.job_name
    job = server.jobs[first.job_name or ""]
    assert job.labels["wt-run-uid"] == "6f1c-uid-a"
    assert job.labels[RUN_ID_LABEL] == "run-1"


async def test_secret_manager_versions_travel_as_secret_variables(
    make: Make, server: InProcessBatchServer
) -> None:
    version = "projects/wt-test/secrets/api-token/versions/3"
    inv = make()
    await submit(inv, secret_env={"API_TOKEN": version})
    env = server.jobs[inv.job_name or ""].task_groups[0].task_spec.environment
    assert dict(env.secret_variables) == {"API_TOKEN": version}
    assert "API_TOKEN" not in env.variables


async def test_a_config_over_128_kib_is_refused_before_any_rpc(
    make: Make, server: InProcessBatchServer
) -> None:
    big = "data: " + "x" * 140_000 + "\n"
    with pytest.raises(InvokerConfigurationError, match="128 KiB"):
        await make().run("run-1", big, "gs://wt/r/", "local", True, docker_image_uri=IMAGE)
    assert server.calls == {}


def test_logs_link_and_query_name_the_job() -> None:
    name = f"{PARENT}/jobs/wt-run-1-abc"
    assert job_logs_url(name) == (
        "https://console.cloud.google.com/batch/jobsDetail/regions/us-central1/jobs/"
        "wt-run-1-abc/logs?project=wt-test"
    )
    query = job_logs_query("wt-test", "job-uid-1")
    assert 'labels.job_uid="job-uid-1"' in query
    assert "projects/wt-test/logs/batch_task_logs" in query


# -- following the job ---------------------------------------------------------------------------


async def test_get_job_follows_the_state_the_service_reports(
    make: Make, server: InProcessBatchServer
) -> None:
    inv = make()
    await submit(inv)
    info = await inv.get_job()
    assert (info.name, info.uid, info.state, info.last_event) == (
        inv.job_name,
        inv.job_uid,
        "QUEUED",
        "",
    )
    assert info.labels[RUN_ID_LABEL] == "run-1"
    server.set_job_state(job_id("run-1"), "RUNNING")
    assert (await inv.get_job()).state == "RUNNING"
    server.set_job_state(inv.job_name or "", "FAILED", description="task 0 exited with 3")
    failed = await inv.get_job()
    assert (failed.state, failed.last_event, failed.is_terminal) == (
        "FAILED",
        "task 0 exited with 3",
        True,
    )


async def test_get_job_of_a_job_that_is_gone_is_permanent_not_found(make: Make) -> None:
    inv = make()
    with pytest.raises(PermanentSubmissionError) as info:
        await inv.get_job(f"{PARENT}/jobs/wt-never-existed")
    assert info.value.code == "NOT_FOUND"


async def test_cancel_and_delete_stop_the_job_and_tolerate_it_being_gone(
    make: Make, server: InProcessBatchServer
) -> None:
    inv = make()
    await submit(inv)
    await inv.cancel_job()
    assert (await inv.get_job()).state == "CANCELLED"
    await inv.delete_job()
    assert inv.job_name not in server.jobs
    await inv.delete_job()  # already gone: not an error
    await inv.cancel_job()
    assert server.calls["DeleteJob"] == 2
    assert server.calls["CancelJob"] == 2


async def test_cancel_falls_back_to_delete_where_cancel_is_unimplemented(
    make: Make, server: InProcessBatchServer
) -> None:
    server.deny(grpc.StatusCode.UNIMPLEMENTED, method="CancelJob")
    inv = make()
    await submit(inv)
    await inv.cancel_job()
    assert inv.job_name not in server.jobs
    assert (server.calls["CancelJob"], server.calls["DeleteJob"]) == (1, 1)


async def test_not_waitable_and_nothing_to_install(make: Make) -> None:
    inv = make()
    assert inv.is_waitable is False
    assert await inv.is_installed() is True
    assert await inv.wait() == 0
    with pytest.raises(NotImplementedError):
        await inv.install()


async def test_an_injected_client_is_shared_and_left_open(
    batch_env: InProcessBatchServer,
) -> None:
    client = make_batch_client(batch_env.address)
    try:
        a = CloudBatchInvoker(SAMPLE_WORKFLOW, client=client)
        b = CloudBatchInvoker(SAMPLE_WORKFLOW, client=client)
        await submit(a, "run-a")
        await a.close()  # not a's to close
        await submit(b, "run-b")
        assert batch_env.created_jobs == 2
    finally:
        await client.transport.close()


# -- job ids ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_job_id_is_always_valid_and_deterministic(run_id: str) -> None:
    the_id = job_id(run_id)
    assert JOB_ID_PATTERN.match(the_id), the_id
    assert len(the_id) <= 63
    assert the_id.startswith("wt-")
    assert job_id(run_id) == the_id


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=120), min_size=2, max_size=40, unique=True))
def test_distinct_run_ids_never_share_a_job_id(run_ids: list[str]) -> None:
    assert len({job_id(r) for r in run_ids}) == len(run_ids)


def test_ids_that_sanitise_or_truncate_alike_stay_distinct() -> None:
    long_prefix = "Workflow-Run_" * 20
    run_ids = [f"{long_prefix}{i}" for i in range(20_000)]
    run_ids += ["Run A", "run-a", "RUN_A", "run--a", "run a ", "rün-a", "-run-a-"]
    ids = [job_id(r) for r in run_ids]
    assert len(set(ids)) == len(run_ids)
    assert all(JOB_ID_PATTERN.match(i) and len(i) <= 63 for i in ids)
    assert job_id("run-7").startswith("wt-run-7-")  # readable where it can be


# -- without the gcp extra ------------------------------------------------------------------------


def test_constructing_without_google_cloud_batch_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import google.cloud

    monkeypatch.delattr(google.cloud, "batch_v1", raising=False)
    monkeypatch.setitem(sys.modules, "google.cloud.batch_v1", None)  # import now fails
    with pytest.raises(
        ImportError,
        match=r"^Google Cloud Batch dependencies not available\. "
        r"Install with: pip install wt-invokers\[gcp\]$",
    ):
        CloudBatchInvoker(SAMPLE_WORKFLOW, project_id="p")


def test_wt_invokers_imports_without_google_installed() -> None:
    code = textwrap.dedent(
        """
        import importlib.abc, json, sys

        class NoGoogle(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "google" or name.startswith(("google.", "grpc")):
                    raise ImportError(f"{name} is not installed (simulated)")
                return None

        sys.meta_path.insert(0, NoGoogle())
        import wt_invokers
        try:
            from wt_invokers.cloud_batch import GCP_AVAILABLE
            wt_invokers.CloudBatchInvoker("wt-sample-workflow", project_id="p")
        except ImportError as exc:
            print(json.dumps([GCP_AVAILABLE, str(exc)]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == [
        False,
        "Google Cloud Batch dependencies not available. Install with: pip install wt-invokers[gcp]",
    ]


async def test_the_callers_wt_variables_are_forwarded_by_default_under_explicit_ones(
    make: Make, server: InProcessBatchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Upstream's run(): a script's WT_* settings follow its job; extra_env and the
    # invoker's own variables win over them; nothing else of the caller's environment goes.
    monkeypatch.setenv("WT_FEATURE_FLAG", "on")
    monkeypatch.setenv("WT_RESULTS", "gs://caller/own/")
    monkeypatch.setenv("NOT_WT_SECRET", "stays-here")
    monkeypatch.setenv("WT_ONLY_INHERITED", "x")
    inv = make()
    await submit(inv, extra_env={"WT_FEATURE_FLAG": "off-for-this-run"})
    env = dict(server.jobs[inv.job_name or ""].task_groups[0].task_spec.environment.variables)
    assert env.get("WT_ONLY_INHERITED") == "x"
    assert env["WT_FEATURE_FLAG"] == "off-for-this-run"
    assert env["WT_RESULTS"] == "gs://wt/results/run-1/"
    assert "NOT_WT_SECRET" not in env

    inv = make(forward_wt_env=False)
    await submit(inv, run_id="run-2")
    env = dict(server.jobs[inv.job_name or ""].task_groups[0].task_spec.environment.variables)
    assert "WT_ONLY_INHERITED" not in env and "WT_FEATURE_FLAG" not in env


async def test_validation_reports_the_image_then_the_run_id_before_the_project(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    inv = make()
    with pytest.raises(ValueError, match=r"^docker_image_uri is required for Cloud Batch invoker$"):
        await inv.run("", "a: 1", "gs://b/r/", "local", True)
    with pytest.raises(ValueError, match=r"^workflow_run_id cannot be blank for Cloud Batch"):
        await inv.run("  ", "a: 1", "gs://b/r/", "local", True, docker_image_uri=IMAGE)
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_PROJECT"):
        await inv.run("r", "a: 1", "gs://b/r/", "local", True, docker_image_uri=IMAGE)


async def test_the_operators_batch_invoker_forwards_none_of_its_own_wt_variables(
    server: InProcessBatchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library forwards WT_* by default (upstream); the operator opts out, or its own
    # settings would reach every run author's job.
    from wt_invokers.cloud_batch import BatchJobOptions
    from wt_invokers.invocation import Invocation
    from wt_operator.config import OperatorConfig
    from wt_operator.core.spec import parse_spec
    from wt_operator.metrics import Metrics
    from wt_operator.shell.invokers import Invokers

    monkeypatch.setenv("WT_OPERATOR_PRIVATE_SETTING", "operator-only")
    config = OperatorConfig.from_env(
        {"GOOGLE_CLOUD_PROJECT": "wt-test", "BATCH_EMULATOR_HOST": server.address}
    )
    invokers = Invokers(config, metrics=Metrics())
    spec = {
        "workflow": SAMPLE_WORKFLOW,
        "invoker": "CloudBatch",
        "resultsUrl": "gs://b/r/",
        "cloudBatch": {"image": IMAGE},
    }
    inv = invokers.batch(parse_spec(spec, uid="u-1"))
    try:
        info = await inv.submit(
            Invocation("run-1", "a: 1", "gs://b/r/", "local", True, extra_env={"WT_MINE": "1"}),
            BatchJobOptions(docker_image_uri=IMAGE),
        )
    finally:
        await invokers.close()
    env = dict(server.jobs[info.name].task_groups[0].task_spec.environment.variables)
    assert env["WT_MINE"] == "1"
    assert "WT_OPERATOR_PRIVATE_SETTING" not in env
