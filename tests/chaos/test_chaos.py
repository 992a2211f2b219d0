"""Fault injection: the end state of every run after kills, restarts and bad input.

Bounded in time (each scenario a few tens of seconds) so it runs in CI. Each
scenario asserts, for every run it created, that it is terminal, was not run
or submitted twice, and reports its tally to the summary table.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.chaos.conftest import Tally
from tests.integration.conftest import batch_spec, create_tree, local_spec
from wt_envtest.crds import apply_crds
from wt_envtest.runs import Runs, condition
from wt_operator.api import TERMINAL_PHASES, log_configmap_name
from wt_testkit.workflows import process_is_alive

pytestmark = pytest.mark.timeout(300)


async def settle(runs: Runs, names: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait until every run is terminal (or the time is up); return the last objects."""
    deadline = asyncio.get_running_loop().time() + timeout
    objs: dict[str, dict[str, Any]] = {}
    while True:
        objs = {o["metadata"]["name"]: o for o in await runs.list()}
        done = all(
            (objs.get(n, {}).get("status") or {}).get("phase") in TERMINAL_PHASES for n in names
        )
        if done or asyncio.get_running_loop().time() > deadline:
            return objs
        await asyncio.sleep(0.25)


def account(tally: Tally, names: list[str], objs: dict[str, dict[str, Any]]) -> None:
    tally.runs += len(names)
    for name in names:
        obj = objs.get(name)
        if obj is None:
            tally.lost += 1
        elif (obj.get("status") or {}).get("phase") not in TERMINAL_PHASES:
            tally.stuck += 1


def executions(marker: Path) -> Counter[str]:
    if not marker.exists():
        return Counter()
    return Counter(line.strip() for line in marker.read_text().splitlines() if line.strip())


async def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    start_operator: Any, runs: Runs, batch_server: Any, tmp_path: Path, tally: Tally
) -> None:
    rng = random.Random(20261128)
    batch_server.lifecycle = [("SCHEDULED", 0.5), ("RUNNING", 1.0), ("SUCCEEDED", 2.0)]
    op = start_operator(
        BATCH_EMULATOR_HOST=batch_server.address, WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS="4"
    )
    marker = tmp_path / "executions.txt"
    local = [f"l-{i}" for i in range(50)]
    cloud = [f"b-{i}" for i in range(50)]
    for name in local:
        await runs.create(name, local_spec({"sleep": 0.5, "append_to": str(marker), "tag": name}))
    for name in cloud:
        await runs.create(name, batch_spec({"tag": name}))
    for _ in range(6):
        await asyncio.sleep(rng.uniform(0.3, 2.5))
        op.kill9()
        op.start()
    objs = await settle(runs, local + cloud, timeout=180)
    account(tally, local + cloud, objs)
    ran = executions(marker)
    tally.duplicated += sum(1 for n in ran.values() if n > 1)
    per_job = batch_server.create_counts()
    tally.duplicated += sum(1 for n in per_job.values() if n > 1)
    assert (tally.lost, tally.stuck, tally.duplicated) == (0, 0, 0), tally
    assert len(per_job) == len(cloud)
    for name in local:
        status = objs[name]["status"]
        if status["phase"] != "Succeeded":
            # Only a run whose process died with an operator may fail, and it says so.
            assert condition(objs[name], "Succeeded")["reason"] == "InvokerLost", status
    for name in cloud:
        assert objs[name]["status"]["phase"] == "Succeeded", objs[name]["status"]


async def test_api_server_restart_mid_run_every_run_finishes(
    start_operator: Any, runs: Runs, batch_server: Any, control_plane: Any, tally: Tally
) -> None:
    batch_server.lifecycle = [("RUNNING", 1.0), ("SUCCEEDED", 4.0)]
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    local = [f"l-{i}" for i in range(8)]
    cloud = [f"b-{i}" for i in range(8)]
    for name in local:
        await runs.create(name, local_spec({"sleep": 3}))
    for name in cloud:
        await runs.create(name, batch_spec())
    await asyncio.sleep(1.5)
    await control_plane.restart_apiserver_async()
    objs = await settle(runs, local + cloud, timeout=120)
    account(tally, local + cloud, objs)
    tally.duplicated += sum(1 for n in batch_server.create_counts().values() if n > 1)
    assert (tally.lost, tally.stuck, tally.duplicated) == (0, 0, 0), tally
    phases = Counter(objs[n]["status"]["phase"] for n in local + cloud)
    assert phases == {"Succeeded": 16}, phases


async def test_batch_faults_give_correct_phases_and_no_duplicates(
    start_operator: Any, runs: Runs, batch_server: Any, tally: Tally
) -> None:
    batch_server.lifecycle = [("RUNNING", 0.3), ("SUCCEEDED", 0.6)]
    start_operator(BATCH_EMULATOR_HOST=batch_server.address)

    batch_server.fail_next("CreateJob", grpc.StatusCode.UNAVAILABLE, times=3)
    await runs.create("burst", batch_spec())
    burst = await runs.wait_for("burst", ["Succeeded", "Failed"], timeout=60)

    batch_server.lose_reply_after_commit("CreateJob", times=1)
    await runs.create("lost-reply", batch_spec())
    lost = await runs.wait_for("lost-reply", ["Succeeded", "Failed"], timeout=60)

    batch_server.deny(code=grpc.StatusCode.PERMISSION_DENIED, method="CreateJob")
    calls_before = batch_server.calls.get("CreateJob", 0)
    await runs.create("denied", batch_spec())
    denied = await runs.wait_for("denied", ["Failed"], timeout=60)
    await asyncio.sleep(2)  # a retry loop would show up as more calls and events
    denied_calls = batch_server.calls.get("CreateJob", 0) - calls_before
    batch_server.reset_faults()

    batch_server.lifecycle = []  # jobs now stay QUEUED forever
    await runs.create("stuck-queued", batch_spec(activeDeadlineSeconds=3))
    queued = await runs.wait_for("stuck-queued", ["Failed"], timeout=60)

    names = ["burst", "lost-reply", "denied", "stuck-queued"]
    account(tally, names, {o["metadata"]["name"]: o for o in await runs.list()})
    tally.duplicated += sum(1 for n in batch_server.create_counts().values() if n > 1)
    assert burst["status"]["phase"] == "Succeeded"
    assert lost["status"]["phase"] == "Succeeded"
    assert condition(denied, "Succeeded")["reason"] == "SubmissionRejected"
    assert denied_calls == 1
    rejected_events: list[Any] = []
    for _ in range(50):  # Events are posted just after the transition
        rejected_events = [
            e for e in await runs.events("denied") if e.reason == "SubmissionRejected"
        ]
        if rejected_events:
            break
        await asyncio.sleep(0.1)
    assert len(rejected_events) == 1
    assert condition(queued, "Succeeded")["reason"] == "DeadlineExceeded"
    job = queued["status"]["cloudBatch"]["jobName"]
    assert batch_server.job_state(job) in ("CANCELLED", "DELETION_IN_PROGRESS", None)
    assert (tally.lost, tally.stuck, tally.duplicated) == (0, 0, 0), tally


def _corpus(tmp: Path) -> list[tuple[str, dict[str, Any], str]]:
    """(name, spec, expectation): 'reject' (API refuses) or 'Failed:<reasons>' or 'Succeeded'."""
    base = local_spec()
    pwned = tmp / "pwned"
    return [
        ("no-workflow", {"invoker": "Local", "resultsUrl": "x"}, "reject"),
        ("no-invoker", {"workflow": "w", "resultsUrl": "x"}, "reject"),
        ("no-results", {"workflow": "w", "invoker": "Local"}, "reject"),
        ("docker-invoker", {**base, "invoker": "Docker"}, "reject"),
        ("lowercase-invoker", {**base, "invoker": "local"}, "reject"),
        ("workflow-number", {**base, "workflow": 123}, "reject"),
        ("config-string", {**base, "config": "a: 1"}, "reject"),
        ("config-list", {**base, "config": [1, 2]}, "reject"),
        ("mockio-string", {**base, "mockIo": "yes"}, "reject"),
        ("bad-mode", {**base, "executionMode": "parallel"}, "reject"),
        ("negative-deadline", {**base, "activeDeadlineSeconds": -5}, "reject"),
        ("string-deadline", {**base, "activeDeadlineSeconds": "10"}, "reject"),
        ("env-bad-name", {**base, "env": [{"name": "A=B", "value": "1"}]}, "reject"),
        ("env-1mb-value", {**base, "env": [{"name": "BIG", "value": "x" * 1_000_000}]}, "reject"),
        (
            "env-both",
            {
                **base,
                "env": [
                    {
                        "name": "A",
                        "value": "1",
                        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                    }
                ],
            },
            "reject",
        ),
        ("env-empty-from", {**base, "env": [{"name": "A", "valueFrom": {}}]}, "reject"),
        (
            "env-too-many",
            {**base, "env": [{"name": f"V{i}", "value": "1"} for i in range(201)]},
            "reject",
        ),
        ("batch-no-options", {**base, "invoker": "CloudBatch"}, "reject"),
        ("batch-empty-image", {**batch_spec(), "cloudBatch": {"image": ""}}, "reject"),
        (
            "batch-zero-gpus",
            {**batch_spec(), "cloudBatch": {"image": "i", "gpu": {"type": "t", "count": 0}}},
            "reject",
        ),
        (
            "batch-long-label",
            {**batch_spec(), "cloudBatch": {"image": "i", "labels": {"a": "x" * 64}}},
            "reject",
        ),
        ("shell-run-id", {**base, "workflowRunId": "$(rm -rf /)"}, "reject"),
        (
            "both-configs",
            {**base, "configFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            "reject",
        ),
        ("env-path-traversal", {**base, "local": {"environment": "../../etc"}}, "reject"),
        # Over etcd's request limit: refused by the API server's storage, not the schema.
        ("huge-config-3mb", {**base, "config": {"blob": "x" * 3_000_000}}, "too-large"),
        (
            "bad-matchspec",
            {**base, "workflow": "wt-sample-workflow[version="},
            "Failed:InvalidSpec",
        ),
        ("unknown-workflow", {**base, "workflow": "no-such-workflow"}, "Failed:NotInstalled"),
        (
            "shell-in-workflow",
            {**base, "workflow": "wt-sample-workflow; rm -rf /"},
            "Failed:InvalidSpec,NotInstalled",
        ),
        (
            "missing-secret",
            {
                **base,
                "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}],
            },
            "Failed:InvalidSpec",
        ),
        (
            "missing-configmap",
            {k: v for k, v in base.items() if k != "config"}
            | {"configFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}},
            "Failed:InvalidSpec",
        ),
        ("shell-in-results", {**base, "resultsUrl": f"file://{tmp}/r;touch {pwned}"}, "Succeeded"),
        (
            "shell-in-config",
            {**base, "config": {"a": f"$(touch {pwned})", "b": "`reboot`"}},
            "Succeeded",
        ),
        ("big-config-1mb", {**base, "config": {"blob": "y" * 1_000_000}}, "Succeeded"),
        (
            "unicode-config",
            {**base, "config": {"名前": "🚀", "quote": 'it\'s "fine"'}},
            "Succeeded",
        ),
        (
            "optional-missing-secret",
            {
                **base,
                "env": [
                    {
                        "name": "T",
                        "valueFrom": {
                            "secretKeyRef": {"name": "nope", "key": "k", "optional": True}
                        },
                    }
                ],
            },
            "Succeeded",
        ),
    ]


async def test_hostile_corpus_is_rejected_or_failed_clearly(
    start_operator: Any, runs: Runs, tmp_path: Path, tally: Tally
) -> None:
    start_operator()
    corpus = _corpus(tmp_path)
    assert len(corpus) >= 30
    accepted: dict[str, str] = {}
    for name, spec, expect in corpus:
        rejected: ApiException | None = None
        try:
            await runs.create(name, spec)
        except ApiException as exc:
            rejected = exc
        if rejected is not None:
            if expect == "too-large":
                assert rejected.status in (413, 500), (name, rejected.status)
                assert "larger than max" in rejected.body or "too large" in rejected.body
                continue
            assert expect == "reject", f"{name}: unexpectedly rejected: {rejected.body[:300]}"
            assert rejected.status in (400, 413, 422), (name, rejected.status)
            continue
        assert expect not in ("reject", "too-large"), f"{name}: the API server accepted it"
        accepted[name] = expect
    objs = await settle(runs, list(accepted), timeout=120)
    tally.runs += len(corpus) - len(accepted)  # refused up front: nothing to lose
    account(tally, list(accepted), objs)
    for name, expect in accepted.items():
        status = objs[name]["status"]
        if expect == "Succeeded":
            assert status["phase"] == "Succeeded", (name, status)
        else:
            reasons = expect.split(":", 1)[1].split(",")
            assert status["phase"] == "Failed", (name, status)
            assert condition(objs[name], "Succeeded")["reason"] in reasons, (name, status)
            assert status["message"], name
    assert not (tmp_path / "pwned").exists()  # nothing was ever run through a shell
    # The operator kept serving: a normal run still succeeds afterwards.
    await runs.create("after-corpus", local_spec())
    await runs.wait_for("after-corpus", ["Succeeded"])
    assert tally.stuck == 0


async def test_secret_values_appear_nowhere_after_a_busy_run(
    start_operator: Any,
    runs: Runs,
    batch_server: Any,
    kube_api: Any,
    namespace: str,
    tally: Tally,
) -> None:
    secret = "tOpS3cret-ab12cd34"
    await client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": secret}}
    )
    batch_server.lifecycle = [("FAILED", 0.5)]
    op = start_operator(BATCH_EMULATOR_HOST=batch_server.address)
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    names = []
    for i, cfg in enumerate([{"print_env": "TOKEN"}, {"print_env": "TOKEN", "exit_code": 4}]):
        names.append(f"local-{i}")
        await runs.create(names[-1], local_spec(cfg, env=env))
    names.append("cloud")
    await runs.create("cloud", batch_spec(env=env))
    objs = await settle(runs, names, timeout=60)
    account(tally, names, objs)
    events = await runs.events()
    haystacks = [str(objs), *(str(e.message) for e in events), op.logs()]
    assert all(secret not in h for h in haystacks)
    assert any("***" in h for h in haystacks)  # it was printed, and masked


async def _running_queued_submitted(runs: Runs, tmp_path: Path) -> tuple[int, str]:
    """Runs "running" (Local, with a grandchild), "queued" (Local, behind a limit of 1) and
    "submitted" (CloudBatch); returns the grandchild's pid and the Batch job's name."""
    grandchild = await create_tree(runs, "running", tmp_path / "child.pid")
    await runs.wait_for("running", ["Running"])
    await runs.create("queued", local_spec({"sleep": 1}))
    await runs.wait_for("queued", ["Queued"])
    await runs.create("submitted", batch_spec())
    submitted = await runs.wait_for("submitted", ["Submitted"])
    return grandchild, str(submitted["status"]["cloudBatch"]["jobName"])


async def test_delete_in_every_phase_cancels_and_leaves_nothing_behind(
    start_operator: Any, runs: Runs, batch_server: Any, tmp_path: Path, tally: Tally
) -> None:
    start_operator(
        BATCH_EMULATOR_HOST=batch_server.address, WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS="1"
    )
    grandchild, job = await _running_queued_submitted(runs, tmp_path)
    for name in ("queued", "running", "submitted"):
        await runs.delete(name)
    for name in ("queued", "running", "submitted"):
        await runs.wait_gone(name, timeout=30)
    tally.runs += 3
    reasons = Counter(e.reason for e in await runs.events())
    assert reasons["Cancelled"] == 3
    assert not process_is_alive(grandchild)
    assert job not in batch_server.jobs


async def test_delete_in_every_phase_while_the_operator_is_down_leaves_nothing_behind(
    start_operator: Any, runs: Runs, batch_server: Any, tmp_path: Path, tally: Tally
) -> None:
    # kopf starts no daemon for an object already being deleted: the operator must still
    # delete the Batch job and kill orphaned processes before the finalizer goes.
    op = start_operator(
        BATCH_EMULATOR_HOST=batch_server.address, WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS="1"
    )
    grandchild, job = await _running_queued_submitted(runs, tmp_path)
    op.kill9()
    # Created and deleted while no operator runs: Pending, with a finalizer only if one
    # was added, so it may go at once; either way it must not linger.
    await runs.create("pending", batch_spec())
    names = ("queued", "running", "submitted", "pending")
    for name in names:
        await runs.delete(name)
    assert process_is_alive(grandchild)
    op.start()
    for name in names:
        await runs.wait_gone(name, timeout=30)
    tally.runs += len(names)
    reasons = Counter(e.reason for e in await runs.events())
    assert reasons["Cancelled"] == 3  # the Pending one never had a finalizer to hold it
    if process_is_alive(grandchild):
        tally.stuck += 1
    assert not process_is_alive(grandchild)
    assert job not in batch_server.jobs
    assert batch_server.created_jobs == 1


HOOKS = {
    "LD_PRELOAD": "/tmp/evil.so",
    "LD_LIBRARY_PATH": "/tmp",
    "LD_AUDIT": "/tmp/evil.so",
    "DYLD_INSERT_LIBRARIES": "/tmp/evil.dylib",
    "PYTHONPATH": "/tmp",
    "PYTHONSTARTUP": "/tmp/evil.py",
    "PYTHONWARNINGS": "ignore::antigravity.x",
    "BROWSER": "/tmp/evil.sh",
    "BASH_ENV": "/tmp/evil.sh",
    "ENV": "/tmp/evil.sh",
    "PERL5OPT": "-Mevil",
    "PERL5LIB": "/tmp",
    "RUBYOPT": "-revil",
    "NODE_OPTIONS": "--require /tmp/evil.js",
    "JAVA_TOOL_OPTIONS": "-javaagent:/tmp/evil.jar",
    "_JAVA_OPTIONS": "-javaagent:/tmp/evil.jar",
    "GLIBC_TUNABLES": "glibc.malloc.mxfast=0",
    "PATH": "/tmp:/usr/bin",
    "HOME": "/tmp",
    "PIXI_PROJECT_MANIFEST": "/tmp/pixi.toml",
    "CONDA_PREFIX": "/tmp",
    "WT_RESULTS": "file:///etc/",
    "WT_INVOKERS__PROCESS_MARKER": "another-run",
    "LITHOPS_CONFIG_FILE": "/tmp/lithops.yaml",
    "KUBECONFIG": "/tmp/kubeconfig",
    "TRACEPARENT": "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01",
}


def _without_env_rule(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD as it was before the reserved-env rule existed (an older install)."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    item = schema["properties"]["spec"]["properties"]["env"]["items"]
    item["x-kubernetes-validations"] = [
        r for r in item["x-kubernetes-validations"] if "reserved" not in str(r)
    ]
    return crd


async def test_code_hooks_in_env_are_refused_at_apply_and_by_the_operator(
    start_operator: Any,
    runs: Runs,
    control_plane: Any,
    crds: Any,
    tmp_path: Path,
    tally: Tally,
) -> None:
    marker = tmp_path / "ran.txt"
    spec = local_spec({"append_to": str(marker)})
    # 1. Today's CRD refuses every hook at kubectl apply, naming it.
    for name, value in HOOKS.items():
        with pytest.raises(ApiException) as err:
            await runs.create(
                f"hook-{len(name)}-{tally.runs}", {**spec, "env": [{"name": name, "value": value}]}
            )
        assert err.value.status == 422 and f"env name {name} is reserved" in err.value.body
        tally.runs += 1
    # 2. Runs stored by an older CRD without the rule: the operator refuses them itself.
    crd_path = Path(__file__).resolve().parents[2] / "crds" / "wt.dev_workflowruns.yaml"
    crd = yaml.safe_load(crd_path.read_text())
    old = _without_env_rule(crd)
    try:
        control_plane.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=wt-tests",
            "-f",
            "-",
            input=old,
        )
        names = []
        for i, (name, value) in enumerate(HOOKS.items()):
            for attempt in range(50):  # the API server picks up the relaxed CRD shortly
                try:
                    await runs.create(f"old-{i}", {**spec, "env": [{"name": name, "value": value}]})
                    break
                except ApiException as exc:
                    if exc.status != 422 or attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
            names.append(f"old-{i}")
    finally:
        apply_crds(control_plane, [crd_path])  # today's CRD again, served before we go on
    start_operator()
    objs = await settle(runs, names, timeout=60)
    account(tally, names, objs)
    for name in names:
        assert condition(objs[name], "Succeeded")["reason"] == "InvalidSpec", objs[name]["status"]
        assert "is reserved" in objs[name]["status"]["message"]
    assert not marker.exists()  # none of them ever started the workflow
    assert (tally.lost, tally.stuck) == (0, 0), tally


async def test_secrets_in_every_form_are_masked_everywhere(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str, tally: Tally
) -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\n"
        + "\n".join(f"MIIE{i:02d}vQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ" for i in range(8))
        + "\n-----END PRIVATE KEY-----\n"
    )
    key_json = json.dumps(
        {"type": "service_account", "private_key_id": "9f8e7d6c5b4a39281706f5e4d3c2b1a0"},
        indent=2,
    )
    forms = {
        "newline": "nl-s3cret-value-4711\n",  # what --from-file stores
        "pem": pem,  # printed line by line
        "json": key_json + "\n",
        "long": "L0ng"
        * 1500,  # 6,000 characters: cut by the 4,000-character tail unless masked first
    }
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in forms.items()}
    await client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace, {"metadata": {"name": "forms"}, "data": encoded}
    )
    op = start_operator()
    names = []
    for key in forms:
        env = [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "forms", "key": key}}}]
        names.append(f"form-{key}")
        await runs.create(names[-1], local_spec({"print_env": "S", "exit_code": 3}, env=env))
    objs = await settle(runs, names, timeout=60)
    account(tally, names, objs)
    stored = []
    for name in names:
        uid = objs[name]["metadata"]["uid"]
        for _ in range(50):
            try:
                cm = await client.CoreV1Api(kube_api).read_namespaced_config_map(
                    log_configmap_name(uid), namespace
                )
            except ApiException:
                await asyncio.sleep(0.1)
                continue
            stored.append(str(cm.data))
            break
    assert len(stored) == len(names)
    haystack = "\n".join(
        [json.dumps(objs), op.logs(), *stored, *(str(e.message) for e in await runs.events())]
    )
    needles = ["nl-s3cret-value-4711", "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "L0ngL0ngL0ng"]
    needles += [line for line in pem.splitlines() if line.startswith("MIIE")]
    leaked = [n for n in needles if n in haystack]
    assert not leaked, leaked
    assert all("***" in objs[n]["status"]["message"] for n in names)
    assert (tally.lost, tally.stuck) == (0, 0), tally
