"""Conda-prefix activation as an environment *delta*, computed with py-rattler.

Exists so that a workflow can be started without the pixi binary (the ``prefix``
launcher, the pixi stand-in used in tests) yet see the same environment
``pixi run`` would give it: ``PATH``, ``CONDA_PREFIX`` and whatever the packages'
``etc/conda/activate.d`` scripts export.

rattler writes the activation as a shell script; the script is run once in a
shell and the resulting environment diffed against the one it started from.
Keeping only the difference lets callers apply it to a *later* parent
environment, so one (cached) activation serves many runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rattler.shell import ActivationVariables, PathModificationBehavior, Shell, activate

__all__ = ["ActivationDelta", "compute_activation"]

# Set by the shell itself, never by an activation script: not part of the delta.
_SHELL_NOISE = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})


@dataclass(frozen=True)
class ActivationDelta:
    """What activating a prefix changes in an environment."""

    prefix: Path
    set: Mapping[str, str] = field(default_factory=dict)
    """Variables the activation adds or changes."""
    unset: frozenset[str] = frozenset()
    """Variables the activation removes (e.g. those of a deactivated prefix)."""

    def apply(self, base: Mapping[str, str]) -> dict[str, str]:
        """A new environment: ``base`` with the activation applied (``base`` is not touched)."""
        env = {k: v for k, v in base.items() if k not in self.unset}
        env.update(self.set)
        return env


def _shell() -> str:
    # rattler's bash flavour only uses POSIX constructs (export, unset, `.`); any sh runs it.
    return shutil.which("bash") or "/bin/sh"


def _env_dump_command() -> str:
    # Found before activation changes PATH, and even when the caller's PATH is bare.
    env = shutil.which("env") or shutil.which("env", path="/usr/bin:/bin")
    if env is not None:
        return f"{shlex.quote(env)} -0"
    code = "import os; print(*(k + '=' + v for k, v in os.environ.items()), sep=chr(0), end='')"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def compute_activation(prefix: Path, base: Mapping[str, str] | None = None) -> ActivationDelta:
    """Activate ``prefix`` on top of ``base`` (default: ``os.environ``) and return the delta.

    Blocking (runs a shell once, a few milliseconds): call it in a thread from async code.
    Raises ``FileNotFoundError`` when ``prefix`` is not a conda environment.
    """
    prefix = Path(prefix).absolute()
    if not (prefix / "conda-meta").is_dir():
        raise FileNotFoundError(f"{prefix} is not a conda environment (no conda-meta/)")
    base_env = dict(os.environ if base is None else base)
    current_prefix = base_env.get("CONDA_PREFIX")
    variables = ActivationVariables(
        current_prefix=Path(current_prefix) if current_prefix else None,
        current_path=[p for p in base_env.get("PATH", "").split(os.pathsep) if p],
        # Replace: rattler then writes the full new PATH instead of "<new>:${PATH}",
        # which would list the parent's PATH twice.
        path_modification_behavior=PathModificationBehavior.Replace,
    )
    script = activate(prefix, variables, Shell.bash).script
    proc = subprocess.run(
        [_shell(), "-c", f"{script}\n{_env_dump_command()}"],
        env=base_env,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"activating {prefix} failed ({proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()[-1000:]}"
        )
    after: dict[str, str] = {}
    for item in proc.stdout.decode(errors="surrogateescape").split("\0"):
        key, sep, value = item.partition("=")
        if sep and key not in _SHELL_NOISE:
            after[key] = value
    changed = {k: v for k, v in after.items() if base_env.get(k) != v}
    removed = frozenset(k for k in base_env if k not in after and k not in _SHELL_NOISE)
    return ActivationDelta(prefix=prefix, set=changed, unset=removed)
