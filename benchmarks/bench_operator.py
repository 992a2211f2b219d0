"""Operator benchmarks on the real control plane, the operator as a real process.

1. API writes per WorkflowRun (kube-apiserver's own apiserver_request_total) — target ≤ 4
2. Operator overhead: apply → Succeeded minus the workflow's own wall time — target p50 ≤ 150 ms
3. Batch throughput: 1,000 CloudBatch runs created at once → all Submitted — target ≥ 100/s
4. Scale: RSS and idle CPU with 5,000 WorkflowRuns present — target RSS ≤ 250 MB
5. Local concurrency: 50 runs of a 1 s workflow, limit 8, vs the ideal ⌈50/8⌉ s

Run with ``make bench`` (or ``python -m benchmarks``); sizes shrink with ``--quick``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, watch
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.bench_local import direct_exec_ms
from wt_envtest import OperatorProcess, Runs
from wt_operator.api import GROUP, PLURAL, VERSION, Phase, Reason
from wt_operator.core.batch import job_status
from wt_operator.core.status import Transition, status_patch
from wt_operator.shell.kube import KubeClient, RunRef
from wt_testkit.workflows import SAMPLE_WORKFLOW

WRITE_VERBS = {"PATCH", "UPDATE", "DELETE", "POST", "CREATE", "APPLY"}


def api_writes(metrics_text: str) -> dict[tuple[str, str, str], float]:
    """apiserver_request_total of write verbs, keyed by (resource, subresource, verb)."""
    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            labels = sample.labels
            if labels.get("verb") not in WRITE_VERBS:
                continue
            # The code is part of the verb key so conflicts (409/422 retries) show separately.
            key = (
                labels.get("resource", ""),
                labels.get("subresource", ""),
                f"{labels['verb']} {labels.get('code', '')}".strip(),
            )
            out[key] = out.get(key, 0.0) + sample.value
    return out


def diff_writes(
    before: Mapping[tuple[str, str, str], float], after: Mapping[tuple[str, str, str], float]
) -> dict[tuple[str, str, str], float]:
    keys = set(before) | set(after)
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)
    }


def percentile(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    idx = min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))
    return data[idx]


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def wait_phases(
    api: client.ApiClient,
    namespace: str,
    names: set[str],
    phases: set[str],
    timeout: float,
    on_seen: Callable[[str, float], None] | None = None,
) -> float:
    """Watch until every run in ``names`` reached one of ``phases``; returns the time."""
    custom = client.CustomObjectsApi(api)
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        listing = await custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        for item in listing["items"]:
            if (item.get("status") or {}).get("phase") in phases and item["metadata"][
                "name"
            ] in pending:
                pending.discard(item["metadata"]["name"])
                if on_seen:
                    on_seen(item["metadata"]["name"], time.monotonic())
        if not pending:
            break
        w = watch.Watch()
        try:
            async with w.stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                resource_version=listing["metadata"]["resourceVersion"],
                timeout_seconds=max(1, int(deadline - time.monotonic())),
            ) as stream:
                async for event in stream:
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    if name in pending and (obj.get("status") or {}).get("phase") in phases:
                        pending.discard(name)
                        if on_seen:
                            on_seen(name, time.monotonic())
                        if not pending:
                            break
        finally:
            w.stop()
    if pending:
        raise TimeoutError(f"{len(pending)} runs not in {phases} after {timeout}s")
    return time.monotonic()


async def bench_local_path(
    api: client.ApiClient,
    namespace: str,
    metrics_text: Callable[[], str],
    workspace: Path,
    runs_count: int,
    tmp: Path,
) -> dict[str, Any]:
    """Benchmarks 1 and 2: sequential no-op local runs; writes per run and overhead."""
    runs = Runs(api, namespace)
    config = tmp / "noop.yaml"
    config.write_text("{}\n")
    exe = workspace / ".pixi" / "envs" / "default" / "bin" / SAMPLE_WORKFLOW
    own = statistics.median(await direct_exec_ms(exe, config, workspace, 20)) / 1000
    before = api_writes(metrics_text())
    latencies = []
    for i in range(runs_count):
        name = f"noop-{i}"
        t0 = time.monotonic()
        await runs.create(
            name,
            {
                "workflow": SAMPLE_WORKFLOW,
                "invoker": "Local",
                "resultsUrl": f"file://{tmp}/results",
                "config": {},
            },
        )
        t1 = await wait_phases(api, namespace, {name}, {"Succeeded", "Failed"}, 60)
        latencies.append(t1 - t0)
    # Let the finalizer removal (the last write) land before reading the counters.
    await asyncio.sleep(2)
    delta = diff_writes(before, api_writes(metrics_text()))

    def ok(verb: str) -> bool:
        return verb.split(" ")[-1].startswith("2")

    # Writes the API server persisted, and requests it refused (kopf's finalizer patch is a
    # JSON patch guarded by a resourceVersion test; losing a race answers 422 and is retried).
    wfr = {(sub, verb): n for (res, sub, verb), n in delta.items() if res == "workflowruns"}
    wfr_writes = sum(n for (_s, v), n in wfr.items() if ok(v) and not v.startswith("POST"))
    refused = sum(n for (_s, v), n in wfr.items() if not ok(v))
    event_writes = sum(v for (res, _s, _v), v in delta.items() if res == "events")
    overheads_ms = [(lat - own) * 1000 for lat in latencies]
    return {
        "runs": runs_count,
        "writes_per_run": wfr_writes / runs_count,
        "refused_requests_per_run": refused / runs_count,
        "event_writes_per_run": event_writes / runs_count,
        "writes_breakdown": {
            f"{r}/{s or '-'} {v}": n / runs_count for (r, s, v), n in delta.items()
        },
        "workflow_wall_ms": own * 1000,
        "overhead_p50_ms": percentile(overheads_ms, 0.5),
        "overhead_p95_ms": percentile(overheads_ms, 0.95),
    }


BATCH_SPEC: dict[str, Any] = {
    "workflow": SAMPLE_WORKFLOW,
    "invoker": "CloudBatch",
    "resultsUrl": "gs://b/r",
    "config": {},
    "cloudBatch": {"image": "example.org/wf:1"},
}
CREATE_CONCURRENCY = 50


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: proc_cpu_seconds(pid) for name, pid in pids.items()}


def cpu_ms_per_run(
    before: Mapping[str, float], pids: Mapping[str, int], runs_count: int
) -> dict[str, float]:
    """CPU milliseconds each process spent per run since ``before``."""
    after = cpu_snapshot(pids)
    return {name: (after[name] - before[name]) * 1000 / runs_count for name in pids}


async def bench_batch_throughput(
    api: client.ApiClient,
    namespace: str,
    batch_server: Any,
    runs_count: int,
    window: float,
    pids: Mapping[str, int],
) -> dict[str, Any]:
    """Benchmark 3: create many CloudBatch runs at once, time until all are Submitted.

    ``pids`` names the processes whose CPU time per run is reported (the control plane,
    the operator, this process as load generator and Batch server).
    """
    runs = Runs(api, namespace)
    names = {f"batch-{i}" for i in range(runs_count)}
    sem = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(name: str) -> None:
        async with sem:
            await runs.create(name, BATCH_SPEC)

    jobs0 = batch_server.created_jobs
    cpu0 = cpu_snapshot(pids)
    t0 = time.monotonic()
    await asyncio.gather(*(create(n) for n in sorted(names)))
    created = time.monotonic()
    t1 = await wait_phases(api, namespace, names, {"Submitted", "Succeeded"}, 600)
    cpu = cpu_ms_per_run(cpu0, pids, runs_count)
    out = {
        "runs": runs_count,
        "create_seconds": created - t0,
        "all_submitted_seconds": t1 - t0,
        "runs_per_second": runs_count / (t1 - t0),
        "cpu_ms_per_run": cpu,
        "jobs_created": batch_server.created_jobs - jobs0,
    }
    if window > 0:
        calls_before = sum(batch_server.calls.values())
        await asyncio.sleep(window)
        calls_after = sum(batch_server.calls.values())
        out["batch_calls_per_run_per_min"] = (calls_after - calls_before) / runs_count * 60 / window
    return out


async def bench_api_ceiling(
    api: client.ApiClient, namespace: str, runs_count: int, pids: Mapping[str, int]
) -> dict[str, Any]:
    """The same API requests per run as benchmark 3, from a bare client with no operator.

    Per run: the create (as in benchmark 3), then the three writes the operator makes for
    a Batch run: finalizer on, the ``Submitted`` status, its Event. The last two go
    through the operator's own ``Kube`` class. No kopf, no watch, no Batch call: this
    is what the control plane on this machine allows *any* operator that makes these
    writes, so benchmark 3 is read against it.
    """
    custom = client.CustomObjectsApi(api)
    kube = KubeClient(api)
    sem = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            created = await Runs(api, namespace).create(f"ceiling-{i}", BATCH_SPEC)
            meta = created["metadata"]
            await custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                meta["name"],
                {"metadata": {"finalizers": ["wt.dev/finalizer"]}},
                _content_type="application/merge-patch+json",
            )
            ref = RunRef(namespace, meta["name"], meta["uid"], meta.get("generation"))
            job = job_status(f"projects/p/locations/r/jobs/wt-{i}", uid="u", state="QUEUED")
            t = Transition(
                Phase.SUBMITTED,
                Reason.SUBMITTED,
                f"submitted Cloud Batch job {job['jobName']}",
                cloud_batch=job,
                workflow_run_id=meta["uid"],
            )
            now = dt.datetime.now(dt.UTC)
            await kube.patch_status(
                ref, status_patch(t, previous={}, generation=ref.generation, now=now)
            )
            await kube.post_event(ref, reason=Reason.SUBMITTED, message="submitted", warning=False)

    cpu0 = cpu_snapshot(pids)
    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(runs_count)))
    seconds = time.monotonic() - t0
    return {
        "runs": runs_count,
        "seconds": seconds,
        "runs_per_second": runs_count / seconds,
        "cpu_ms_per_run": cpu_ms_per_run(cpu0, pids, runs_count),
    }


async def bench_scale(
    api: client.ApiClient,
    namespace: str,
    start: Callable[[], OperatorProcess],
    total: int,
    active: int,
    idle_window: float,
) -> dict[str, Any]:
    """Benchmark 4: the operator's RSS and idle CPU with ``total`` runs, most finished."""
    custom = client.CustomObjectsApi(api)
    sem = asyncio.Semaphore(50)

    async def make(i: int) -> None:
        async with sem:
            name = f"old-{i}"
            await custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "WorkflowRun",
                    "metadata": {"name": name},
                    "spec": {
                        "workflow": SAMPLE_WORKFLOW,
                        "invoker": "CloudBatch",
                        "resultsUrl": "gs://b/r",
                        "config": {"i": i},
                        "cloudBatch": {"image": "example.org/wf:1"},
                    },
                },
            )
            if i >= active:
                await custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    {"status": {"phase": "Succeeded", "result": "0"}},
                    _content_type="application/merge-patch+json",
                )

    t0 = time.monotonic()
    await asyncio.gather(*(make(i) for i in range(total)))
    populate = time.monotonic() - t0
    op = start()
    assert op.proc is not None
    await wait_phases(
        api, namespace, {f"old-{i}" for i in range(active)}, {"Submitted", "Succeeded"}, 300
    )
    await asyncio.sleep(3)
    cpu0, w0 = proc_cpu_seconds(op.proc.pid), time.monotonic()
    await asyncio.sleep(idle_window)
    cpu1, w1 = proc_cpu_seconds(op.proc.pid), time.monotonic()
    return {
        "objects": total,
        "active": active,
        "populate_seconds": populate,
        "rss_mb": proc_rss_mb(op.proc.pid),
        "idle_cpu_percent": (cpu1 - cpu0) / (w1 - w0) * 100,
    }


async def bench_concurrency(
    api: client.ApiClient,
    namespace: str,
    runs_count: int,
    limit: int,
    seconds: float,
) -> dict[str, Any]:
    """Benchmark 5: many 1 s local runs through a limit of ``limit`` slots."""
    runs = Runs(api, namespace)
    names = {f"sleep-{i}" for i in range(runs_count)}
    t0 = time.monotonic()
    await asyncio.gather(
        *(
            runs.create(
                n,
                {
                    "workflow": SAMPLE_WORKFLOW,
                    "invoker": "Local",
                    "resultsUrl": "file:///tmp/r",
                    "config": {"sleep": seconds},
                },
            )
            for n in sorted(names)
        )
    )
    t1 = await wait_phases(api, namespace, names, {"Succeeded"}, 600)
    ideal = math.ceil(runs_count / limit) * seconds
    return {
        "runs": runs_count,
        "limit": limit,
        "total_seconds": t1 - t0,
        "ideal_seconds": ideal,
        "ratio": (t1 - t0) / ideal,
    }
