"""kubectl and helm against the test cluster, as an administrator would run them.

Exists so tests exercise the real command-line tools (server-side apply, ``wait``,
``helm install``) with pinned versions from the envtest folder, a private helm
home per control plane (no user config leaks in), and failures that show stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CommandError", "run_tool", "tool_env"]


class CommandError(subprocess.CalledProcessError):
    """A kubectl/helm command failed; unlike its base, its message shows stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}\nstdout:\n{self.stdout}"


def tool_env(kubeconfig: Path, bin_dir: Path, data_dir: Path) -> dict[str, str]:
    """Environment for subprocesses: KUBECONFIG, binaries first on PATH, private helm dirs."""
    env = dict(os.environ)
    helm_home = data_dir / "helm"
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "KUBEBUILDER_ASSETS": str(bin_dir),
            "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }
    )
    return env


def run_tool(
    executable: Path,
    args: Sequence[Any],
    *,
    env: dict[str, str],
    input: Any,
    check: bool,
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    """Run one tool; ``input`` (str, or a manifest dict/list sent as JSON) is its stdin."""
    if input is not None and not isinstance(input, str):
        input = json.dumps(input)  # a manifest (dict/list) is valid YAML as JSON
    proc = subprocess.run(
        [str(executable), *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc
