"""`core/batch.py`: a Batch job's state becomes the run's phase and reason."""

from __future__ import annotations

import pytest

from wt_invokers.cloud_batch import BatchJobInfo
from wt_operator.core import batch


@pytest.mark.parametrize(
    ("state", "phase", "reason"),
    [
        ("SUCCEEDED", "Succeeded", "Succeeded"),
        ("FAILED", "Failed", "Failed"),
        ("CANCELLED", "Cancelled", "Cancelled"),
        ("DELETION_IN_PROGRESS", "Failed", "InvokerLost"),
        ("RUNNING", "Submitted", "Submitted"),
    ],
)
def test_batch_states_map_to_phases(state: str, phase: str, reason: str) -> None:
    job = batch.job_status("projects/p/locations/r/jobs/j", uid="u", state="QUEUED")
    moved = batch.observe(job, BatchJobInfo(job["jobName"], "u", state))
    assert moved is not None and (moved.phase, moved.reason) == (phase, reason)
    assert batch.observe({**job, "state": "RUNNING"}, BatchJobInfo("", "u", "RUNNING")) is None
