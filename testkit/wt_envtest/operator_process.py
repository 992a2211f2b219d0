"""The real operator as a child process, for integration tests, chaos, benchmarks and the demo.

Exists so nothing about the operator is simulated: ``python -m wt_operator`` with
its own event loop, signals, logs and ports, so ``kill -9`` and restarts are real.
The settings a test needs (short grace and poll intervals, free ports, the
workspace, a fake GCP project) are its defaults; anything else is one keyword.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from wt_envtest.processes import free_port, spawn

__all__ = ["OperatorProcess"]


@dataclasses.dataclass
class OperatorProcess:
    """One ``wt-operator`` process; ``start()`` returns once its liveness endpoint answers."""

    kubeconfig: Path
    namespaces: Sequence[str]
    workspace: Path
    log_path: Path
    path_prepend: Sequence[Path] = ()
    """Folders put first on PATH (the pixi stand-in)."""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Operator settings (WT_OPERATOR_*, BATCH_EMULATOR_HOST, …) on top of the defaults."""
    standalone: bool = True
    priority: int | None = None
    extra_args: Sequence[str] = ()
    module: str = "wt_operator"
    """What ``python -m`` runs: the operator, or a stand-in taking the same arguments
    (the benchmarks' bare kopf floor)."""
    verbose: bool = True
    """``--verbose`` (kopf's decisions in the log) for tests; benchmarks run it as the chart
    does by default, without."""
    proc: subprocess.Popen[bytes] | None = None
    health_port: int = 0
    metrics_port: int = 0

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WT_OPERATOR_")}
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD": str(self.workspace),
                "WT_OPERATOR_HEALTH_PORT": str(self.health_port),
                "WT_OPERATOR_METRICS_PORT": str(self.metrics_port),
                "WT_OPERATOR_KILL_GRACE_SECONDS": "2",
                "WT_OPERATOR_BATCH_POLL_INTERVAL": "0.2",
                "WT_OPERATOR_RETRY_BACKOFF_MAX": "2",
                "GOOGLE_CLOUD_PROJECT": "wt-test-project",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        if self.path_prepend:
            env["PATH"] = os.pathsep.join([*map(str, self.path_prepend), env.get("PATH", "")])
        return env

    def start(self, timeout: float = 30.0) -> OperatorProcess:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("operator already running")
        self.health_port = free_port()
        self.metrics_port = free_port()
        args = [sys.executable, "-m", self.module, *(["--verbose"] if self.verbose else [])]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        if self.standalone:
            args.append("--standalone")
        if self.priority is not None:
            args += ["--priority", str(self.priority)]
        args += list(self.extra_args)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Its workflow children get sessions of their own anyway.
        self.proc = spawn(args, self.log_path, env=self._env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"operator exited with {self.proc.returncode}:\n{self.logs()[-4000:]}"
                )
            if self.healthy():
                return self
            time.sleep(0.1)
        self.kill9()
        raise RuntimeError(f"operator not healthy after {timeout}s:\n{self.logs()[-4000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=1
            ) as rsp:
                return bool(rsp.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as rsp:
            return str(rsp.read().decode())

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful: in-flight local runs are killed and recorded), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill9()

    def kill9(self) -> int | None:
        """``kill -9``: no cleanup at all, as when a node dies or the OOM killer strikes."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        return self.proc.wait()

    def restart(self) -> OperatorProcess:
        self.stop()
        return self.start()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
