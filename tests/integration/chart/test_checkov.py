"""The rendered chart scanned by checkov, a policy tool nobody here wrote."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.chart.support import CHART, EVERYTHING, ROOT, _render

pytestmark = pytest.mark.timeout(180)
CHART_DOC = ROOT / "docs" / "chart.md"


def _checkov() -> Path:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "checkov.sh")], capture_output=True, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:  # never a skip: the scan is part of the proof
        pytest.fail(f"hack/checkov.sh failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return Path(lines[-1])


def documented_exceptions() -> dict[str, str]:
    """The checkov checks docs/chart.md lists as not applying, with their reasons."""
    rows = re.findall(r"^\| `(CKV\w+)` \| [^|]+ \| ([^|]+) \|$", CHART_DOC.read_text(), re.M)
    return {check: reason.strip() for check, reason in rows}


@pytest.mark.timeout(300)
def test_checkov_finds_nothing_but_the_documented_exceptions(
    control_plane: Any, tmp_path: Path
) -> None:
    renders = {
        "default.yaml": _render(control_plane, "wt-system"),
        "everything.yaml": str(
            control_plane.helm(
                "template", "wt", str(CHART), "--namespace", "wt-system",
                "--values", str(EVERYTHING), "--api-versions", "monitoring.coreos.com/v1",
            ).stdout
        ),
    }  # fmt: skip
    for name, text in renders.items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        [
            str(_checkov()),
            "--directory", str(tmp_path),
            "--framework", "kubernetes",
            "--output", "json",
            "--quiet",
            "--compact",
            "--skip-download",  # no Bridgecrew platform: the bundled checks only
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: dict[str, set[str]] = {}
    passed = 0
    for rep in reports:
        passed += rep["summary"]["passed"]
        for check in rep["results"]["failed_checks"]:
            failed.setdefault(check["check_id"], set()).add(
                f"{check['file_path']}:{check['resource']}"
            )
    assert passed > 50, report  # it really scanned the manifests
    exceptions = documented_exceptions()
    assert exceptions, f"no exceptions table found in {CHART_DOC}"
    undocumented = {c: sorted(r) for c, r in failed.items() if c not in exceptions}
    assert not undocumented, f"checkov failures not listed in docs/chart.md: {undocumented}"
    stale = sorted(set(exceptions) - set(failed))
    assert not stale, f"docs/chart.md lists checks that no longer fail: {stale}"
