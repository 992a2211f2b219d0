"""Running ``kubectl wt`` through the installed kubectl, for the plugin's integration tests.

kubectl finds the plugin as a user's would: ``kubectl-wt`` (this venv's console
script) on PATH.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

GROUP, VERSION, PLURAL = "wt.dev", "v1alpha1", "workflowruns"


def plugin_env(control_plane: Any, **extra: str) -> dict[str, str]:
    """The admin's environment, with this venv's bin (holding kubectl-wt) on PATH."""
    env = control_plane.env()
    env["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), env["PATH"]])
    env.update(extra)
    return env


async def kubectl_wt(
    control_plane: Any, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``kubectl wt ARGS`` through the real kubectl binary."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(control_plane.bin_dir / "kubectl"), "wt", *args],
        capture_output=True,
        text=True,
        input=input,
        env=env or plugin_env(control_plane),
        timeout=150,
        check=False,
    )


async def start_kubectl_wt(
    control_plane: Any, *args: str, **env: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(control_plane.bin_dir / "kubectl"),
        "wt",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=plugin_env(control_plane, **env),
    )


def manifest(name: str | None, spec: dict[str, Any]) -> str:
    meta = {"name": name} if name else {}
    return yaml.safe_dump(
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkflowRun", "metadata": meta, "spec": spec}
    )
