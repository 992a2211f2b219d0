"""The sample workflow as a conda package, built offline with rattler-build.

Exists so tests run a *real* conda package without any network channel: the
package (``wt-sample-workflow`` by default) is ``noarch: generic`` with no
dependencies, and its one executable is ``sample_workflow.sh`` beside this module
— a POSIX ``/bin/sh`` script using only ``sh``, ``sed``, ``awk``, ``sleep``,
``yes``, ``head``, ``tr``, ``cat`` of the host.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "SAMPLE_WORKFLOW",
    "SAMPLE_WORKFLOW_VERSION",
    "WorkflowPackage",
    "build_workflow_package",
]

SAMPLE_WORKFLOW = "wt-sample-workflow"
"""Name (and executable) of the default sample workflow package."""

SAMPLE_WORKFLOW_VERSION = "1.2.0"
"""Its default version; build others with ``WorkflowPackage(name, version)``."""

_LINE_99 = "x" * 99


@dataclass(frozen=True, order=True)
class WorkflowPackage:
    """One sample workflow package: its conda name (= executable) and version."""

    name: str = SAMPLE_WORKFLOW
    version: str = SAMPLE_WORKFLOW_VERSION

    @classmethod
    def parse(cls, text: str | WorkflowPackage) -> WorkflowPackage:
        """``"name"``, ``"name==1.0"`` or ``"name=1.0"`` (the default version when omitted)."""
        if isinstance(text, WorkflowPackage):
            return text
        name, _, version = text.replace("==", "=").partition("=")
        return cls(name.strip(), version.strip() or SAMPLE_WORKFLOW_VERSION)


def _script(package: WorkflowPackage) -> str:
    template = resources.files("wt_testkit.workflows").joinpath("sample_workflow.sh").read_text()
    return (
        template.replace("__NAME__", package.name)
        .replace("__VERSION__", package.version)
        .replace("__LINE99__", _LINE_99)
    )


def build_workflow_package(
    output_dir: str | os.PathLike[str], package: WorkflowPackage | str = WorkflowPackage()
) -> Path:
    """Build one sample workflow ``.conda`` into ``output_dir`` (a channel's ``noarch/``).

    Uses rattler-build's ``assemble_package``: no recipe, no build environment, no
    network — the package is one shell script, so there is nothing to compile.
    """
    import rattler_build  # heavy; keep importing this module cheap

    pkg = WorkflowPackage.parse(package)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wt-sample-stage-") as stage:
        exe = Path(stage) / "bin" / pkg.name
        exe.parent.mkdir()
        exe.write_text(_script(pkg))
        exe.chmod(0o755)
        result = rattler_build.assemble_package(
            name=pkg.name,
            version=pkg.version,
            target_platform="noarch",
            build_string="0",
            output_dir=out,
            files_dir=stage,
            noarch="generic",
            summary=f"wt sample workflow {pkg.version} (test double)",
            license="Apache-2.0",
            compression_level=1,
        )
    return Path(result.path).absolute()
