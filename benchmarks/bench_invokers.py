"""Library benchmarks (issue: wt_invokers execution layer), one table with ratios.

(a) local run+wait of a no-op workflow per launcher vs direct exec — target ≤ 1.5× for prefix
(b) Batch submissions/s: 1,000 runs at concurrency 100, 20 ms server latency — target ≥ 200/s
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.bench_batch import bench_batch
from benchmarks.bench_local import bench_local


def bench_invokers(local_n: int = 30, batch_runs: int = 1000) -> dict[str, Any]:
    local = bench_local(local_n)
    batch = bench_batch(batch_runs, 100, 0.02)
    return {"local": local, "batch": batch}


def table(result: dict[str, Any]) -> str:
    rows = ["| measurement | value | target | ratio |", "| --- | ---: | ---: | ---: |"]
    for row in result["local"]:
        target = "≤ 1.5×" if "prefix" in row["case"] else ""
        rows.append(
            f"| local run+wait, {row['case']} | {row['median_ms']:.1f} ms | {target} "
            f"| {row['ratio_vs_direct']:.2f}× direct |"
        )
    b = result["batch"]
    rows.append(
        f"| Batch submissions ({b['runs']} @ {b['concurrency']}, {b['latency_ms']:.0f} ms) "
        f"| {b['per_second']:.0f}/s | ≥ 200/s | {b['per_second'] / 200:.2f}× target |"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(table(bench_invokers(10 if quick else 30, 200 if quick else 1000)))
