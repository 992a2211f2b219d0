"""Where the operator's CPU goes: py-spy on the operator process during two benchmarks.

Exists because CPU per run (:mod:`benchmarks.local_runs`, :mod:`benchmarks.batch_burst`)
says how much, not where. ``py-spy record`` samples the running operator from
outside (ptrace; no change to the process, no import of a profiler into it) while
the Local path (runs one at a time) and the Batch burst run, writes collapsed
stacks (``--format raw --function``: one line per distinct stack, frames as
``function (file:first line)``), and this module aggregates them per function:

* *own*: samples whose innermost frame is the function (the CPU spent in its body,
  including C code it called, such as json's encoder or the ssl module);
* *cumulative*: samples with the function anywhere on the stack (counted once per
  sample, so recursion does not inflate it); the event loop's and worker threads' own
  frames (``run_forever`` … ``Handle._run``, on every stack) are left out of that list;
* *by package*: own samples by the top-level package of the innermost frame;
* *by entry point*: samples by the outermost frame below the event loop's (the task's
  coroutine or callback, or the function a worker thread runs): which activity costs.

Only the thread holding the GIL is sampled (``--gil``): idle threads (the event loop
in ``epoll_wait``, executor workers waiting for work) release it. py-spy's own idle
detection let those through here and tripled the sample count. A share of samples
is therefore a share of the Python work; the CPU per run it is multiplied by comes
from ``/proc`` in the same window.

``python -m benchmarks.profile [--quick] [--rate HZ] [--operator-source DIR]`` (or
``python -m benchmarks --profile``) writes the top entries into ``docs/performance.md``
(not with ``--quick``; another checkout's into its own section) and the raw stacks to
``benchmarks/results/[before/]profile-*.txt`` (for a flame graph:
``flamegraph.pl < profile-local.txt``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Set
from pathlib import Path
from typing import Any

from benchmarks.batch_burst import burst_round
from benchmarks.docs import RESULTS, code_version, replace_section
from benchmarks.local_runs import local_round
from benchmarks.session import BenchSession, operator_pid, own_session

TOP = 15
STRUCTURAL = (
    "<module> (wt_operator/__main__.py",
    "main (wt_operator/__main__.py",
    "serve (wt_operator/serve.py",
    "run (kopf/_core/reactor/running.py",
    "_run_module_as_main (<frozen runpy>",
    "_run_code (<frozen runpy>",
    "run (asyncio/runners.py",
    "Runner.run (asyncio/runners.py",
    "BaseEventLoop.run_until_complete (asyncio/base_events.py",
    "BaseEventLoop.run_forever (asyncio/base_events.py",
    "BaseEventLoop._run_once (asyncio/base_events.py",
    "Handle._run (asyncio/events.py",
    "Thread._bootstrap (threading.py",
    "Thread._bootstrap_inner (threading.py",
    "Thread.run (threading.py",
    "_worker (concurrent/futures/thread.py",
    "_WorkItem.run (concurrent/futures/thread.py",
)
"""The event loop's and the worker threads' own frames: on (nearly) every stack, so left
out of the cumulative list (their own time still shows)."""


def py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed (it is in the project's test extra)")
    return found


@contextlib.asynccontextmanager
async def sampling(pid: int, out: Path, rate: int) -> AsyncIterator[None]:
    """``py-spy record`` on ``pid`` for the ``async with`` block, collapsed stacks to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [py_spy(), "record", "--pid", str(pid), "--rate", str(rate)]
    args += ["--format", "raw", "--function", "--gil", "--output", str(out)]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    # py-spy needs a moment to attach; the first samples must not miss the first run.
    await asyncio.sleep(1.0)
    if proc.returncode is not None:
        output = await proc.stdout.read() if proc.stdout else b""
        raise RuntimeError(f"py-spy exited with {proc.returncode}: {output.decode()}")
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
        if not out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {stdout.decode()}")


@dataclasses.dataclass
class Profile:
    samples: int = 0
    own: Counter[str] = dataclasses.field(default_factory=Counter)
    cumulative: Counter[str] = dataclasses.field(default_factory=Counter)
    packages: Counter[str] = dataclasses.field(default_factory=Counter)
    entries: Counter[str] = dataclasses.field(default_factory=Counter)


def structural(frame: str) -> bool:
    return frame.startswith(STRUCTURAL)


def entry_of(frames: list[str]) -> str:
    """What the loop (or a worker thread) was running: the first frame below its own."""
    for frame in frames:
        if not structural(frame):
            return frame
    return frames[-1]


def package_of(frame: str) -> str:
    """``json/encoder.py`` → ``json``; ``selectors.py`` → ``selectors``; ``<frozen …>`` as is."""
    where = frame.rsplit(" (", 1)[-1].rstrip(")")
    path = where.rsplit(":", 1)[0]
    if path.startswith("<"):
        return path
    return path.split("/", 1)[0].removesuffix(".py")


def aggregate(lines: Iterable[str]) -> Profile:
    """Per-function totals from py-spy's collapsed stacks (``frame;frame;… count``)."""
    prof = Profile()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        prof.samples += count
        prof.own[frames[-1]] += count
        prof.packages[package_of(frames[-1])] += count
        prof.entries[entry_of(frames)] += count
        for frame in set(frames):
            prof.cumulative[frame] += count
    return prof


def summary(prof: Profile, *, rate: int, runs: int, cpu_ms_per_run: float) -> dict[str, Any]:
    """The top entries as plain data (for JSON and the Markdown tables).

    A share is of all samples; ms/run is that share of the CPU per run measured from
    ``/proc`` in the same window. Samples alone would overstate it on a busy machine:
    a thread holding the GIL while the kernel has it waiting for a core is sampled
    as if it ran.
    """

    def rows(counter: Counter[str], skip: Set[str] = frozenset()) -> list[dict[str, Any]]:
        picked = [(f, n) for f, n in counter.most_common() if f not in skip][:TOP]
        return [
            {
                "function": f,
                "share": n / prof.samples,
                "ms_per_run": n / prof.samples * cpu_ms_per_run,
            }
            for f, n in picked
        ]

    return {
        "samples": prof.samples,
        "rate_hz": rate,
        "runs": runs,
        "sampled_cpu_ms_per_run": prof.samples / rate * 1000 / runs,
        "measured_cpu_ms_per_run": cpu_ms_per_run,
        "own": rows(prof.own),
        "cumulative": rows(prof.cumulative, {f for f in prof.cumulative if structural(f)}),
        "packages": rows(prof.packages),
        "entries": rows(prof.entries),
    }


def _table(title: str, rows: list[dict[str, Any]]) -> list[str]:
    out = [f"| {title} | share | ms/run |", "| --- | ---: | ---: |"]
    for r in rows:
        out.append(f"| `{r['function']}` | {r['share'] * 100:.1f} % | {r['ms_per_run']:.2f} |")
    return out


def render(name: str, s: dict[str, Any]) -> str:
    """One benchmark's profile as Markdown."""
    lines = [
        f"**{name}** — {s['runs']} runs, {s['samples']} samples at {s['rate_hz']} Hz "
        f"(≈ {s['sampled_cpu_ms_per_run']:.1f} ms per run holding the GIL); "
        f"{s['measured_cpu_ms_per_run']:.1f} ms CPU per run from /proc in the same window, "
        "which the ms/run columns share out.",
        "",
        *_table("own time (innermost frame)", s["own"]),
        "",
        *_table("cumulative (on the stack)", s["cumulative"]),
        "",
        *_table("own time by package", s["packages"][:8]),
        "",
        *_table("by entry point (the task or thread's outermost frame)", s["entries"][:10]),
    ]
    return "\n".join(lines)


async def profile_local(
    session: BenchSession, runs: int, rate: int, out_dir: Path = RESULTS, warmup: int = 5
) -> dict[str, Any]:
    ns = session.namespace("profile-local")
    async with session.running(ns) as op:
        # Warm the operator first (imports, connections, the cached activation): the
        # profile is of the steady state. The workflow's own time is not needed here.
        if warmup:
            await local_round(session, op, ns, 1, prefix="warm", warmup=warmup - 1, own_seconds=0)
        out = out_dir / "profile-local.txt"
        async with sampling(operator_pid(op), out, rate):
            result = await local_round(
                session, op, ns, runs, prefix="prof", warmup=0, own_seconds=0
            )
    stacks = aggregate(out.read_text().splitlines())
    s = summary(stacks, rate=rate, runs=runs, cpu_ms_per_run=result["operator_cpu_ms_per_run"])
    return s


async def profile_burst(
    session: BenchSession, runs: int, rate: int, out_dir: Path = RESULTS
) -> dict[str, Any]:
    ns = session.namespace("profile-burst")
    async with session.running(ns) as op:
        out = out_dir / "profile-burst.txt"
        pids = {"operator": operator_pid(op)}
        async with sampling(pids["operator"], out, rate):
            result = await burst_round(session, ns, runs, pids)
    stacks = aggregate(out.read_text().splitlines())
    s = summary(stacks, rate=rate, runs=runs, cpu_ms_per_run=result["operator_cpu_ms_per_run"])
    s["runs_per_second"] = result["runs_per_second"]
    return s


async def run_profiles(
    session: BenchSession,
    *,
    local_runs: int,
    burst_runs: int,
    rate: int,
    out_dir: Path = RESULTS,
    warmup: int = 5,
) -> dict[str, Any]:
    """Both profiles; raw stacks written to ``out_dir``."""
    return {
        "local": await profile_local(session, local_runs, rate, out_dir, warmup),
        "burst": await profile_burst(session, burst_runs, rate, out_dir),
    }


def markdown(result: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in result["load_average_before"])
    return "\n\n".join(
        [
            f"Profiled {result['when']}, code {result['code']}; load average before: {load} "
            "(2 cores).",
            render("Local runs, one at a time", result["local"]),
            render("CloudBatch burst, created at once until all Submitted", result["burst"]),
        ]
    )


async def _main(quick: bool, rate: int, source: Path | None, out_dir: Path) -> dict[str, Any]:
    async with own_session(source) as session:
        return await run_profiles(
            session,
            local_runs=20 if quick else 200,
            burst_runs=200 if quick else 1000,
            rate=rate,
            out_dir=out_dir,
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs; docs left alone")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument(
        "--operator-source",
        type=Path,
        metavar="DIR",
        help="profile the operator of this checkout instead (section profile-before)",
    )
    args = parser.parse_args(argv)
    source = args.operator_source.resolve() if args.operator_source else None
    out_dir = RESULTS / "before" if source else RESULTS
    load = os.getloadavg()
    result = asyncio.run(_main(args.quick, args.rate, source, out_dir))
    result.update(
        load_average_before=load,
        when=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        code=f"{source} (--operator-source)" if source else code_version(),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "profile.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    print(text)
    if not args.quick:
        replace_section("profile-before" if source else "profile", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
