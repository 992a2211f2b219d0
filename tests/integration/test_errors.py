"""The one error policy, end to end: a transient failure reaches kopf, which retries the run.

The real operator process on the real API server; Cloud Batch is the gRPC stand-in
(``wt_testkit.batch``), scripted to answer UNAVAILABLE.
"""

from __future__ import annotations

from typing import Any

import grpc

from tests.integration.conftest import batch_spec
from wt_envtest.runs import Runs
from wt_operator.shell.invokers import SUBMISSION_ATTEMPTS


async def test_a_batch_outage_beyond_the_retries_is_retried_by_kopf_and_submits_once(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    # Every call of the first attempt is refused: the library gives up (tiny pauses at a
    # 0.1 s cap), the run says it is retrying, and kopf runs the daemon again after its
    # TemporaryError delay (0.1 s here; kopf's own default would be 60 s).
    batch_server.lifecycle = [("SUCCEEDED", 0.5)]
    batch_server.fail_next("CreateJob", grpc.StatusCode.UNAVAILABLE, times=SUBMISSION_ATTEMPTS)
    start_operator(
        BATCH_EMULATOR_HOST=batch_server.address,
        WT_OPERATOR_RETRY_BACKOFF_MAX="0.1",
        WT_OPERATOR_BATCH_POLL_INTERVAL="1",
    )
    await runs.create("outage", batch_spec())
    obj = await runs.wait_for("outage", ["Succeeded", "Failed"], timeout=45)
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    events = await runs.events("outage")
    retrying = [e for e in events if e.reason == "Retrying"]
    assert retrying, [e.reason for e in events]
    assert retrying[0].type == "Warning" and "UNAVAILABLE" in retrying[0].message
    assert "Failed" not in [e.reason for e in events]
    # Retried, never run twice: one job, created by the attempt after the refused ones.
    assert batch_server.created_jobs == 1
    assert batch_server.calls["CreateJob"] == SUBMISSION_ATTEMPTS + 1
