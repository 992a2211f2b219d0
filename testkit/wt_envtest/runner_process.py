"""A real ``wt-runner`` process for tests: start, stop, ``kill -9``, start again.

The runner runs as the test's own uid here (the workspace the test kit builds lives
in pytest's private temp directory, which no other uid may read), so it is started
with ``--allow-same-uid``; the uid check itself is tested separately with a client
of another uid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from wt_envtest.processes import kill_group, spawn, tail

__all__ = ["RunnerProcess"]


class RunnerProcess:
    """``wt-runner --socket <dir>/runner.sock`` with a minimal environment of its own."""

    def __init__(self, directory: Path, *, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.socket = directory / "runner.sock"
        self.log_path = directory / "runner.log"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> RunnerProcess:
        self.socket.unlink(missing_ok=True)
        args = [
            sys.executable,
            "-m",
            "wt_operator.runner",
            "--socket",
            str(self.socket),
            "--allow-uid",
            str(os.getuid()),
            "--allow-same-uid",
        ]
        self.proc = spawn(args, self.log_path, env=self.env)
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wt-runner did not start:\n{tail(self.log_path)}")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        """``kill -9``: the runner gets no chance to clean up (its workflows live on)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, grace=15.0)

    def logs(self) -> str:
        return tail(self.log_path, 6000)
