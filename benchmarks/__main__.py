"""``python -m benchmarks [--quick]``: every benchmark, as tables beside their targets.

Library figures first, then the operator on a real control plane (etcd +
kube-apiserver from hack/envtest.sh) with the operator as a real process.
JSON goes to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from benchmarks import bench_operator as ops
from benchmarks.bench_invokers import bench_invokers
from benchmarks.bench_invokers import table as invokers_table
from wt_envtest import ControlPlane, OperatorProcess, apply_crds, start_control_plane
from wt_testkit.batch import InProcessBatchServer
from wt_testkit.workflows import make_workspace

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ENVTEST = ROOT / "hack" / "envtest.sh"
ROUNDS = 2


def _row(name: str, value: str, target: str, ok: bool | None) -> str:
    verdict = "" if ok is None else ("✅" if ok else "❌")
    return f"| {name} | {value} | {target} | {verdict} |"


async def _operator_benches(plane: ControlPlane, tmp: Path, quick: bool) -> dict[str, Any]:
    workspace = make_workspace(tmp / "workspace")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(plane.kubeconfig), client_configuration=cfg)
    cfg.connection_pool_maxsize = 64
    api = client.ApiClient(cfg)
    server = InProcessBatchServer(latency=0.02)
    server.start()
    procs: list[OperatorProcess] = []

    def operator(ns: str, **env: str) -> OperatorProcess:
        plane.create_namespace(ns)
        proc = OperatorProcess(
            kubeconfig=plane.kubeconfig,
            namespaces=[ns],
            workspace=workspace,
            log_path=tmp / f"operator-{ns}.log",
            verbose=False,  # as the chart runs it by default
            env={
                "WT_OPERATOR_LOCAL_LAUNCHER": "prefix",
                "BATCH_EMULATOR_HOST": server.address,
                "WT_OPERATOR_BATCH_POLL_INTERVAL": "30",
                **env,
            },
        )
        procs.append(proc)
        return proc

    out: dict[str, Any] = {}
    try:
        operator("local-path").start()
        out["local_path"] = await ops.bench_local_path(
            api, "local-path", plane.metrics_text, workspace, 20 if quick else 100, tmp
        )

        # Benchmark 3 against its ceiling, alternating, twice: on two shared cores one
        # burst varies by ±20 %, so the table shows both rounds and the ratio of the means.
        batch_runs = 200 if quick else 1000
        server.lifecycle = [("RUNNING", 5.0), ("SUCCEEDED", 3600.0)]
        ceilings: list[dict[str, Any]] = []
        batches: list[dict[str, Any]] = []
        for k in range(ROUNDS):
            plane.create_namespace(f"ceiling-{k}")
            ceilings.append(
                await ops.bench_api_ceiling(
                    api,
                    f"ceiling-{k}",
                    batch_runs,
                    {**plane.pids, "load generator + Batch server": os.getpid()},
                )
            )
            batch_op = operator(f"batch-{k}").start()
            assert batch_op.proc is not None
            batches.append(
                await ops.bench_batch_throughput(
                    api,
                    f"batch-{k}",
                    server,
                    batch_runs,
                    # Polling is counted once, after the last round.
                    window=(10.0 if quick else 30.0) if k == ROUNDS - 1 else 0.0,
                    pids={
                        **plane.pids,
                        "operator": batch_op.proc.pid,
                        "load generator + Batch server": os.getpid(),
                    },
                )
            )
            # Its tracked jobs would otherwise poll Batch through the later benchmarks.
            await asyncio.to_thread(batch_op.stop)
        out["ceiling_rounds"], out["batch_rounds"] = ceilings, batches

        server.lifecycle = []
        out["scale"] = await ops.bench_scale(
            api,
            "scale",
            operator("scale").start,
            500 if quick else 5000,
            active=50,
            idle_window=10.0,
        )

        operator("concurrency", WT_OPERATOR_MAX_CONCURRENT_LOCAL_RUNS="8").start()
        out["concurrency"] = await ops.bench_concurrency(
            api, "concurrency", 16 if quick else 50, 8, 1.0
        )
    finally:
        for proc in procs:
            proc.stop()
        server.stop()
        await api.close()
    return out


def operator_table(r: dict[str, Any]) -> str:
    lp, sc, cc = r["local_path"], r["scale"], r["concurrency"]
    rows = ["| measurement | value | target | |", "| --- | ---: | ---: | :---: |"]
    rows.append(
        _row(
            f"API writes per WorkflowRun ({lp['runs']} local runs)",
            f"{lp['writes_per_run']:.2f}",
            "≤ 4",
            lp["writes_per_run"] <= 4,
        )
    )
    rows.append(
        _row(
            "… plus Events created per run",
            f"{lp['event_writes_per_run']:.2f}",
            "one per transition",
            None,
        )
    )
    rows.append(
        _row(
            "operator overhead p50 (apply → Succeeded − workflow time)",
            f"{lp['overhead_p50_ms']:.0f} ms",
            "≤ 150 ms",
            lp["overhead_p50_ms"] <= 150,
        )
    )
    rows.append(_row("operator overhead p95", f"{lp['overhead_p95_ms']:.0f} ms", "", None))
    batches, ceilings = r["batch_rounds"], r["ceiling_rounds"]
    rate = statistics.mean(x["runs_per_second"] for x in batches)
    ceiling = statistics.mean(x["runs_per_second"] for x in ceilings)
    rows.append(
        _row(
            f"Batch: {batches[0]['runs']} runs created at once → all Submitted "
            f"({len(batches)} rounds)",
            " / ".join(f"{x['runs_per_second']:.0f}" for x in batches) + " runs/s",
            "≥ 100 runs/s",
            rate >= 100,
        )
    )
    rows.append(
        _row(
            "… ceiling: the same 4 requests per run from a bare client, no operator",
            " / ".join(f"{x['runs_per_second']:.0f}" for x in ceilings) + " runs/s",
            "",
            None,
        )
    )
    rows.append(
        _row("… operator's throughput / ceiling (means)", f"{rate / ceiling:.2f}", "", None)
    )
    for name in batches[0]["cpu_ms_per_run"]:
        with_op = statistics.mean(x["cpu_ms_per_run"][name] for x in batches)
        bare = (
            f"{statistics.mean(x['cpu_ms_per_run'][name] for x in ceilings):.1f} ms"
            if name in ceilings[0]["cpu_ms_per_run"]
            else "—"
        )
        rows.append(
            _row(
                f"… CPU per run, {name}: with the operator (bare client)",
                f"{with_op:.1f} ms ({bare})",
                "",
                None,
            )
        )
    last = batches[-1]
    rows.append(
        _row(
            "Batch jobs created, each round",
            " / ".join(str(x["jobs_created"]) for x in batches),
            f"= {last['runs']}",
            all(x["jobs_created"] == x["runs"] for x in batches),
        )
    )
    rows.append(
        _row(
            "Batch API calls per run per minute (30 s polling)",
            f"{last['batch_calls_per_run_per_min']:.2f}",
            "",
            None,
        )
    )
    rows.append(
        _row(
            f"operator RSS with {sc['objects']} WorkflowRuns ({sc['active']} active)",
            f"{sc['rss_mb']:.0f} MB",
            "≤ 250 MB",
            sc["rss_mb"] <= 250,
        )
    )
    rows.append(
        _row(
            "operator idle CPU with them",
            f"{sc['idle_cpu_percent']:.1f} %",
            "near 0",
            sc["idle_cpu_percent"] < 5,
        )
    )
    rows.append(
        _row(
            f"{cc['runs']} × 1 s local runs, limit {cc['limit']}",
            f"{cc['total_seconds']:.1f} s vs ideal {cc['ideal_seconds']:.0f} s",
            "ratio near 1",
            None,
        )
    )
    rows.append(_row("… ratio to ideal", f"{cc['ratio']:.2f}×", "", None))
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    quick = parser.parse_args(argv).quick
    RESULTS.mkdir(parents=True, exist_ok=True)
    print("## wt_invokers\n", flush=True)
    inv = bench_invokers(10 if quick else 30, 200 if quick else 1000)
    print(invokers_table(inv) + "\n", flush=True)
    (RESULTS / "invokers.json").write_text(json.dumps(inv, indent=2))
    print("## wt-operator (real kube-apiserver + etcd, operator as a process)\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="wt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with start_control_plane(data_dir=tmp / "control-plane", envtest_script=ENVTEST) as plane:
            apply_crds(plane, [ROOT / "crds"])
            result = asyncio.run(_operator_benches(plane, tmp, quick))
    print(operator_table(result))
    (RESULTS / "operator.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
