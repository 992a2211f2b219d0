"""Where the control plane's binaries (etcd, kube-apiserver, kubectl, helm) come from.

The envtest script also builds kube-controller-manager and kube-scheduler into the same
folder; they are not required here (only :mod:`.controllers` needs them, and says so).

Exists so that finding them is one decision with one error: ``KUBEBUILDER_ASSETS``
when it holds all four, else the project's envtest script — whose path the
project passes in (the harness does not know where it is installed) — which
builds what is missing once into a cache and prints the folder as its last line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["TOOLS", "EnvtestUnavailable", "find_bin_dir"]

TOOLS = ("etcd", "kube-apiserver", "kubectl", "helm")


class EnvtestUnavailable(RuntimeError):
    """The control-plane binaries could not be found or built."""


def _complete(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) for tool in TOOLS)


def find_bin_dir(script: Path | None = None, *, assets_env: bool = True) -> Path:
    """The folder holding etcd, kube-apiserver, kubectl and helm.

    ``KUBEBUILDER_ASSETS`` when complete, else the last stdout line of ``script``
    (``hack/envtest.sh`` in this project: it builds missing binaries once into a
    cache outside the checkout). Raises :class:`EnvtestUnavailable` otherwise.
    ``assets_env=False`` ignores ``KUBEBUILDER_ASSETS``: for a script that prints a folder
    of another Kubernetes version (the version matrix's oldest minor).
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS") if assets_env else None
    if assets and _complete(Path(assets)):
        return Path(assets).resolve()
    if script is None:
        raise EnvtestUnavailable(
            f"KUBEBUILDER_ASSETS does not name a folder with {', '.join(TOOLS)}, "
            "and no envtest script was given (pytest ini option wt_envtest_script)"
        )
    try:
        proc = subprocess.run(
            ["bash", str(script)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise EnvtestUnavailable(f"cannot run {script}: {exc}") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise EnvtestUnavailable(
            f"{script.name} failed (exit {proc.returncode}); the control-plane "
            f"binaries are needed by the integration tests:\n{proc.stderr[-3000:]}"
        )
    folder = Path(lines[-1])
    if not _complete(folder):
        raise EnvtestUnavailable(f"{script.name} printed {folder}, which lacks one of {TOOLS}")
    return folder
