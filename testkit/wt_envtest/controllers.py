"""kube-controller-manager and kube-scheduler beside the test API server, on demand.

Exists because some promises are kept by Kubernetes' controllers, not by the API server:
a log ConfigMap owned by a run is garbage-collected after the run, the chart's roles are
aggregated into the built-in ``view``/``edit``/``admin``, a deleted namespace is emptied
(its runs' finalizers honoured) by the namespace controller. An envtest control plane runs
none of them, so those promises were taken on trust; with these processes a test observes
them.

They are started only by the tests that ask (the ``controllers`` fixture), and stopped
after them: with them running, every other test would see objects it did not create
(``kube-root-ca.crt``, ``default`` ServiceAccounts) and namespaces emptied behind the
harness's back. Only the controllers those promises need run (:data:`CONTROLLERS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wt_envtest.processes import free_port, kill_group, spawn, tail

if TYPE_CHECKING:
    from wt_envtest.control_plane import ControlPlane

__all__ = [
    "CONTROLLERS",
    "CONTROLLER_TOOLS",
    "Controllers",
    "ControllersUnavailable",
    "missing_tools",
    "run_controllers",
]

CONTROLLER_TOOLS = ("kube-controller-manager", "kube-scheduler")
"""Binaries beside kube-apiserver in the envtest folder (``hack/envtest.sh`` builds them)."""

CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "clusterrole-aggregation-controller",
    # Type-checks ValidatingAdmissionPolicies into their status (warnings a user sees).
    "validatingadmissionpolicy-status-controller",
)
"""kube-controller-manager's controllers that run; the others would create objects in
every namespace (ServiceAccounts, CA ConfigMaps) that no test here needs."""


class ControllersUnavailable(RuntimeError):
    """The controller binaries are missing or a controller did not become healthy."""


@dataclasses.dataclass(kw_only=True)
class Controllers:
    """kube-controller-manager (:data:`CONTROLLERS` only) and kube-scheduler, as processes."""

    plane: ControlPlane
    """The control plane they work for (local; an external cluster has its own)."""
    data_dir: Path
    """Their serving certificates and logs (``kube-controller-manager.log``, …)."""
    started_seconds: float = 0.0
    """Time from spawning to both answering ``/healthz`` ok."""
    _procs: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)
    _ports: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def logs(self) -> dict[str, Path]:
        """Log file of each process."""
        return {name: self.data_dir / f"{name}.log" for name in CONTROLLER_TOOLS}

    def _args(self, name: str, port: int) -> list[str]:
        common = [
            str(self.plane.bin_dir / name),
            f"--kubeconfig={self.plane.kubeconfig}",
            "--leader-elect=false",  # one instance, and no Lease objects to clean up
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.data_dir / name}",
            "--v=1",
        ]
        if name == "kube-scheduler":
            return common
        # The garbage collector rediscovers resources every 30 s: apply CRDs before starting
        # it, or their objects' dependents wait that long to be collected.
        return [*common, f"--controllers={','.join(CONTROLLERS)}"]

    def start(self, timeout: float = 60.0) -> Controllers:
        """Spawn both and return once each answers ``/healthz`` with ok."""
        missing = missing_tools(self.plane.bin_dir)
        if missing:
            raise ControllersUnavailable(
                f"{self.plane.bin_dir} lacks {', '.join(missing)}: run hack/envtest.sh "
                "(it builds them) or point KUBEBUILDER_ASSETS at a folder that has them"
            )
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in CONTROLLER_TOOLS:
            self._ports[name] = port = free_port()
            self._procs[name] = spawn(self._args(name, port), self.logs[name])
        for name in CONTROLLER_TOOLS:
            self._wait_healthy(name, began + timeout)
        self.started_seconds = time.monotonic() - began
        return self

    def _wait_healthy(self, name: str, deadline: float) -> None:
        # Their serving certificates are self-signed at startup; only liveness is asked.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{self._ports[name]}/healthz"
        while time.monotonic() < deadline:
            if self._procs[name].poll() is not None:
                break
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=1, context=ctx) as rsp,
            ):
                if rsp.read() == b"ok":
                    return
            time.sleep(0.2)
        self.stop()
        raise ControllersUnavailable(f"{name} did not become healthy:\n{tail(self.logs[name])}")

    def stop(self) -> None:
        """Stop both (idempotent)."""
        for proc in self._procs.values():
            kill_group(proc)
        self._procs.clear()


@contextlib.contextmanager
def run_controllers(plane: ControlPlane, data_dir: Path) -> Iterator[Controllers | None]:
    """The controllers for the ``with`` block; None for an external cluster (it has its own)."""
    if plane.external:
        yield None
        return
    controllers = Controllers(plane=plane, data_dir=data_dir).start()
    try:
        yield controllers
    finally:
        controllers.stop()


def missing_tools(folder: Path, tools: Sequence[str] = CONTROLLER_TOOLS) -> list[str]:
    """The controller binaries absent from ``folder``."""
    return [tool for tool in tools if not (folder / tool).is_file()]
