"""A burst of CloudBatch runs: the operator's CPU per run and its rate, beside a bare client.

Exists because a burst is where one operator replica's CPU decides how far it goes:
Cloud Batch allows 100 job mutations per second per region, so an operator that
cannot submit that fast on one core is the bottleneck. One round: ``runs`` runs
created at once (50 creates in flight), timed until every run is ``Submitted``.
Reported: runs per second, CPU per run of the operator process, the control plane
and this process (load generator + Batch stand-in), the write requests the burst
caused, and the number of Batch jobs created (must equal the runs).

The *ceiling* is the same API requests per run from a bare client (kubernetes_asyncio),
no operator: create, finalizer patch, the ``Submitted`` status the operator's core
would write, an Event like the operator's. No kopf, no watch, no Batch call: what this
control plane on this machine allows any operator that makes these writes; the burst
is read against it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from benchmarks.apiserver import delta, per_run_writes, write_requests
from benchmarks.measure import cpu_ms_per_run, cpu_snapshot, watching
from benchmarks.session import BenchSession
from wt_envtest import Runs
from wt_operator.api import FINALIZER, Phase, Reason
from wt_operator.core.batch import job_status
from wt_operator.core.status import Transition, status_patch
from wt_operator.shell.kube import event_body
from wt_operator.shell.refs import RunRef
from wt_testkit.workflows import SAMPLE_WORKFLOW

BATCH_SPEC: dict[str, Any] = {
    "workflow": SAMPLE_WORKFLOW,
    "invoker": "CloudBatch",
    "resultsUrl": "gs://b/r",
    "config": {},
    "cloudBatch": {"image": "example.org/wf:1"},
}
CREATE_CONCURRENCY = 50
LOAD_GENERATOR = "load generator + Batch stand-in"


async def burst_round(
    session: BenchSession, namespace: str, runs: int, pids: Mapping[str, int]
) -> dict[str, Any]:
    """Create ``runs`` CloudBatch runs at once; time until all are Submitted.

    ``pids`` names the processes whose CPU per run is reported (the operator as
    ``"operator"``). The runs stay Submitted (their jobs run for an hour).
    """
    store = Runs(session.api, namespace)
    names = [f"burst-{i}" for i in range(runs)]
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(name: str) -> None:
        async with gate:
            await store.create(name, BATCH_SPEC)

    session.batch.lifecycle = [("RUNNING", 5.0), ("SUCCEEDED", 3600.0)]
    jobs0 = session.batch.created_jobs
    async with watching(session.api, namespace) as watcher:
        before = write_requests(session.metrics_text())
        cpu0 = cpu_snapshot(pids)
        t0 = time.monotonic()
        await asyncio.gather(*(create(n) for n in names))
        created = time.monotonic()
        t1 = await watcher.phases(names, {"Submitted", "Running", "Succeeded"}, 600)
        cpu = cpu_ms_per_run(cpu0, pids, runs)
        # Events are posted after the status write; give the last ones a moment.
        await asyncio.sleep(1.0)
        writes = per_run_writes(delta(before, write_requests(session.metrics_text())), runs)
    return {
        "runs": runs,
        "create_seconds": created - t0,
        "all_submitted_seconds": t1 - t0,
        "runs_per_second": runs / (t1 - t0),
        "cpu_ms_per_run": cpu,
        "operator_cpu_ms_per_run": cpu["operator"],
        "jobs_created": session.batch.created_jobs - jobs0,
        "writes": writes,
    }


def _event(namespace: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Submitted`` Event as the operator posts it (the same function builds it)."""
    return event_body(
        RunRef(namespace=namespace, name=meta["name"], uid=meta["uid"]),
        reason=Reason.SUBMITTED,
        message="submitted Cloud Batch job",
        warning=False,
        component="wt-operator",
        instance="bench",
        now=dt.datetime.now(dt.UTC),
    )


async def ceiling_round(
    session: BenchSession, namespace: str, runs: int, pids: Mapping[str, int]
) -> dict[str, Any]:
    """The burst's API requests per run from a bare client (see module doc)."""
    store = Runs(session.api, namespace)
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            meta = (await store.create(f"ceiling-{i}", BATCH_SPEC))["metadata"]
            name = meta["name"]
            await store.patch(name, {"metadata": {"finalizers": [FINALIZER]}})
            job = job_status(f"projects/p/locations/r/jobs/wt-{i}", uid="u", state="QUEUED")
            transition = Transition(
                Phase.SUBMITTED,
                Reason.SUBMITTED,
                f"submitted Cloud Batch job {job['jobName']}",
                cloud_batch=job,
                workflow_run_id=meta["uid"],
            )
            now = dt.datetime.now(dt.UTC)
            status = status_patch(
                transition, previous={}, generation=meta.get("generation"), now=now
            )
            await store.patch_status(name, status)
            await store.core.create_namespaced_event(namespace, _event(namespace, meta))  # type: ignore[arg-type]

    cpu0 = cpu_snapshot(pids)
    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(runs)))
    seconds = time.monotonic() - t0
    return {
        "runs": runs,
        "seconds": seconds,
        "runs_per_second": runs / seconds,
        "cpu_ms_per_run": cpu_ms_per_run(cpu0, pids, runs),
    }
