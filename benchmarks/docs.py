"""Generated sections of ``docs/performance.md``, replaced in place between markers.

Exists so measured figures reach the documentation by the program that measured
them, not by hand (no transcription errors, no stale half-updated tables), while
the prose around them stays hand-written. A section is::

    <!-- generated:NAME -->
    …
    <!-- /generated:NAME -->
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE_MD = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "benchmarks" / "results"


def replace_section(name: str, body: str, path: Path = PERFORMANCE_MD) -> None:
    """Put ``body`` between the ``name`` markers of ``path`` (appended when missing)."""
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = f"{text.rstrip()}\n\n{block}\n" if text else f"{block}\n"
    path.write_text(text)


def code_version() -> str:
    """This tree's commit, marked when it has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    # The generated docs change with every run; only code changes make the figures another's.
    dirty = git("status", "--porcelain", "--", ".", ":!docs")
    return f"{sha} (with uncommitted changes)" if dirty else sha
