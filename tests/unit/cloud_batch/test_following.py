"""Following a submitted job: its state, its logs, cancelling and deleting it."""

from __future__ import annotations

import grpc
import pytest

from tests.unit.cloud_batch.support import PARENT, Make, submit
from wt_invokers import CloudBatchInvoker, PermanentSubmissionError
from wt_invokers.cloud_batch import (
    RUN_ID_LABEL,
    job_id,
    job_logs_query,
    job_logs_url,
    make_batch_client,
)
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.workflows import SAMPLE_WORKFLOW


def test_logs_link_and_query_name_the_job() -> None:
    name = f"{PARENT}/jobs/wt-run-1-abc"
    assert job_logs_url(name) == (
        "https://console.cloud.google.com/batch/jobsDetail/regions/us-central1/jobs/"
        "wt-run-1-abc/logs?project=wt-test"
    )
    query = job_logs_query("wt-test", "job-uid-1")
    assert 'labels.job_uid="job-uid-1"' in query
    assert "projects/wt-test/logs/batch_task_logs" in query


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
