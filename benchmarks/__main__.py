"""``python -m benchmarks``: issue 13's table (the operator on a real control plane).

Options: ``--quick`` (smaller sizes, two rounds, docs left alone), ``--rounds N``,
``--profile`` (instead: the py-spy profiles, :mod:`benchmarks.profile`), ``--library``
(also the wt_invokers benchmarks, :mod:`benchmarks.bench_invokers`),
``--operator-source DIR`` (measure another checkout: the re-measured "before"),
``--render`` (measure nothing, show the last results again). JSON goes to
``benchmarks/results/``; a full run rewrites the table in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks import issue13, profile, table
from benchmarks.bench_invokers import bench_invokers
from benchmarks.bench_invokers import table as invokers_table
from benchmarks.docs import RESULTS, code_version, replace_section
from benchmarks.session import describe_machine, own_session


async def _measure(sizes: issue13.Sizes, source: Path | None) -> dict[str, Any]:
    async with own_session(source) as session:
        return await issue13.measure(session, sizes)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes; docs left alone")
    parser.add_argument("--rounds", type=int, help="rounds per benchmark (default 3; quick 2)")
    parser.add_argument("--profile", action="store_true", help="the py-spy profiles instead")
    parser.add_argument("--library", action="store_true", help="also the library benchmarks")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: the table again from benchmarks/results/*.json (and the docs)",
    )
    parser.add_argument(
        "--operator-source",
        type=Path,
        metavar="DIR",
        help="measure the operator, library and CRDs of this checkout (e.g. `git archive "
        "19cb5f8`) instead of this tree's; results to issue13-before.json, docs left alone",
    )
    args = parser.parse_args(argv)
    if args.profile:
        other = ["--operator-source", str(args.operator_source)] if args.operator_source else []
        return profile.main(["--quick"] * args.quick + other)
    if args.render:
        return _show(json.loads((RESULTS / "issue13.json").read_text()), docs=not args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    sizes = issue13.QUICK if args.quick else issue13.FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    if args.library:
        inv = bench_invokers(10 if args.quick else 30, 200 if args.quick else 1000)
        (RESULTS / "invokers.json").write_text(json.dumps(inv, indent=2))
        print("## wt_invokers\n\n" + invokers_table(inv) + "\n", flush=True)
    machine, commit = describe_machine(), code_version()
    source = args.operator_source.resolve() if args.operator_source else None
    result = asyncio.run(_measure(sizes, source))
    if source is not None:
        commit = f"{source} (--operator-source)"
    result.update(
        machine=machine, commit=commit, when=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    name = "issue13-before.json" if source else "issue13.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    if source is not None:
        print(table.header(result) + "\n\n" + table.render(result))
        return 0
    return _show(result, docs=not args.quick)


def _show(result: dict[str, Any], *, docs: bool) -> int:
    """Print the table (with the re-measured "before" when there is one); update the docs."""
    before = RESULTS / "issue13-before.json"
    remeasured = json.loads(before.read_text()) if before.exists() else None
    text = f"{table.header(result, remeasured)}\n\n{table.render(result, remeasured)}"
    print(f"## Issue 13: the operator on a real control plane\n\n{text}")
    if docs:
        replace_section("table", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
