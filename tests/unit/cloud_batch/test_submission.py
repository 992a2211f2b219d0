"""The job that reaches Batch, and what is refused before any RPC."""

from __future__ import annotations

from typing import Any

import pytest
from google.cloud import batch_v1

from tests.unit.cloud_batch.support import IMAGE, PARENT, Make, submit
from wt_invokers import CloudBatchInvoker, InvokerConfigurationError
from wt_invokers.cloud_batch import LITHOPS_CONFIG_JSON_ENV_VAR, RUN_ID_LABEL, job_id
from wt_invokers.local import PROCESS_MARKER_ENV_VAR, RUN_ID_ENV_VAR
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.workflows import SAMPLE_WORKFLOW


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
