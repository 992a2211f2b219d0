"""CloudBatchInvoker through the REAL google-cloud-batch async client over real gRPC.

The only stand-in is Google Cloud Batch itself: ``InProcessBatchServer`` (a gRPC
BatchService on loopback, reached through ``BATCH_EMULATOR_HOST``) — GCP cannot
run here. Its counters let the tests see what reached "Batch", so "no RPC was
made" and "no second job was created" are asserted, not assumed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.unit.cloud_batch.support import GCP_ENV, Make
from wt_invokers import CloudBatchInvoker
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.workflows import SAMPLE_WORKFLOW


@pytest.fixture
def server() -> Iterator[InProcessBatchServer]:
    """Google Cloud Batch STAND-IN: a real gRPC BatchService on loopback."""
    with InProcessBatchServer() as srv:
        yield srv


@pytest.fixture
def batch_env(
    server: InProcessBatchServer, monkeypatch: pytest.MonkeyPatch
) -> InProcessBatchServer:
    """The environment an operator pod would have, pointed at the stand-in."""
    for name in (*GCP_ENV, "WT_INVOKERS__RESULTS_ENV_VAR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BATCH_EMULATOR_HOST", server.address)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "wt-test")
    return server


@pytest.fixture
async def make(batch_env: InProcessBatchServer) -> AsyncIterator[Make]:
    """Invokers with fast backoff; their own clients are closed afterwards."""
    made: list[CloudBatchInvoker] = []

    def factory(**kwargs: Any) -> CloudBatchInvoker:
        kwargs.setdefault("initial_backoff", 0.01)
        kwargs.setdefault("max_backoff", 0.05)
        inv = CloudBatchInvoker(SAMPLE_WORKFLOW, **kwargs)
        made.append(inv)
        return inv

    yield factory
    for inv in made:
        await inv.close()
