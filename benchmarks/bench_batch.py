"""Submission throughput of CloudBatchInvoker.run against the in-process BatchService.

Exists to show that the invoker's submit path (job building, the real async
client, gRPC) can keep up with an operator starting many runs at once while
every Batch call costs a realistic round trip. Target: >= 200 submissions/s at
concurrency 100 with 20 ms injected server latency (one shared client, as the
operator shares one). Client and server share this process (and its GIL), so the
number is a lower bound for a client talking to a remote service.

Run: ``.venv/bin/python benchmarks/bench_batch.py [RUNS] [CONCURRENCY] [LATENCY]``
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from wt_invokers.cloud_batch import CloudBatchInvoker, make_batch_client
from wt_testkit.batch import InProcessBatchServer

TARGET_PER_SECOND = 200.0
CONFIG = "steps: 3\nname: bench\nparams: {alpha: 0.5, beta: [1, 2, 3]}\n"


async def _bench(runs: int, concurrency: int, server: InProcessBatchServer) -> dict[str, Any]:
    client = make_batch_client(server.address)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def submit(i: int) -> None:
        async with gate:
            inv = CloudBatchInvoker("wt-sample-workflow", project_id="bench", client=client)
            t0 = time.perf_counter()
            await inv.run(
                f"bench-run-{i}",
                CONFIG,
                f"gs://bench/runs/{i}/",
                "local",
                False,
                extra_env={"RUN_INDEX": str(i)},
                docker_image_uri="europe-docker.pkg.dev/wt/wf/sample:1.2.0",
                labels={"bench": "yes"},
            )
            latencies.append((time.perf_counter() - t0) * 1000)

    try:
        # Warm the channel (connection set-up is not what we measure).
        await submit(-1)
        latencies.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(submit(i) for i in range(runs)))
        elapsed = time.perf_counter() - t0
    finally:
        await client.transport.close()
    ordered = sorted(latencies)
    return {
        "runs": runs,
        "concurrency": concurrency,
        "latency_ms": server.latency * 1000,
        "seconds": elapsed,
        "per_second": runs / elapsed,
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "created_jobs": server.created_jobs,
    }


def bench_batch(runs: int = 1000, concurrency: int = 100, latency: float = 0.02) -> dict[str, Any]:
    """Submit ``runs`` jobs, ``concurrency`` at a time; returns throughput and latencies."""
    with InProcessBatchServer(latency=latency) as server:
        result = asyncio.run(_bench(runs, concurrency, server))
    if result["created_jobs"] != runs + 1:
        raise RuntimeError(f"expected {runs + 1} stored jobs, got {result['created_jobs']}")
    result["target_per_second"] = TARGET_PER_SECOND
    result["ratio"] = result["per_second"] / TARGET_PER_SECOND
    return result


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 1000
    concurrency = int(argv[1]) if len(argv) > 1 else 100
    latency = float(argv[2]) if len(argv) > 2 else 0.02
    r = bench_batch(runs, concurrency, latency)
    print(
        f"CloudBatchInvoker.run against the in-process BatchService ({r['latency_ms']:.0f} ms/call)"
    )
    print(
        f"{'runs':>6} {'conc':>5} {'seconds':>8} {'subm/s':>8} {'target':>7} {'ratio':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7}"
    )
    print(
        f"{r['runs']:>6} {r['concurrency']:>5} {r['seconds']:>8.2f} {r['per_second']:>8.0f} "
        f"{r['target_per_second']:>7.0f} {r['ratio']:>5.1f}x "
        f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}"
    )
    return 0 if r["ratio"] >= 1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
