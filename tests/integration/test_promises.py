"""Promises only the real operator can show: how a run that did not succeed reads on the API server.

``kubectl wait --for=condition=Ready`` and GitOps tools read the stored conditions, not the
operator's intentions: a failed Local run and a cancelled Batch job (the real Batch client
against the gRPC stand-in) must read as ended, stalled and not ready, with a Warning Event.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.conftest import batch_spec, local_spec
from wt_envtest.runs import Runs, condition

pytestmark = pytest.mark.timeout(180)

ENDED = ["Succeeded", "Failed", "Cancelled"]
"""Waited for together, so a wrong ending fails by assertion at once, not by a wait's timeout."""
NOT_A_SUCCESS = {"Succeeded": "False", "Reconciling": "False", "Ready": "False", "Stalled": "True"}


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {t: condition(obj, t)["status"] for t in NOT_A_SUCCESS}


async def _warning_event(runs: Runs, name: str, reason: str) -> Any:
    for _ in range(50):  # Events are posted right after the transition, not with it
        found = [e for e in await runs.events(name) if e.reason == reason]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {reason} Event for {name}")


async def test_a_failed_local_run_is_stalled_and_never_ready(
    start_operator: Any, runs: Runs, control_plane: Any, namespace: str
) -> None:
    start_operator()
    await runs.create("broken", local_spec({"exit_code": 2}))
    obj = await runs.wait_for("broken", ENDED)
    assert obj["status"]["phase"] == "Failed"
    assert _conditions(obj) == NOT_A_SUCCESS
    assert condition(obj, "Stalled")["message"].startswith("the workflow exited with 2")
    # kubectl wait on Ready=False returns at once; on Ready it would wait out its timeout.
    proc = await asyncio.to_thread(
        control_plane.kubectl,
        "wait",
        "--for=condition=Ready=False",
        "wfr/broken",
        "-n",
        namespace,
        "--timeout=30s",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (await _warning_event(runs, "broken", "Failed")).type == "Warning"


async def test_a_batch_job_cancelled_outside_the_operator_is_cancelled_and_never_ready(
    start_operator: Any, runs: Runs, batch_server: Any
) -> None:
    batch_server.lifecycle = [("RUNNING", 0.2), ("CANCELLED", None)]
    start_operator(BATCH_EMULATOR_HOST=batch_server.address, WT_OPERATOR_BATCH_POLL_INTERVAL="1")
    await runs.create("stopped", batch_spec())
    obj = await runs.wait_for("stopped", ENDED, timeout=30)
    assert (obj["status"]["phase"], obj["status"]["reason"]) == ("Cancelled", "Cancelled")
    assert obj["status"]["cloudBatch"]["state"] == "CANCELLED"
    assert _conditions(obj) == NOT_A_SUCCESS
    assert (await _warning_event(runs, "stopped", "Cancelled")).type == "Warning"
    assert batch_server.created_jobs == 1
