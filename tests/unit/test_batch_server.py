"""The in-process BatchService behaves like Cloud Batch where our code depends on it.

Driven through the real google-cloud-batch async client, so a difference between
this stand-in and the wire protocol the real service speaks would show here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import batch_v1

from wt_invokers.cloud_batch import make_batch_client
from wt_testkit.batch import InProcessBatchServer, parse_lifecycle

PARENT = "projects/p/locations/r"


def a_job(**labels: str) -> batch_v1.Job:
    runnable = batch_v1.Runnable(container=batch_v1.Runnable.Container(image_uri="img"))
    return batch_v1.Job(
        task_groups=[batch_v1.TaskGroup(task_spec=batch_v1.TaskSpec(runnables=[runnable]))],
        labels=labels,
    )


@pytest.fixture
def server() -> Iterator[InProcessBatchServer]:
    with InProcessBatchServer() as srv:
        yield srv


@pytest.fixture
async def client(server: InProcessBatchServer) -> AsyncIterator[Any]:
    c = make_batch_client(server.address)
    yield c
    await c.transport.close()


async def create(client: Any, job_id: str, job: batch_v1.Job | None = None) -> batch_v1.Job:
    return await client.create_job(
        parent=PARENT, job=a_job() if job is None else job, job_id=job_id, retry=None, timeout=5
    )


async def test_create_get_list_like_the_real_service(client: Any) -> None:
    created = await create(client, "job-a")
    assert created.name == f"{PARENT}/jobs/job-a"
    assert created.uid
    assert created.status.state == batch_v1.JobStatus.State.QUEUED
    assert created.create_time.year >= 2024
    got = await client.get_job(name=created.name, retry=None)
    assert (got.uid, got.status.state) == (created.uid, batch_v1.JobStatus.State.QUEUED)
    for i in range(5):
        await create(client, f"job-{i}")
    pager = await client.list_jobs(
        request=batch_v1.ListJobsRequest(parent=PARENT, page_size=2), retry=None
    )
    names = [job.name async for job in pager]
    assert len(names) == 6
    assert names[0] == created.name


@pytest.mark.parametrize(
    ("job_id", "job", "code"),
    [
        ("Bad_Id", a_job(), gexc.InvalidArgument),
        ("1-starts-with-digit", a_job(), gexc.InvalidArgument),
        ("x" * 64, a_job(), gexc.InvalidArgument),
        ("ok", batch_v1.Job(), gexc.InvalidArgument),  # no task group
        ("ok", a_job(Team="A"), gexc.InvalidArgument),  # label keys are lowercase
    ],
)
async def test_invalid_creates_are_refused(
    client: Any, server: InProcessBatchServer, job_id: str, job: batch_v1.Job, code: type
) -> None:
    with pytest.raises(code):
        await create(client, job_id, job)
    assert server.created_jobs == 0


async def test_duplicates_and_unknown_jobs(client: Any, server: InProcessBatchServer) -> None:
    await create(client, "dup")
    with pytest.raises(gexc.AlreadyExists):
        await create(client, "dup")
    with pytest.raises(gexc.NotFound):
        await client.get_job(name=f"{PARENT}/jobs/nope", retry=None)
    with pytest.raises(gexc.NotFound):
        await client.delete_job(name=f"{PARENT}/jobs/nope", retry=None)
    assert server.create_counts() == {f"{PARENT}/jobs/dup": 1}


async def test_delete_and_cancel_return_finished_operations(
    client: Any, server: InProcessBatchServer
) -> None:
    await create(client, "c")
    await create(client, "d")
    op = await client.cancel_job(name=f"{PARENT}/jobs/c", retry=None)
    assert await op.done()
    assert isinstance(await op.result(), batch_v1.CancelJobResponse)
    assert server.job_state("c") == "CANCELLED"
    op = await client.delete_job(name=f"{PARENT}/jobs/d", retry=None)
    assert await op.done()
    assert op.metadata.verb == "delete"
    assert server.job_state("d") is None
    assert f"{PARENT}/jobs/d" not in server.jobs


async def test_lifecycle_moves_jobs_and_none_keeps_the_rhythm(
    client: Any, server: InProcessBatchServer
) -> None:
    server.lifecycle = parse_lifecycle("SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED")
    await create(client, "life")
    server.lifecycle = []
    await create(client, "still")
    assert server.job_state("life") == "QUEUED"
    await asyncio.sleep(0.15)
    assert server.job_state("life") == "SCHEDULED"
    await asyncio.sleep(0.1)
    assert server.job_state("life") == "RUNNING"
    await asyncio.sleep(0.1)
    job = await client.get_job(name=f"{PARENT}/jobs/life", retry=None)
    assert job.status.state == batch_v1.JobStatus.State.SUCCEEDED
    assert [e.description.split(" for job")[0] for e in job.status.status_events] == [
        "Job state is set from QUEUED to SCHEDULED",
        "Job state is set from SCHEDULED to RUNNING",
        "Job state is set from RUNNING to SUCCEEDED",
    ]
    assert server.job_state("still") == "QUEUED"  # took the lifecycle in force at creation


async def test_a_lifecycle_can_depend_on_the_job(client: Any, server: InProcessBatchServer) -> None:
    server.lifecycle = lambda job: [("FAILED" if job.labels.get("bad") else "SUCCEEDED", 0)]
    await create(client, "good")
    await create(client, "bad", a_job(bad="yes"))
    assert (server.job_state("good"), server.job_state("bad")) == ("SUCCEEDED", "FAILED")


async def test_fault_injection(client: Any, server: InProcessBatchServer) -> None:
    server.fail_next("GetJob", grpc.StatusCode.UNAVAILABLE, times=2)
    await create(client, "f")
    for _ in range(2):
        with pytest.raises(gexc.ServiceUnavailable):
            await client.get_job(name=f"{PARENT}/jobs/f", retry=None)
    await client.get_job(name=f"{PARENT}/jobs/f", retry=None)

    server.lose_reply_after_commit("CreateJob", code="DEADLINE_EXCEEDED")
    with pytest.raises(gexc.DeadlineExceeded):
        await create(client, "lost")
    assert server.job_state("lost") == "QUEUED"  # stored although the reply was lost

    server.deny(grpc.StatusCode.UNAUTHENTICATED)
    with pytest.raises(gexc.Unauthenticated):
        await client.get_job(name=f"{PARENT}/jobs/f", retry=None)
    server.reset_faults()
    await client.get_job(name=f"{PARENT}/jobs/f", retry=None)
    assert server.calls == {"CreateJob": 2, "GetJob": 5}
    assert (server.create_calls, server.created_jobs) == (2, 2)


async def test_latency_does_not_serialise_calls(client: Any, server: InProcessBatchServer) -> None:
    server.latency = 0.05
    t0 = time.perf_counter()
    await asyncio.gather(*(create(client, f"par-{i}") for i in range(200)))
    # Serially this is 10 s; concurrently a little over one latency.
    assert time.perf_counter() - t0 < 2.5
    assert server.created_jobs == 200


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


async def test_cli_serves_grpc_and_a_json_control_endpoint() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wt_testkit.batch",
        "--latency",
        "0.001",
        "--lifecycle",
        "RUNNING:30",
        "--deny-create",
        "PERMISSION_DENIED",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        address = (await proc.stdout.readline()).decode().strip()
        control = (await proc.stdout.readline()).decode().strip()
        assert address.startswith("127.0.0.1:")
        assert control.startswith("http://127.0.0.1:")
        client = make_batch_client(address)
        try:
            with pytest.raises(gexc.PermissionDenied):
                await create(client, "cli")
            await asyncio.to_thread(_http, f"{control}/faults", {"reset": True})
            await create(client, "cli")
            state = await asyncio.to_thread(_http, f"{control}/jobs/cli/state", {"state": "FAILED"})
            assert state["state"] == "FAILED"
            job = await client.get_job(name=f"{PARENT}/jobs/cli", retry=None)
            assert job.status.state == batch_v1.JobStatus.State.FAILED
        finally:
            await client.transport.close()
        stats = await asyncio.to_thread(_http, f"{control}/stats")
        assert stats["create_calls"] == 2
        assert stats["created_jobs"] == 1
        assert stats["create_counts"] == {f"{PARENT}/jobs/cli": 1}
        jobs = await asyncio.to_thread(_http, f"{control}/jobs")
        assert jobs["jobs"][f"{PARENT}/jobs/cli"]["job"]["task_groups"][0]["task_count"] == "1"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
