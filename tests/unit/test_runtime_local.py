"""Every transition of a Local run, driven through the real runtime with in-memory doubles.

No cluster, no processes: ``tests/unit/fakes.py`` stands in for the Kubernetes API,
the invoker and the clock, so each path — success, failure, deadline, queue,
deletion, operator exit, restart, refusal — runs in milliseconds and the test
asserts what a user would read in ``kubectl get wfr -o yaml`` and the Events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from tests.unit.fakes import REF, UID, FakeInvokers, FakeLocal, make_runtime, reconcile
from wt_invokers import InvocationStartError
from wt_operator.core.status import now_iso
from wt_operator.core.stopping import Stopping
from wt_operator.shell.stop import StopFlag

SPEC: dict[str, Any] = {
    "workflow": "wt-sample-workflow >=1.2",
    "invoker": "Local",
    "resultsUrl": "file:///tmp/results/",
    "config": {"region": "north"},
}


def spec(**extra: Any) -> dict[str, Any]:
    return {**SPEC, **extra}


async def test_success_records_running_before_the_start_then_succeeded() -> None:
    runtime, kube, invokers, _ = make_runtime()
    await reconcile(runtime, spec())
    assert kube.phases == ["Running", "Succeeded"]
    assert invokers.local_invoker.phase_at_start == "Running"  # at most once
    final = kube.status
    assert (final["exitCode"], final["result"], final["reason"]) == (0, "0", "Succeeded")
    assert final["duration"] == "0s" and final["completionTime"]
    assert [(r, w) for r, _, w in kube.events] == [("Running", False), ("Succeeded", False)]


async def test_the_run_is_told_its_run_id_and_marked_with_its_uid() -> None:
    runtime, kube, invokers, _ = make_runtime()
    await reconcile(
        runtime,
        spec(workflowRunId="copied-id", otel={"exporter": "otlp", "endpoint": "http://c:4317"}),
    )
    inv = invokers.local_invoker.invocation
    assert inv is not None
    assert inv.workflow_run_id == "copied-id"
    assert inv.run_uid == UID  # processes are found (and killed) by this, not by the run id
    trace = UID.replace("-", "")
    assert inv.extra_env["TRACEPARENT"].startswith(f"00-{trace}-")
    assert inv.extra_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://c:4317"
    assert inv.otel_exporter == "otlp"
    assert kube.status["traceId"] == trace


async def test_a_non_zero_exit_fails_with_the_masked_tail_of_its_output() -> None:
    pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqh\nkiG9w0BAQEFAASC\n-----END KEY-----\n"
    local = FakeLocal(
        exit_code=3,
        output=("token=hunter2-secret", "MIIEvQIBADANBgkqh", "boom"),
    )
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(local_invoker=local))
    kube.values[("Secret", "creds", "token")] = "hunter2-secret\n"  # as --from-file stores it
    kube.values[("Secret", "creds", "pem")] = pem
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "PEM", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pem"}}},
    ]
    await reconcile(runtime, spec(env=env))
    assert kube.phases == ["Running", "Failed"]
    assert kube.status["exitCode"] == 3
    message = kube.status["message"]
    assert "the workflow exited with 3" in message and "boom" in message
    assert "hunter2" not in message and "MIIEvQIBADANBgkqh" not in message
    assert "token=***" in message
    [(record, _)] = [x for x in kube.logs if x[0].complete]
    assert "hunter2" not in record.text and "boom" in record.text
    assert local.invocation is not None
    assert local.invocation.extra_env["TOKEN"] == "hunter2-secret\n"  # the workflow gets it


async def test_not_installed_fails_once_without_starting() -> None:
    runtime, kube, invokers, _ = make_runtime(invokers=FakeInvokers(FakeLocal(installed=False)))
    await reconcile(runtime, spec())
    assert kube.reasons == ["NotInstalled"]
    assert invokers.local_invoker.invocation is None


async def test_a_missing_secret_is_an_invalid_spec() -> None:
    runtime, kube, invokers, _ = make_runtime()
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]
    await reconcile(runtime, spec(env=env))
    assert kube.reasons == ["InvalidSpec"]
    assert "Secret 'nope'" in kube.status["message"]
    assert invokers.local_invoker.invocation is None


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PYTHONPATH", "BASH_ENV", "PATH", "WT_RESULTS"])
async def test_a_reserved_env_name_never_starts_the_workflow(name: str) -> None:
    # Objects stored before the CRD rule existed reach the operator: it refuses them too.
    runtime, kube, invokers, _ = make_runtime()
    await reconcile(runtime, spec(env=[{"name": name, "value": "/tmp/evil.so"}]))
    assert kube.reasons == ["InvalidSpec"]
    assert name in kube.status["message"]
    assert invokers.local_invoker.invocation is None


async def test_local_runs_can_be_switched_off() -> None:
    runtime, kube, invokers, _ = make_runtime(local_enabled=False)
    await reconcile(runtime, spec())
    assert kube.reasons == ["PolicyDenied"]
    assert "WT_OPERATOR_LOCAL_ENABLED" in kube.status["message"]
    assert invokers.local_invoker.invocation is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (InvocationStartError("cannot start: Argument list too long"), "StartFailed"),
        (OSError(28, "No space left on device"), "StartFailed"),
        (RuntimeError("a bug"), "StartFailed"),
    ],
)
async def test_a_start_that_fails_ends_the_run_once_with_a_reason(
    error: BaseException, reason: str
) -> None:
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(FakeLocal(start_error=error)))
    await reconcile(runtime, spec())
    assert kube.reasons == ["Running", reason]
    assert str(error).split(":")[0] in kube.status["message"]


async def test_the_deadline_kills_the_run() -> None:
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(FakeLocal(seconds=5)))
    started = dt.datetime.fromtimestamp(runtime.clock.now() - 99.95, dt.UTC)
    status = {"phase": "Pending", "startTime": now_iso(started)}
    await reconcile(runtime, spec(activeDeadlineSeconds=100), status)
    assert kube.reasons == ["Running", "DeadlineExceeded"]


async def test_the_deadline_counts_while_queued() -> None:
    runtime, kube, _, clock = make_runtime(max_concurrent_local_runs=1)
    await runtime.local.slots.acquire()  # another run holds the only slot
    started = dt.datetime.fromtimestamp(clock.now() - 60, dt.UTC)
    await reconcile(runtime, spec(activeDeadlineSeconds=60), {"startTime": now_iso(started)})
    assert kube.reasons == ["Queued", "DeadlineExceeded"]
    assert "while the run was queued" in kube.status["message"]


async def test_a_queued_run_starts_when_a_slot_frees_and_deleted_while_queued_is_cancelled() -> (
    None
):
    runtime, kube, _, _ = make_runtime(max_concurrent_local_runs=1)
    await runtime.local.slots.acquire()
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await kube.reached("Queued")
    stop.set(Stopping.DELETED)
    await task
    assert kube.reasons == ["Queued", "Cancelled"]
    # A queued run picked up after the slot frees goes on to run.
    runtime.local.slots.release()
    kube.patches.clear()
    await reconcile(runtime, spec(), {"phase": "Queued"})
    assert kube.phases == ["Running", "Succeeded"]


async def test_an_operator_leaving_a_queued_run_records_nothing() -> None:
    runtime, kube, _, _ = make_runtime(max_concurrent_local_runs=1)
    await runtime.local.slots.acquire()
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await kube.reached("Queued")
    stop.set(Stopping.OPERATOR)
    await task
    assert kube.phases == ["Queued"]  # the next operator takes it over


@pytest.mark.parametrize(
    ("why", "phase", "reason"),
    [(Stopping.DELETED, "Cancelled", "Cancelled"), (Stopping.OPERATOR, "Failed", "InvokerLost")],
)
async def test_stopped_while_running_kills_and_records(
    why: Stopping, phase: str, reason: str
) -> None:
    local = FakeLocal(seconds=30)
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(local))
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await local.started.wait()
    stop.set(why)
    await task
    assert kube.phases == ["Running", phase]
    assert kube.reasons[-1] == reason
    assert local.cancelled == 1


async def test_a_cancel_is_recorded_only_once_no_process_is_left() -> None:
    local = FakeLocal(seconds=30)
    invokers = FakeInvokers(local, survivors={UID: 2})  # two scans still find a process
    runtime, kube, _, _ = make_runtime(invokers=invokers)
    stop = StopFlag()
    task = asyncio.create_task(reconcile(runtime, spec(), stop=stop))
    await local.started.wait()
    stop.set(Stopping.DELETED)
    await task
    assert kube.reasons == ["Running", "Cancelling", "Cancelled"]
    assert kube.events[1][2] is True  # a Warning says why the run is still there
    assert invokers.killed == [UID, UID]


async def test_a_restarted_operator_finding_running_kills_the_orphan_and_never_reruns() -> None:
    invokers = FakeInvokers(stale={UID: 3})
    runtime, kube, _, _ = make_runtime(invokers=invokers)
    await reconcile(runtime, spec(), {"phase": "Running"})
    assert kube.reasons == ["InvokerLost"]
    assert "was still there and has been killed" in kube.status["message"]
    assert invokers.killed == [UID]
    assert invokers.local_invoker.invocation is None


async def test_output_is_stored_bounded_keeping_start_and_end() -> None:
    lines = tuple(f"line {i:05d} " + "x" * 90 for i in range(2000))  # ~200 KB
    local = FakeLocal(output=lines)
    runtime, kube, _, _ = make_runtime(invokers=FakeInvokers(local), log_max_bytes=20_000)
    await reconcile(runtime, spec())
    record, _ = kube.logs[-1]
    assert record.complete and record.truncated
    assert record.total_bytes > 190_000
    assert len(record.text.encode()) <= 20_000 + 100
    assert record.text.startswith("line 00000") and "line 01999" in record.text
    assert "bytes of output omitted" in record.text


async def test_a_run_that_prints_nothing_stores_no_log() -> None:
    runtime, kube, _, _ = make_runtime()
    await reconcile(runtime, spec())
    assert kube.logs == []


async def test_finalizing_a_local_run_deleted_while_no_operator_ran() -> None:
    invokers = FakeInvokers(stale={UID: 1})
    runtime, kube, _, _ = make_runtime(invokers=invokers)
    await runtime.finalize_unowned(REF, spec(), {"phase": "Running"})
    assert kube.reasons == ["Cancelled"]
    assert "its process tree was killed" in kube.status["message"]
    assert invokers.killed == [UID]
