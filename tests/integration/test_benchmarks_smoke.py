"""Every benchmark once, at a tiny size, on the session's control plane: none may rot.

The figures at this size mean nothing and no target is asserted; what is checked is
that each benchmark still runs end to end against the real operator and reports every
number the table needs, with the values that must be positive positive. The full
sizes run with ``make bench`` (docs/performance.md).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks import issue13, profile, table
from benchmarks.bench_batch import bench_batch
from benchmarks.bench_local import bench_local
from benchmarks.session import session_on
from wt_envtest import ControlPlane
from wt_envtest.namespaces import namespace_name


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


async def test_issue13_benchmarks_report_every_figure(
    control_plane: ControlPlane, crds: Any, workspace: Path, tmp_path: Path
) -> None:
    prefix = namespace_name("bench") + "-"
    async with session_on(
        control_plane, workspace, tmp_path, prefix=prefix, clean_up=True
    ) as session:
        result = await issue13.measure(session, issue13.TINY)

    (local,) = result["local"]["rounds"]
    assert local["runs"] == issue13.TINY.local_runs
    assert local["operator_cpu_ms_per_run"] > 0
    assert local["workflow_wall_ms"] > 0
    assert _finite(local["overhead_p50_ms"], local["overhead_p95_ms"])
    writes = local["writes"]
    # Every Local run writes its status and posts Events; a silent one stores no output.
    assert writes["workflowrun_persisted"] > 0
    assert writes["workflowrun_requests"] >= writes["workflowrun_persisted"]
    assert writes["events_created"] > 0
    assert writes["log_configmap_writes"] == 0
    # A run that prints has its output stored in its log ConfigMap.
    assert result["local"]["with_output"]["writes"]["log_configmap_writes"] > 0

    ((queue_round,),) = [q["rounds"] for q in result["queues"]]
    # No run finishes before its own sleep; the ideal is whole waves of them.
    assert queue_round["total_seconds"] >= issue13.TINY.queue_seconds
    assert queue_round["ideal_seconds"] == 2 * issue13.TINY.queue_seconds
    assert queue_round["ratio"] > 0
    assert queue_round["running_to_succeeded_p50_seconds"] >= issue13.TINY.queue_seconds
    assert queue_round["handoff_max_ms"] >= queue_round["handoff_p50_ms"]
    # The machine's floor: the same runs executed directly take at least their sleeps too.
    assert queue_round["direct_seconds"] >= 2 * issue13.TINY.queue_seconds
    assert queue_round["first_wave_started_seconds"] >= queue_round["first_start_seconds"] > 0

    (burst,) = result["bursts"]["rounds"]
    (ceiling,) = result["bursts"]["ceiling_rounds"]
    assert burst["jobs_created"] == burst["runs"] == issue13.TINY.burst_runs
    assert burst["runs_per_second"] > 0 and ceiling["runs_per_second"] > 0
    assert burst["operator_cpu_ms_per_run"] > 0
    assert burst["cpu_ms_per_run"]["kube-apiserver"] > 0
    assert burst["writes"]["workflowrun_persisted"] > 0

    (scale,) = result["scale"]["rounds"]
    assert scale["objects"] == issue13.TINY.scale_total
    assert scale["rss_mb"] > 10
    assert scale["idle_cpu_percent"] >= 0 and scale["idle_window_seconds"] > 0

    # The bare kopf operator ran the same runs, in the same ways, through to the same phases.
    (local_floor,) = result["local"]["floor_rounds"]
    (burst_floor,) = result["bursts"]["floor_rounds"]
    (scale_floor,) = result["scale"]["floor_rounds"]
    assert local_floor["operator_cpu_ms_per_run"] > 0
    assert local_floor["writes"]["events_created"] > 0
    assert burst_floor["jobs_created"] == 0  # no Batch call: the floor is kopf's alone
    assert burst_floor["operator_cpu_ms_per_run"] > 0
    assert scale_floor["rss_mb"] > 10

    result.update(machine={"cpus": 2, "python": "3"}, commit="test", when="now")
    text = table.header(result) + "\n" + table.render(result)
    for row in ("CPU per Local run", "CPU per CloudBatch run", "persisted", "refused", "RSS"):
        assert row in text
    assert "idle CPU" in text and "overhead p50" in text and "queue hand-off" in text
    assert "kopf's floor" in text and "executed directly" in text
    assert "nan" not in text


async def test_profiles_sample_the_operator(
    control_plane: ControlPlane, crds: Any, workspace: Path, tmp_path: Path
) -> None:
    prefix = namespace_name("profile") + "-"
    async with session_on(
        control_plane, workspace, tmp_path, prefix=prefix, clean_up=True
    ) as session:
        result = await profile.run_profiles(
            session, local_runs=2, burst_runs=6, rate=200, out_dir=tmp_path, warmup=0
        )
    for name in ("local", "burst"):
        s = result[name]
        assert s["samples"] > 0, name
        assert s["measured_cpu_ms_per_run"] > 0
        assert s["own"] and s["cumulative"] and s["packages"] and s["entries"]
        assert all(0 < row["share"] <= 1 for row in s["own"])
        assert (tmp_path / f"profile-{name}.txt").read_text().strip()
    # The operator's own code is on the sampled stacks (py-spy attached to the right pid).
    stacks = (tmp_path / "profile-local.txt").read_text()
    assert "wt_operator/" in stacks
    assert "Local runs" in profile.render("Local runs", result["local"])


def test_library_benchmarks_run() -> None:
    local = bench_local(2)
    assert [row["case"] for row in local] == [
        "direct exec",
        "invoker, launcher=prefix",
        "invoker, launcher=pixi (stand-in)",
    ]
    assert all(row["median_ms"] > 0 and row["ratio_vs_direct"] > 0 for row in local)
    batch = bench_batch(runs=20, concurrency=5, latency=0.0)
    assert batch["per_second"] > 0 and batch["created_jobs"] == 21
