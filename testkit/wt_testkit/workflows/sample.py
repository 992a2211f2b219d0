"""Driving the sample workflow through its config file, and reading back what it saw.

Exists so a test states what the workflow should do (exit code, sleep, output,
a grandchild, a result file, …) as keyword arguments, and asserts on what the
workflow really received (argv, environment, cwd, config file and its mode) from
the echo file it writes — instead of each test hand-writing config text and
parsing output.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from wt_invokers.processes import pid_is_alive

__all__ = [
    "ConfigValue",
    "WorkflowEcho",
    "process_is_alive",
    "read_echo_file",
    "wait_for_path",
    "wait_process_gone",
    "workflow_config",
]

process_is_alive = pid_is_alive
"""``process_is_alive(pid)``: whether a pid exists and is not a zombie (for tree-kill asserts)."""

ConfigValue = str | int | float | bool | os.PathLike[str] | None
"""What :func:`workflow_config` accepts as a setting's value."""


def workflow_config(**settings: ConfigValue) -> str:
    """The sample workflow's config text: one ``key: value`` line per setting (None skipped).

    Values are double-quoted YAML strings so paths with spaces or colons survive;
    they must not contain ``"``, ``\\`` or newlines (the sh parser is deliberately tiny).
    """
    lines = []
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = str(value)
        else:
            raw = os.fspath(value)
            if any(c in raw for c in '"\\\n'):
                raise ValueError(f"{key}: value {raw!r} has a quote, backslash or newline")
            text = f'"{raw}"'
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class WorkflowEcho:
    """What a sample workflow run saw, read back from its ``echo_file``."""

    name: str
    version: str
    argv: list[str]
    """Arguments after the executable (``run --config-file … ``)."""
    cwd: str
    pid: int
    config_mode: str
    """Octal permission bits of the config file, e.g. ``"600"``."""
    env: dict[str, str]
    config_text: str
    lithops_config_text: str | None = None
    lithops_mode: str | None = None

    def option(self, flag: str) -> str | None:
        """The value after ``flag`` in argv (None when absent)."""
        if flag in self.argv:
            i = self.argv.index(flag)
            return self.argv[i + 1] if i + 1 < len(self.argv) else None
        return None


_ECHO_FIELDS = frozenset({"name", "version", "cwd", "pid", "config_mode", "lithops_mode"})


def read_echo_file(path: str | os.PathLike[str]) -> WorkflowEcho:
    """Parse the file a sample workflow writes for ``echo_file`` (and its siblings)."""
    p = Path(path)
    argv: list[str] = []
    env: dict[str, str] = {}
    fields: dict[str, str] = {}
    last_env: str | None = None
    for line in p.read_text().split("\n")[:-1]:
        tag, _, value = line.partition(" ")
        if tag == "argv":
            argv.append(value)
        elif tag == "env" and "=" in value:
            key, _, val = value.partition("=")
            env[key] = val
            last_env = key
        elif tag in _ECHO_FIELDS:
            fields[tag] = value
        elif last_env is not None:  # `env` prints multi-line values over several lines
            env[last_env] += "\n" + line
    lithops = Path(f"{p}.lithops")
    return WorkflowEcho(
        name=fields.get("name", ""),
        version=fields.get("version", ""),
        argv=argv,
        cwd=fields.get("cwd", ""),
        pid=int(fields.get("pid", "0")),
        config_mode=fields.get("config_mode", ""),
        env=env,
        config_text=Path(f"{p}.config").read_text(),
        lithops_config_text=lithops.read_text() if lithops.exists() else None,
        lithops_mode=fields.get("lithops_mode"),
    )


async def wait_process_gone(pid: int, timeout: float = 5.0) -> None:
    """Wait (polling, without blocking the loop) until ``pid`` is gone or ``timeout`` passes;
    the caller asserts what it expects (a kill is asynchronous to whoever asked for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_is_alive(pid):
            return
        await asyncio.sleep(0.1)


async def wait_for_path(path: str | os.PathLike[str], timeout: float = 10.0) -> Path:
    """Wait (polling, without blocking the loop) until ``path`` exists; TimeoutError if not."""
    p = Path(path)
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(p.exists):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{p} did not appear within {timeout} s")
        await asyncio.sleep(0.01)
    return p
