"""What run authors read and what cleans up after them: stored output, columns, JSON logs, TTL.

The real operator on the real API server; ``kubectl`` is the real binary.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.conftest import local_spec
from wt_envtest.runs import Runs
from wt_operator.api import (
    ANNOTATION_LOG_BYTES,
    ANNOTATION_LOG_COMPLETE,
    ANNOTATION_LOG_TRUNCATED,
    LOG_KEY,
    log_configmap_name,
)
from wt_testkit.workflows import read_echo_file

pytestmark = pytest.mark.timeout(180)


async def _log_configmap(kube_api: Any, namespace: str, uid: str) -> Any:
    core = client.CoreV1Api(kube_api)
    for _ in range(100):
        try:
            cm = await core.read_namespaced_config_map(log_configmap_name(uid), namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        else:
            if cm.metadata.annotations.get(ANNOTATION_LOG_COMPLETE) == "true":
                return cm
        await asyncio.sleep(0.1)
    raise AssertionError("no complete log ConfigMap")


async def test_a_local_runs_whole_output_is_stored_beside_it(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    start_operator()
    created = await runs.create("chatty", local_spec({"stdout_lines": 200, "exit_code": 4}))
    obj = await runs.wait_for("chatty", ["Failed"])
    assert "stdout line 1\n" not in obj["status"]["message"]  # the status keeps only a tail
    cm = await _log_configmap(kube_api, namespace, created["metadata"]["uid"])
    lines = cm.data[LOG_KEY].splitlines()
    assert lines[0] == "stdout line 1" and lines[-1] == "stdout line 200"
    assert cm.metadata.annotations[ANNOTATION_LOG_TRUNCATED] == "false"
    assert int(cm.metadata.annotations[ANNOTATION_LOG_BYTES]) == len(cm.data[LOG_KEY].encode())
    [owner] = cm.metadata.owner_references  # deleted with its run by the garbage collector
    assert (owner.kind, owner.name, owner.uid) == ("WorkflowRun", "chatty", obj["metadata"]["uid"])


async def test_the_output_is_bounded_keeping_its_start_and_end(
    start_operator: Any, runs: Runs, kube_api: Any, namespace: str
) -> None:
    start_operator(WT_OPERATOR_LOG_MAX_BYTES="8192")
    created = await runs.create("flood", local_spec({"stdout_bytes": 500_000}))
    await runs.wait_for("flood", ["Succeeded"])
    cm = await _log_configmap(kube_api, namespace, created["metadata"]["uid"])
    text = cm.data[LOG_KEY]
    assert len(text.encode()) < 8192 + 200
    assert cm.metadata.annotations[ANNOTATION_LOG_TRUNCATED] == "true"
    assert int(cm.metadata.annotations[ANNOTATION_LOG_BYTES]) >= 500_000
    assert "bytes of output omitted" in text


async def test_wide_columns_answer_why_and_how_long(
    start_operator: Any, runs: Runs, control_plane: Any, namespace: str
) -> None:
    start_operator()
    await runs.create("broken", local_spec({"exit_code": 7}))
    await runs.wait_for("broken", ["Failed"])
    table = await asyncio.to_thread(
        control_plane.kubectl, "get", "wfr", "broken", "-o", "wide", "-n", namespace
    )
    header, row = table.stdout.splitlines()[:2]
    for column in ("PHASE", "REASON", "INVOKER", "WORKFLOW", "EXIT/JOB", "DURATION", "MESSAGE"):
        assert column in header
    assert "Failed" in row and "the workflow exited with 7" in row
    narrow = await asyncio.to_thread(control_plane.kubectl, "get", "wfr", "-n", namespace)
    assert "MESSAGE" not in narrow.stdout  # priority 1: only with -o wide
    assert "REASON" in narrow.stdout


async def test_json_logs_parse_and_carry_the_run(start_operator: Any, runs: Runs) -> None:
    op = start_operator(extra_args=("--log-format", "json"))
    await runs.create("traced", local_spec({"stdout_lines": 2}))
    await runs.wait_for("traced", ["Succeeded"])
    await asyncio.sleep(0.5)
    records = [json.loads(line) for line in op.logs().splitlines() if line.startswith("{")]
    assert records and all("message" in r for r in records)
    about = [r for r in records if r.get("object", {}).get("name") == "traced"]
    assert any("stdout line 2" in r["message"] for r in about)  # the workflow's output
    assert any("Succeeded" in r["message"] for r in about)  # the transitions
    assert {r["object"]["namespace"] for r in about} == {runs.namespace}


async def test_ttl_deletes_finished_runs_and_never_active_ones(
    start_operator: Any, runs: Runs
) -> None:
    start_operator()
    await runs.create("brief", local_spec(ttlSecondsAfterFinished=1))
    # Long enough to still be running after "brief" is gone even on a loaded machine.
    await runs.create("busy", local_spec({"sleep": 20}, ttlSecondsAfterFinished=1))
    await runs.create("kept", local_spec())
    # Its TTL is 1 s: it may be gone before a poll sees it Succeeded, so wait for it gone
    # (the TTL only starts once a run has finished).
    await runs.wait_gone("brief", timeout=60)
    busy = await runs.get("busy")
    assert busy is not None and busy["status"]["phase"] == "Running"
    await runs.wait_gone("busy", timeout=60)
    await asyncio.sleep(2)
    assert await runs.get("kept") is not None  # no TTL anywhere: kept


async def test_the_default_ttl_spares_gitops_managed_runs_and_waits_without_writing(
    start_operator: Any, runs: Runs
) -> None:
    op = start_operator(WT_OPERATOR_TTL_SECONDS_AFTER_FINISHED="4")
    await runs.create("plain", local_spec())
    await runs.create(
        "flux", local_spec(), labels={"kustomize.toolkit.fluxcd.io/name": "nightly-runs"}
    )
    await runs.create(
        "argo",
        local_spec(),
        annotations={"argocd.argoproj.io/tracking-id": "runs:wt.dev/WorkflowRun:ns/argo"},
    )
    for name in ("plain", "flux", "argo"):
        await runs.wait_for(name, ["Succeeded"])
    await asyncio.sleep(1)
    # Waiting costs no writes: the object does not change until it is deleted.
    before = await runs.get("plain")
    assert before is not None
    op.kill9()  # and the timer survives a restart (counted from completionTime)
    op.start()
    await asyncio.sleep(1)
    after = await runs.get("plain")
    if after is not None:
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    await runs.wait_gone("plain", timeout=20)
    await asyncio.sleep(2)
    assert await runs.get("flux") is not None  # Flux would re-create it, and it would run again
    assert await runs.get("argo") is not None


async def test_the_workflow_joins_the_runs_trace_and_exports_to_its_collector(
    start_operator: Any, runs: Runs, tmp_path: Path
) -> None:
    start_operator()
    echo = tmp_path / "echo"
    otel = {"exporter": "otlp", "endpoint": "http://otel-collector.observability:4317"}
    await runs.create("traced-run", local_spec({"echo_file": str(echo)}, otel=otel))
    obj = await runs.wait_for("traced-run", ["Succeeded"])
    seen = await asyncio.to_thread(read_echo_file, echo)
    trace_id = obj["status"]["traceId"]
    assert trace_id == obj["metadata"]["uid"].replace("-", "")
    version, trace, span, flags = seen.env["TRACEPARENT"].split("-")
    assert (version, trace, flags, len(span)) == ("00", trace_id, "01", 16)
    assert seen.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == otel["endpoint"]
    assert seen.option("--otel-exporter") == "otlp"
