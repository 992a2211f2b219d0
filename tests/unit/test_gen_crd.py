"""`hack/gen_crd.py`: the committed CRD is what its generator writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crd_matches_its_generator() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "gen_crd.py"), "--check"], check=False
    )
    assert proc.returncode == 0, "crds/ is stale: run `make crds`"
