"""Break each README promise on purpose, once, and check a test fails by assertion.

Exists so the list in docs/architecture.md ("Behaviours broken on purpose") can be
checked again after the code changed, instead of trusted. Each entry of
``break_on_purpose.json`` replaces one line of the product; the unit tier's decision and
runtime modules run against it; the file is put back byte for byte (from memory, not
from git, so uncommitted work survives). A break is caught only when a test fails by
assertion: a failure from a timeout is reported, because a hanging test says nothing
about which promise broke and costs the whole per-test timeout.

    .venv/bin/python hack/break_on_purpose.py [ID ...] [--tests PATH ...]

Exit status 1 when any break survives, is caught only by a timeout, or no longer
applies (its line changed: update the entry so the promise keeps a break).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = Path(__file__).with_suffix(".json")
UNIT = [
    # The pure core and its neighbours (settings, CLI, CRD generator, peering), one test
    # module per module under test.
    "tests/unit/test_core_batch.py",
    "tests/unit/test_core_errors.py",
    "tests/unit/test_core_globs.py",
    "tests/unit/test_core_invocation.py",
    "tests/unit/test_core_local.py",
    "tests/unit/test_core_retention.py",
    "tests/unit/test_core_spec.py",
    "tests/unit/test_core_status.py",
    "tests/unit/test_kopf_errors.py",
    "tests/unit/test_schedule_handlers.py",
    "tests/unit/test_config.py",
    "tests/unit/test_gen_crd.py",
    "tests/unit/test_main.py",
    "tests/unit/test_masking.py",
    "tests/unit/test_peering.py",
    "tests/unit/test_runtime_batch.py",
    "tests/unit/test_core_remote.py",
    "tests/unit/test_core_cloudrun.py",
    "tests/unit/test_isolation.py",
    "tests/unit/test_runtime_local.py",
    "tests/unit/test_gitops_health.py",
    "tests/unit/test_handlers.py",
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("tests/unit/test_core_*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("tests/unit/test_promises_*.py")),
]
_OPTIONS = ("--timeout", "30", "-rf", "--tb=no")
_FAILED = re.compile(r"^FAILED (\S+)(?: - (.*))?$")


def _run_tests(tests: list[str]) -> tuple[int, list[str], list[str]]:
    """pytest's exit status, the tests failing by assertion, and those failing by timeout."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", *_OPTIONS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},  # -rf lines are cut at the terminal width
        check=False,
    )
    asserted: list[str] = []
    timed_out: list[str] = []
    for line in proc.stdout.splitlines():
        match = _FAILED.match(line)
        if match:
            why = match.group(2) or ""
            (timed_out if "Timeout" in why else asserted).append(match.group(1))
    return proc.returncode, asserted, timed_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="only these entries (default: all)")
    parser.add_argument("--tests", nargs="+", help="test paths to run instead of each entry's")
    args = parser.parse_args(argv)
    entries = json.loads(TABLE.read_text())
    unknown = set(args.ids) - {e["id"] for e in entries}
    if unknown:
        parser.error(f"unknown entries: {', '.join(sorted(unknown))}")
    bad = 0
    for entry in entries:
        if args.ids and entry["id"] not in args.ids:
            continue
        path = ROOT / entry["file"]
        original = path.read_bytes()
        text = original.decode()
        if text.count(entry["old"]) != 1:
            print(f"STALE     {entry['id']}: its line is not in {entry['file']} exactly once")
            bad += 1
            continue
        path.write_text(text.replace(entry["old"], entry["new"]))
        try:
            status, asserted, timed_out = _run_tests(args.tests or entry.get("tests") or UNIT)
        finally:
            path.write_bytes(original)
        verdict = "CAUGHT" if asserted else ("TIMEOUT" if timed_out else "SURVIVED")
        if status != 0 and not (asserted or timed_out):
            verdict = f"ERROR({status})"  # collection or usage error: nothing was judged
        print(f"{verdict:<9} {entry['id']}: {entry['breaks']}")
        for test in asserted[:3]:
            print(f"          by {test}")
        for test in timed_out:
            print(f"          by timeout only: {test}")
        bad += verdict != "CAUGHT"
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
