"""How an error reaches kopf, and what a user sees while a Batch outage outlasts the retries.

The Batch outage is real gRPC: the operator's own invoker factory and the
google-cloud-batch client against the in-process stand-in (``wt_testkit.batch``),
scripted to answer UNAVAILABLE. Kubernetes and the clock are the unit doubles.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import grpc
import kopf
import pytest

from tests.unit.fakes import REF, FakeClock, FakeKube
from wt_invokers import TransientSubmissionError
from wt_invokers.cloud_batch import make_batch_client
from wt_operator.config import OperatorConfig
from wt_operator.core.errors import KubeApiError, RunGoneError, retry_delay
from wt_operator.core.policy import BatchDefaults
from wt_operator.kopf_errors import kopf_errors, to_kopf
from wt_operator.metrics import Metrics
from wt_operator.shell.invokers import SUBMISSION_ATTEMPTS, Invokers
from wt_operator.shell.reconciler import Reconciler
from wt_operator.shell.stop import StopFlag
from wt_testkit.batch import InProcessBatchServer

SPEC: dict[str, Any] = {
    "workflow": "wt-sample-workflow >=1.2",
    "invoker": "CloudBatch",
    "resultsUrl": "gs://b/r/",
    "cloudBatch": {"image": "us-docker.pkg.dev/acme/wf/sample:1.2"},
}


def test_a_transient_error_is_kopfs_temporary_error_with_a_growing_capped_delay() -> None:
    outage = TransientSubmissionError("UNAVAILABLE after 10 attempts", code="UNAVAILABLE")
    delays = []
    for retry in range(8):
        with pytest.raises(kopf.TemporaryError) as caught:
            to_kopf(outage, retry=retry, cap=60.0)
        assert "UNAVAILABLE" in str(caught.value)
        delays.append(caught.value.delay)
    assert delays == [retry_delay(r, cap=60.0) for r in range(8)]
    assert delays[0] == 5.0 and delays[1] == 10.0 and delays[-1] == 60.0


@pytest.mark.parametrize(
    ("error", "kopf_error"),
    [
        (KubeApiError("refused", status=403), kopf.TemporaryError),  # RBAC can be granted
        (KubeApiError("refused", status=503), kopf.TemporaryError),
        (KubeApiError("status invalid", status=422), kopf.PermanentError),  # same write again
        (RuntimeError("a bug"), kopf.PermanentError),
    ],
)
def test_each_verdict_has_one_kopf_error(error: Exception, kopf_error: type[Exception]) -> None:
    with pytest.raises(kopf_error) as caught:
        to_kopf(error, retry=0, cap=60.0)
    assert caught.value.__cause__ is error


def test_a_run_that_is_gone_raises_nothing_to_kopf() -> None:
    assert to_kopf(RunGoneError("ns/run"), retry=3, cap=60.0) is None


async def test_the_decorator_maps_what_a_handler_lets_escape_using_kopfs_retry_count() -> None:
    @kopf_errors(60.0)
    async def daemon(**_: Any) -> str:
        raise TransientSubmissionError("UNAVAILABLE", code="UNAVAILABLE")

    @kopf_errors(60.0)
    async def fine(**_: Any) -> str:
        return "done"

    with pytest.raises(kopf.TemporaryError) as caught:
        await daemon(retry=2)
    assert caught.value.delay == 20.0
    assert await fine(retry=0) == "done"
    assert asyncio.iscoroutinefunction(daemon)  # kopf awaits it as a coroutine handler


@pytest.fixture
def server() -> Iterator[InProcessBatchServer]:
    with InProcessBatchServer(lifecycle=[("SUCCEEDED", 0.0)]) as srv:
        yield srv


async def test_a_batch_outage_beyond_the_retries_says_retrying_and_submits_once_after(
    server: InProcessBatchServer,
) -> None:
    # Every attempt of the first reconciliation is refused; the library gives up after
    # SUBMISSION_ATTEMPTS (tiny pauses: the backoff cap is set to 10 ms here).
    server.fail_next("CreateJob", grpc.StatusCode.UNAVAILABLE, times=SUBMISSION_ATTEMPTS)
    config = dataclasses.replace(
        OperatorConfig.from_env({}),
        retry_backoff_max=0.01,
        batch_defaults=BatchDefaults(project="p"),
        batch_poll_interval=1.0,
    )
    kube = FakeKube()
    metrics = Metrics()
    invokers = Invokers(config, metrics=metrics, batch_client=make_batch_client(server.address))
    runtime = Reconciler(config, kube, invokers, clock=FakeClock(), metrics=metrics)
    try:
        with pytest.raises(TransientSubmissionError) as caught:
            await asyncio.wait_for(runtime.reconcile(REF, SPEC, {}, StopFlag()), 30)
        # Meanwhile the user sees a run that is retrying, not one that failed.
        assert kube.status["phase"] == "Pending"
        assert kube.status["reason"] == "Retrying"
        assert "UNAVAILABLE" in kube.status["message"]
        assert "has not failed" in kube.status["message"]
        [(reason, message, warning)] = kube.events
        assert reason == "Retrying" and warning and "UNAVAILABLE" in message
        assert server.created_jobs == 0
        # kopf is told to try again later, with backoff.
        with pytest.raises(kopf.TemporaryError):
            to_kopf(caught.value, retry=0, cap=config.retry_backoff_max)
        # kopf's retry reads the status afresh: the job is submitted once and tracked.
        await asyncio.wait_for(runtime.reconcile(REF, SPEC, dict(kube.status), StopFlag()), 30)
        assert kube.phases[-1] == "Succeeded"
        assert server.created_jobs == 1
    finally:
        await invokers.close()
