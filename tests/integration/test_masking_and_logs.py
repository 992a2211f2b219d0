"""Masking that cannot stall, and logs only the operator wrote: the real operator, real API.

A tenant who references Secrets and prints long lines must neither hold up another
tenant's runs nor read a Secret back in an encoded form or across a line cut; a
co-editor of the namespace must not be able to pass off text as a run's output.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import kopf
import pytest
from kubernetes_asyncio import client

from tests.integration.conftest import local_spec
from tests.integration.kubectl_plugin import kubectl_wt
from wt_envtest.runs import Runs, condition
from wt_invokers.local import MAX_LINE_BYTES
from wt_operator.shell.credentials import Credentials
from wt_operator.shell.kube import KubeClient
from wt_operator.shell.refs import LogRecord, RunRef

pytestmark = pytest.mark.timeout(180)

TOKEN = "tok-5ecr3t/value+x"


async def _secret(kube_api: Any, namespace: str, name: str, data: dict[str, str]) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    await client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace, {"metadata": {"name": name}, "data": encoded}
    )


def _from_secret(var: str, name: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


async def _log_text(kube_api: Any, namespace: str, uid: str) -> str:
    cm = await client.CoreV1Api(kube_api).read_namespaced_config_map(f"wt-log-{uid}", namespace)
    return str(cm.data["output"])


async def test_a_secret_cut_by_the_line_limit_is_masked_on_both_sides(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    await _secret(kube_api, namespace, "creds", {"token": TOKEN})
    op = start_operator(WT_OPERATOR_LOG_FLUSH_SECONDS="0.2")
    # The value starts 8 bytes before the 64 KiB cut, and the line goes on long after it
    # (the reader cuts only a line it has read past the limit without seeing its end).
    pad = MAX_LINE_BYTES - len("TOKEN=") - 8
    spec = local_spec(
        {"print_env": "TOKEN", "pad_env": pad}, env=[_from_secret("TOKEN", "creds", "token")]
    )
    obj = await runs.create("cut", spec)
    done = await runs.wait_for("cut", ["Succeeded"])
    text = await _log_text(kube_api, namespace, obj["metadata"]["uid"])
    everything = text + json.dumps(done) + op.logs()
    assert TOKEN[:8] not in everything and TOKEN[8:] not in everything
    lines = text.splitlines()
    assert lines[0].endswith("TOKEN=***") and lines[1].startswith("***.")  # no fragment


async def test_encoded_forms_of_a_secret_are_masked(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    encoded = base64.b64encode(TOKEN.encode()).decode()
    # The Secret holds the value; the workflow is handed it base64-encoded and prints that.
    await _secret(kube_api, namespace, "creds", {"token": TOKEN, "b64": encoded})
    op = start_operator()
    spec = local_spec(
        {"print_env": "ENCODED", "exit_code": 1},
        env=[_from_secret("TOKEN", "creds", "token"), {"name": "ENCODED", "value": encoded}],
    )
    obj = await runs.create("encoded", spec)
    done = await runs.wait_for("encoded", ["Failed"])
    assert "ENCODED=***" in done["status"]["message"]
    log = await _log_text(kube_api, namespace, obj["metadata"]["uid"])
    printed = [line for line in op.logs().splitlines() if "ENCODED=" in line]
    assert printed and all("ENCODED=***" in line for line in printed)
    assert "ENCODED=***" in log and encoded[:12] not in log + json.dumps(done["status"])


async def test_secrets_above_the_cap_end_the_run_invalid_spec(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str, tmp_path: Any
) -> None:
    big = "\n".join(f"line-{i:06d}-of-a-large-secret" for i in range(1500))
    await _secret(kube_api, namespace, "big", {"data": big})
    start_operator()
    marker = tmp_path / "ran"
    spec = local_spec({"append_to": str(marker)}, env=[_from_secret("BIG", "big", "data")])
    await runs.create("too-big", spec)
    done = await runs.wait_for("too-big", ["Failed"])
    assert condition(done, "Succeeded")["reason"] == "InvalidSpec"
    assert "1024 lines" in done["status"]["message"]
    assert "line-000" not in done["status"]["message"]
    assert not marker.exists()  # the workflow never started


async def test_long_output_against_a_large_secret_does_not_stall_another_run(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    # The issue's stall, with the cap raised by the admin: 45,000 lines of Secret
    # and 64 KiB lines of output. Masked on the event loop with the old regex, each line
    # held every other run's reconciliation for seconds.
    # In nine keys: one environment variable may hold at most 128 KiB.
    keys = {
        f"k{k}": "\n".join(f"k{i:05d}-{i * 7919 % 100000:05d}-secret" for i in range(k, 45_000, 9))
        for k in range(9)
    }
    await _secret(kube_api, namespace, "big", keys)
    start_operator(
        WT_OPERATOR_SECRET_MAX_BYTES=str(4 * 1024 * 1024),
        WT_OPERATOR_SECRET_MAX_LINES="50000",
        WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS="2",
    )
    env = [_from_secret(f"BIG{k}", "big", f"k{k}") for k in range(9)]
    heavy = local_spec({"long_lines": 40, "sleep": 30}, env=env)
    await runs.create("heavy", heavy)
    await runs.wait_for("heavy", ["Running"], timeout=120)
    await runs.create("trivial", local_spec({}))
    await runs.wait_for("trivial", ["Succeeded"], timeout=90)
    # The trivial run finished while the heavy one was still at work.
    still = await runs.get("heavy") or {}
    assert still["status"]["phase"] == "Running"


def _forged(run: dict[str, Any], text: str) -> dict[str, Any]:
    """What a co-editor of the namespace can create: the log's name, even its owner."""
    meta = run["metadata"]
    owner = {"apiVersion": "wt.dev/v1alpha1", "kind": "WorkflowRun", "name": meta["name"]}
    return {
        "metadata": {
            "name": f"wt-log-{meta['uid']}",
            "ownerReferences": [{**owner, "uid": meta["uid"]}],
            "annotations": {"wt.dev/log-complete": "true"},
        },
        "data": {"output": text},
    }


async def test_a_forged_log_configmap_is_never_taken_for_the_runs_output(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str, control_plane: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    start_operator()
    run = await runs.create("forged", local_spec({"stdout_lines": 3, "sleep": 1}))
    uid = run["metadata"]["uid"]
    await core.create_namespaced_config_map(namespace, _forged(run, "FORGED: pay to IBAN X\n"))
    done = await runs.wait_for("forged", ["Succeeded"])
    log = done["status"]["log"]
    assert log["configMap"].startswith(f"wt-log-{uid}-")  # a name nobody knew beforehand
    stored = await core.read_namespaced_config_map(log["configMap"], namespace)
    assert stored.metadata.uid == log["uid"]
    assert [o.uid for o in stored.metadata.owner_references] == [uid]
    assert stored.data["output"] == "stdout line 1\nstdout line 2\nstdout line 3\n"
    forged = await core.read_namespaced_config_map(f"wt-log-{uid}", namespace)
    assert forged.data["output"] == "FORGED: pay to IBAN X\n"  # not adopted, not written
    warnings = [e for e in await runs.events("forged") if e.reason == "LogNameTaken"]
    assert warnings and warnings[0].type == "Warning"
    assert log["configMap"] in warnings[0].message

    shown = await kubectl_wt(control_plane, "logs", "forged", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "stdout line 1\nstdout line 2\nstdout line 3\n"
    assert "FORGED" not in shown.stdout + shown.stderr


async def test_kubectl_wt_logs_never_shows_a_configmap_the_operator_did_not_record(
    runs: Runs, kube_api: Any, namespace: str, control_plane: Any, crds: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    # No operator: the run is as a forger finds it right after it was created ...
    run = await runs.create("early", local_spec())
    await runs.patch_status("early", {"phase": "Running"})
    uid = run["metadata"]["uid"]
    forged = await core.create_namespaced_config_map(namespace, _forged(run, "FORGED\n"))
    shown = await kubectl_wt(control_plane, "logs", "early", "-n", namespace)
    assert "FORGED" not in shown.stdout
    assert f"ConfigMap wt-log-{uid} exists but the operator has not recorded it" in shown.stderr
    # ... and after the operator's log was deleted and the name taken by someone else.
    await runs.patch_status("early", {"log": {"configMap": f"wt-log-{uid}", "uid": "other"}})
    shown = await kubectl_wt(control_plane, "logs", "early", "-n", namespace)
    assert "FORGED" not in shown.stdout
    assert f"ConfigMap wt-log-{uid} is not the log the operator wrote for early" in shown.stderr
    assert forged.metadata.uid != "other"


async def test_a_create_retried_after_a_lost_reply_adopts_only_its_own_object(
    runs: Runs, kube_api: Any, namespace: str, control_plane: Any, crds: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    run = await runs.create("lost", local_spec())
    uid = run["metadata"]["uid"]
    ref = RunRef(namespace, "lost", uid)
    creds = Credentials()
    creds.update(
        kopf.ConnectionInfo(
            server=control_plane.server,
            ca_path=str(control_plane.ca_file),
            token=control_plane.token,
        )
    )
    kube = KubeClient(creds)

    def record(text: str) -> LogRecord:
        return LogRecord(text=text, total_bytes=len(text), truncated=False, complete=False)

    async def text_of(name: str) -> str:
        return str((await core.read_namespaced_config_map(name, namespace)).data["output"])

    try:
        first = await kube.write_log(ref, record("one\n"), target=None, writer="w-1")
        assert (first.name, first.displaced) == (f"wt-log-{uid}", None)
        # The reply to that create was lost: the same writer's retry gets 409 and adopts.
        again = await kube.write_log(ref, record("two\n"), target=None, writer="w-1")
        assert again == first and await text_of(first.name) == "two\n"
        # Another writer's object under the name, owner reference and all, is not adopted.
        other = await kube.write_log(ref, record("three\n"), target=None, writer="w-2")
        assert other.displaced == first.name and other.name.startswith(f"wt-log-{uid}-")
        assert await text_of(first.name) == "two\n" and await text_of(other.name) == "three\n"
        # Ours deleted and the name taken by someone else: an update never writes into it.
        await core.delete_namespaced_config_map(first.name, namespace)
        await core.create_namespaced_config_map(namespace, _forged(run, "FORGED\n"))
        moved = await kube.write_log(ref, record("four\n"), target=first, writer="w-1")
        assert moved.name not in (first.name, other.name) and moved.displaced == first.name
        assert await text_of(first.name) == "FORGED\n" and await text_of(moved.name) == "four\n"
    finally:
        await kube.close()
