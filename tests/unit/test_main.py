"""`python -m wt_operator`: the command line the operator starts with."""

from __future__ import annotations

import subprocess
import sys


def test_cli_requires_an_explicit_watch_scope() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wt_operator"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "--namespace" in proc.stderr and "--all-namespaces" in proc.stderr
