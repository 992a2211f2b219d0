"""One job per run: deterministic job ids, adoption, and the retry policy."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.cloud_batch.support import PARENT, Make, submit
from wt_invokers import PermanentSubmissionError, TransientSubmissionError
from wt_invokers.cloud_batch import JOB_ID_PATTERN, RUN_ID_LABEL, job_id
from wt_testkit.batch import InProcessBatchServer


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
