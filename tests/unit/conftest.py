"""Fixtures of the unit tier: the pinned helm and Prometheus' promtool for the chart tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.unit.chart import ROOT


@pytest.fixture(scope="module")
def helm(bin_dir: Path) -> Path:
    """The pinned helm binary (``bin_dir`` fails the test, never skips, when it is missing)."""
    return bin_dir / "helm"


@pytest.fixture(scope="module")
def promtool() -> Path:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "promtool.sh")], capture_output=True, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:  # never a skip: the alerts must be checked
        pytest.fail(f"hack/promtool.sh failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return Path(lines[-1])
