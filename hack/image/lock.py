"""Pin the operator image's Python packages: ``operator/requirements.lock`` (``make lock``).

The image installs exactly the wheels this file names, hash-checked, so a release is
rebuilt from the same bytes and a compromised or yanked upload cannot slip in. It is
compiled with uv for the image's interpreter (CPython 3.11, glibc 2.36, Debian bookworm)
from the root distribution's own dependencies plus its ``operator`` extra, with
self-references such as ``wt-invokers[gcp]`` expanded.

Staleness is detected offline and cheaply: the header records ``input-digest``, a SHA-256
of exactly those requirement lines and the target; ``tests/image/test_lock.py`` recomputes
it from ``pyproject.toml`` and fails when they differ (dependencies changed, lock not
regenerated), and checks each direct requirement's pin satisfies its specifier.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
LOCK = REPO / "operator" / "requirements.lock"
EXTRA = "operator"
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-manylinux_2_36"
"""Markers are evaluated for this target (bookworm's glibc); the hashes cover every
platform's wheels, and no requirement here depends on the CPU architecture."""
UV_VERSION = "0.13.8"
"""Pinned: another uv version may format the same resolution differently."""

_DIGEST_LINE = re.compile(r"^# input-digest: (sha256:[0-9a-f]{64})$", re.MULTILINE)
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_requirements(pyproject: dict[str, Any]) -> list[str]:
    """The requirement lines the image's packages are resolved from, sorted and unique.

    The project's dependencies, its ``operator`` extra, and every extra that one names
    through a self-reference (``wt-invokers[gcp]``), recursively.
    """
    project = pyproject["project"]
    own = _canonical(project["name"])
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    lines: set[str] = set()
    pending, seen = [EXTRA], set()
    for line in project.get("dependencies", []):
        lines.add(line.strip())
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in extras[extra]:
            match = _NAME.match(line.strip())
            if match and _canonical(match.group(1)) == own:
                pending.extend(e.strip() for e in (match.group(2) or "").split(",") if e.strip())
            else:
                lines.add(line.strip())
    return sorted(lines, key=str.lower)


def input_digest(requirements: list[str]) -> str:
    """What the lock was compiled from, as one comparable string."""
    text = "\n".join([f"python {PYTHON_VERSION} {PYTHON_PLATFORM}", *requirements]) + "\n"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def recorded_digest(lock_text: str) -> str | None:
    """The ``input-digest`` a lock file was written with (None when it has none)."""
    match = _DIGEST_LINE.search(lock_text)
    return match.group(1) if match else None


def pins(lock_text: str) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of a lock."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", lock_text, re.MULTILINE)
    return {_canonical(name): version for name, version in found}


def compile_lock() -> str:
    """Resolve the requirements with uv (network: PyPI) and return the lock's text."""
    requirements = image_requirements(tomllib.loads(PYPROJECT.read_text()))
    with tempfile.TemporaryDirectory(prefix="wt-lock-") as tmp:
        # A relative input path keeps uv's "# via -r requirements.in" annotations stable.
        (Path(tmp) / "requirements.in").write_text("\n".join(requirements) + "\n")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "uv",
                "pip",
                "compile",
                "requirements.in",
                "--generate-hashes",
                "--no-header",
                "--python-version",
                PYTHON_VERSION,
                "--python-platform",
                PYTHON_PLATFORM,
                "--quiet",
            ],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(f"uv pip compile failed:\n{proc.stderr}")
    header = [
        "# The wt-operator image's Python packages, pinned and hash-checked. Do not edit:",
        "# regenerate with `make lock` (hack/image/lock.py, uv pip compile), which resolves",
        f"# for CPython {PYTHON_VERSION} on {PYTHON_PLATFORM} from these pyproject.toml lines:",
        *(f"#   {line}" for line in requirements),
        f"# input-digest: {input_digest(requirements)}",
    ]
    return "\n".join(header) + "\n" + proc.stdout


def main() -> int:
    try:
        import uv  # noqa: F401  (only to give a clear message when it is missing)
    except ImportError:
        print(f"uv is missing: `make lock` installs uv=={UV_VERSION}", file=sys.stderr)
        return 2
    text = compile_lock()
    LOCK.write_text(text)
    print(f"wrote {LOCK.relative_to(REPO)}: {len(pins(text))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
