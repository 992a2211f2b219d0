"""Overhead of LocalSubprocessInvoker's run()+wait() over executing the workflow directly.

Exists to keep the invoker's supervision (temp config files, activation, process-
group bookkeeping, output draining) cheap next to the process start it wraps.
Target: the ``prefix`` launcher within 1.5x of a direct exec of the same
executable. The ``pixi`` row uses the pixi STAND-IN (a Python script: the real
pixi cannot be installed here), so it measures a Python start-up, not pixi.

Run: ``.venv/bin/python benchmarks/bench_local.py [N]``
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rattler import MatchSpec

from wt_invokers.local import LocalSubprocessInvoker
from wt_testkit.workflows import (
    SAMPLE_WORKFLOW,
    make_workspace_async,
    workflow_config,
    workflow_executable,
    write_pixi_standin,
)


async def exec_workflow_ms(exe: Path, config: Path, cwd: Path) -> float:
    """Wall time (ms) of one direct execution of the workflow, no operator or invoker."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        "run",
        "--config-file",
        str(config),
        "--execution-mode",
        "local",
        "--mock-io",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        start_new_session=True,
    )
    await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"direct exec failed with {proc.returncode}")
    return (time.perf_counter() - t0) * 1000


async def direct_exec_ms(exe: Path, config: Path, cwd: Path, n: int) -> list[float]:
    """Wall times (ms) of ``n`` direct executions of the workflow: the baseline of every ratio."""
    return [await exec_workflow_ms(exe, config, cwd) for _ in range(n)]


async def _invoker(inv: LocalSubprocessInvoker, config: str, results: str, n: int) -> list[float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        await inv.run(f"bench-{i}", config, results, "local", True)
        code = await inv.wait(timeout=60)
        if code != 0:
            raise RuntimeError(f"{inv.launcher} run failed with {code}: {inv.output_tail}")
        times.append((time.perf_counter() - t0) * 1000)
    return times


async def _bench(n: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="wt-bench-local-") as tmp:
        root = Path(tmp)
        ws = await make_workspace_async(root / "ws")
        config_text = workflow_config(exit_code=0)
        config = root / "config.yaml"
        config.write_text(config_text)
        results = (root / "results").as_uri()
        exe = workflow_executable(ws)
        pixi = write_pixi_standin(root / "bin")

        prefix_inv = LocalSubprocessInvoker(MatchSpec(SAMPLE_WORKFLOW), cwd=ws, launcher="prefix")
        pixi_inv = LocalSubprocessInvoker(MatchSpec(SAMPLE_WORKFLOW), cwd=ws, pixi_executable=pixi)
        # Warm-up: page cache, and the prefix launcher's one-time (cached) activation.
        await direct_exec_ms(exe, config, ws, 2)
        await _invoker(prefix_inv, config_text, results, 2)
        await _invoker(pixi_inv, config_text, results, 1)

        rows: list[tuple[str, list[float]]] = [
            ("direct exec", await direct_exec_ms(exe, config, ws, n)),
            ("invoker, launcher=prefix", await _invoker(prefix_inv, config_text, results, n)),
            (
                "invoker, launcher=pixi (stand-in)",
                await _invoker(pixi_inv, config_text, results, n),
            ),
        ]
    base = statistics.median(rows[0][1])
    return [
        {
            "case": name,
            "n": n,
            "median_ms": round(statistics.median(times), 2),
            "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 2),
            "ratio_vs_direct": round(statistics.median(times) / base, 2),
        }
        for name, times in rows
    ]


def bench_local(n: int) -> list[dict[str, Any]]:
    """Median/p90 wall time (ms) of run()+wait() of a no-op workflow per launcher, vs direct."""
    return asyncio.run(_bench(n))


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 30
    rows = bench_local(n)
    print(f"{'case':<36} {'n':>4} {'median ms':>10} {'p90 ms':>8} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['case']:<36} {row['n']:>4} {row['median_ms']:>10.2f} "
            f"{row['p90_ms']:>8.2f} {row['ratio_vs_direct']:>6.2f}"
        )
    print(f"(cpus: {os.cpu_count()}; target: launcher=prefix ratio <= 1.5)")


if __name__ == "__main__":
    main(sys.argv)
