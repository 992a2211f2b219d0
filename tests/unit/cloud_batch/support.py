"""Names and a submit helper shared by the CloudBatchInvoker tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wt_invokers import CloudBatchInvoker

IMAGE = "europe-docker.pkg.dev/wt/wf/sample:1.2.0"
PARENT = "projects/wt-test/locations/us-central1"
GCP_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUD_RUN_REGION", "BATCH_SERVICE_ACCOUNT")
Make = Callable[..., CloudBatchInvoker]


async def submit(inv: CloudBatchInvoker, run_id: str = "run-1", **kwargs: Any) -> None:
    kwargs.setdefault("docker_image_uri", IMAGE)
    await inv.run(run_id, "steps: 3\n", "gs://wt/results/run-1/", "local", True, **kwargs)
