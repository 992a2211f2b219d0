"""A run is its own and its author cannot reach past it: the real operator on the real API.

Each test here is one way a tenant (or a copied manifest) could make a run touch
another run, run code in the operator pod, read a Secret, pick Batch resources
the admin did not allow, or make the operator claim what did not happen.
Google Cloud Batch is the gRPC stand-in (``batch_server``); everything else is real.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path
from typing import Any

import grpc
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.conftest import batch_spec, local_spec, wait_file
from wt_envtest.operator_process import OperatorProcess
from wt_envtest.runs import Runs, condition
from wt_invokers.cloud_batch import job_id
from wt_testkit.workflows import process_is_alive, wait_process_gone

pytestmark = pytest.mark.timeout(180)


async def _secret(kube_api: Any, namespace: str, name: str, data: dict[str, str]) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    await client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace, {"metadata": {"name": name}, "data": encoded}
    )


def _from_secret(var: str, name: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


async def test_a_copied_batch_manifest_is_a_new_run_with_its_own_job(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    batch_server.lifecycle = [("RUNNING", 0.3), ("SUCCEEDED", 0.8)]
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    # The README's re-run recipe: copy the manifest, change only metadata.name.
    await runs.create("nightly", batch_spec(workflowRunId="nightly-2026-11-28"))
    first = await runs.wait_for("nightly", ["Succeeded"], timeout=30)
    await runs.create("nightly-again", batch_spec(workflowRunId="nightly-2026-11-28"))
    second = await runs.wait_for("nightly-again", ["Succeeded"], timeout=30)
    jobs = {r["status"]["cloudBatch"]["jobName"] for r in (first, second)}
    assert len(jobs) == 2  # two jobs: the copy ran, it did not adopt the first run's job
    assert batch_server.created_jobs == 2
    for run in (first, second):
        job = batch_server.jobs[run["status"]["cloudBatch"]["jobName"]]
        assert job.labels["wt-run-uid"] == run["metadata"]["uid"]
        assert run["status"]["workflowRunId"] == "nightly-2026-11-28"  # what it is told


async def test_a_job_of_another_run_under_its_id_is_not_adopted(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    # The run exists before any operator does, so its job id is known: a job under that
    # id carrying another run's uid label is planted in "Batch" first.
    created = await runs.create("victim", batch_spec())
    the_id = job_id(created["metadata"]["uid"], readable="victim")
    planted = batch_server.plant_job(the_id, labels={"wt-run-uid": "someone-else"})
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    obj = await runs.wait_for("victim", ["Failed"], timeout=30)
    assert condition(obj, "Succeeded")["reason"] == "JobConflict"
    assert "belongs to another run" in obj["status"]["message"]
    assert batch_server.jobs[planted].labels["wt-run-uid"] == "someone-else"  # untouched


async def test_local_runs_told_the_same_run_id_stay_independent(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    start_operator()
    spec = local_spec({"sleep": 4}, workflowRunId="shared-id")
    await runs.create("keep", spec)
    await runs.create("drop", spec)
    await runs.wait_for("keep", ["Running"])
    await runs.wait_for("drop", ["Running"])
    await runs.delete("drop")  # its cancel kills its processes, and only its
    await runs.wait_gone("drop", timeout=30)
    kept = await runs.wait_for("keep", ["Succeeded", "Failed"], timeout=30)
    assert kept["status"]["phase"] == "Succeeded", kept["status"]


async def test_runs_with_the_same_run_id_in_two_namespaces_stay_independent(
    control_plane: Any,
    crds: Any,
    kube_api: Any,
    workspace: Path,
    pixi_bin: Path,
    batch_server: Any,
    tmp_path: Path,
) -> None:
    suffix = secrets.token_hex(3)
    names = [f"t-tenant-a-{suffix}", f"t-tenant-b-{suffix}"]
    for ns in names:
        control_plane.create_namespace(ns)
    op = OperatorProcess(
        kubeconfig=control_plane.kubeconfig,
        namespaces=names,
        workspace=workspace,
        log_path=tmp_path / "operator.log",
        path_prepend=[pixi_bin],
        env={"BATCH_EMULATOR_HOST": batch_server.address},
    )
    try:
        op.start()
        batch_server.lifecycle = [("RUNNING", 30)]
        tenants = [Runs(kube_api, ns) for ns in names]
        for t in tenants:
            await t.create("nightly", batch_spec(workflowRunId="nightly"))
        jobs = [
            (await t.wait_for("nightly", ["Submitted"]))["status"]["cloudBatch"]["jobName"]
            for t in tenants
        ]
        assert jobs[0] != jobs[1]
        await tenants[1].delete("nightly")  # deleting one tenant's run …
        await tenants[1].wait_gone("nightly", timeout=30)
        assert jobs[1] not in batch_server.jobs
        assert jobs[0] in batch_server.jobs  # … never touches the other's job
        still = await tenants[0].get("nightly")
        assert still is not None and still["status"]["phase"] == "Submitted"
    finally:
        op.stop()
        for ns in names:
            control_plane.delete_namespace(ns)


@pytest.mark.parametrize(
    "name", ["LD_PRELOAD", "PYTHONPATH", "PYTHONWARNINGS", "BASH_ENV", "PATH", "WT_RESULTS"]
)
async def test_env_names_that_load_code_are_refused_at_apply(
    runs: Runs, crds: Any, name: str
) -> None:
    with pytest.raises(ApiException) as err:
        await runs.create("inject", local_spec(env=[{"name": name, "value": "/tmp/x.so"}]))
    assert err.value.status == 422
    assert f"env name {name} is reserved" in err.value.body


async def test_secrets_are_masked_in_every_form_the_output_takes(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\n"
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
        "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu\n"
        "-----END PRIVATE KEY-----\n"
    )
    # --from-file stores a trailing newline the workflow does not print.
    await _secret(kube_api, namespace, "creds", {"token": "tok-5ecr3t-value\n", "pem": pem})
    op = start_operator()
    spec = local_spec(
        {"exit_code": 1, "print_env": "PEM", "stdout_lines": 3},
        env=[_from_secret("TOKEN", "creds", "token"), _from_secret("PEM", "creds", "pem")],
    )
    await runs.create("leaky", spec)
    obj = await runs.wait_for("leaky", ["Failed"])
    text = json.dumps(obj) + op.logs() + str([e.message for e in await runs.events("leaky")])
    for needle in ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "VJTUt9Us8cKjMzEf"):
        assert needle not in text
    assert "***" in obj["status"]["message"]


async def test_a_batch_run_with_a_kubernetes_secret_is_denied_by_default(
    start_operator: Any, runs: Runs, batch_server: Any, kube_api: Any, namespace: str
) -> None:
    await _secret(kube_api, namespace, "creds", {"token": "tok"})
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("plain", batch_spec(env=[_from_secret("TOKEN", "creds", "token")]))
    obj = await runs.wait_for("plain", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "PolicyDenied"
    assert "gcpSecretVersion" in obj["status"]["message"]
    assert batch_server.calls == {}  # nothing reached Batch
    version = "projects/wt-test-project/secrets/token/versions/1"
    await runs.create(
        "managed", batch_spec(env=[{"name": "TOKEN", "valueFrom": {"gcpSecretVersion": version}}])
    )
    submitted = await runs.wait_for("managed", ["Submitted", "Succeeded"])
    job = batch_server.jobs[submitted["status"]["cloudBatch"]["jobName"]]
    env = job.task_groups[0].task_spec.environment
    assert dict(env.secret_variables) == {"TOKEN": version}
    assert "TOKEN" not in env.variables


async def test_the_admins_batch_policy_denies_before_any_batch_call(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    start_operator(
        BATCH_EMULATOR_HOST=batch_server.address,
        WT_OPERATOR_BATCH_ALLOWED_PROJECTS="wt-test-*",
        WT_OPERATOR_BATCH_ALLOWED_IMAGES="europe-docker.pkg.dev/wt/*",
        WT_OPERATOR_BATCH_ALLOWED_SERVICE_ACCOUNTS="runner@wt-test-project.iam.gserviceaccount.com",
    )
    evil = batch_spec()
    evil["cloudBatch"] = {
        "image": "docker.io/attacker/miner:latest",
        "project": "prod-billing",
        "serviceAccount": "owner@prod-billing.iam.gserviceaccount.com",
    }
    await runs.create("evil", evil)
    obj = await runs.wait_for("evil", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "PolicyDenied"
    assert "prod-billing" in obj["status"]["message"]
    assert batch_server.calls == {}
    fine = batch_spec()
    fine["cloudBatch"]["serviceAccount"] = "runner@wt-test-project.iam.gserviceaccount.com"
    await runs.create("fine", fine)
    await runs.wait_for("fine", ["Submitted", "Succeeded"])


async def test_a_failing_job_delete_keeps_the_run_and_says_why(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    batch_server.lifecycle = [("RUNNING", 60)]
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("sticky", batch_spec())
    job_name = (await runs.wait_for("sticky", ["Submitted"]))["status"]["cloudBatch"]["jobName"]
    batch_server.deny(code=grpc.StatusCode.PERMISSION_DENIED, method="DeleteJob")
    await runs.delete("sticky")
    obj = await runs.wait_for("sticky", ["Submitted"], timeout=30)
    for _ in range(100):
        obj = await runs.get("sticky") or obj
        if obj["status"].get("reason") == "Cancelling":
            break
        await asyncio.sleep(0.1)
    assert obj["status"]["reason"] == "Cancelling"
    assert "PERMISSION_DENIED" in obj["status"]["message"]
    assert obj["status"]["cloudBatch"]["state"] != "DELETED"
    assert "wt.dev/finalizer" in obj["metadata"]["finalizers"]
    # The Event is posted right after the status write, off the reconciler's path.
    for _ in range(100):
        warnings = [e for e in await runs.events("sticky") if e.type == "Warning"]
        if any(e.reason == "Cancelling" for e in warnings):
            break
        await asyncio.sleep(0.1)
    assert any(e.reason == "Cancelling" for e in warnings)
    assert job_name in batch_server.jobs  # still there, and nobody claims otherwise
    batch_server.allow("DeleteJob")
    await runs.wait_gone("sticky", timeout=60)
    assert job_name not in batch_server.jobs


async def test_bad_input_ends_the_run_once_with_a_reason_not_invoker_lost(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    await _secret(kube_api, namespace, "big", {"blob": "x" * 200_000})
    # The Secret cap raised past the blob: what is tested is a start the kernel refuses.
    start_operator(WT_OPERATOR_SECRET_MAX_BYTES=str(1024 * 1024))
    await runs.create("file-url", local_spec(resultsUrl=(tmp_path / "a-file" / "x").as_uri()))
    await runs.create("huge-env", local_spec(env=[_from_secret("BLOB", "big", "blob")]))
    url = await runs.wait_for("file-url", ["Failed"])
    huge = await runs.wait_for("huge-env", ["Failed"])
    assert condition(url, "Succeeded")["reason"] == "InvalidSpec"
    assert "cannot be created" in url["status"]["message"]
    assert condition(huge, "Succeeded")["reason"] == "StartFailed"
    assert "Argument list too long" in huge["status"]["message"]
    await asyncio.sleep(2)  # no restarted daemon comes back to rewrite it as InvokerLost
    for name in ("file-url", "huge-env"):
        failed = [e for e in await runs.events(name) if e.type == "Warning"]
        assert len(failed) == 1, failed


async def test_a_finished_run_leaves_no_process_behind(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    start_operator()
    pidfile = tmp_path / "bg.pid"
    await runs.create(
        "tidy", local_spec({"grandchild_sleep": 300, "grandchild_pid_file": str(pidfile)})
    )
    await runs.wait_for("tidy", ["Succeeded"], timeout=30)
    child = int(await wait_file(pidfile))
    await wait_process_gone(child)
    assert not process_is_alive(child)


async def test_a_config_too_large_for_a_batch_argument_is_refused_before_submission(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    await runs.create("bulky", batch_spec({"blob": "y" * 140_000}))
    obj = await runs.wait_for("bulky", ["Failed"])
    assert condition(obj, "Succeeded")["reason"] == "InvalidSpec"
    assert "128 KiB" in obj["status"]["message"]
    assert batch_server.calls == {}


async def test_restarting_a_standby_never_kills_the_active_replicas_runs(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    await client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "wt-operator"}},
    )
    active = start_operator(standalone=False)
    await asyncio.sleep(1)
    standby = start_operator(standalone=False)
    await asyncio.sleep(3)
    await runs.create("long", local_spec({"sleep": 12}))
    await runs.wait_for("long", ["Running"], timeout=30)
    for _ in range(3):  # with random priorities, each restart was a coin toss
        standby.restart()
        await asyncio.sleep(2)
    obj = await runs.wait_for("long", ["Succeeded", "Failed"], timeout=60)
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    assert "Pausing operations" not in active.logs()


async def test_a_missing_peering_object_is_reported_not_waited_on_silently(
    start_operator: Any, namespace: str
) -> None:
    op = start_operator(standalone=False)
    for _ in range(100):
        if "nothing is reconciled until it exists" in op.logs():
            break
        await asyncio.sleep(0.1)
    line = next(x for x in op.logs().splitlines() if "nothing is reconciled" in x)
    assert "WARNING" in line
    assert f"KopfPeering wt-operator in namespace {namespace}" in line
    assert "--standalone" in line
