"""A real Kubernetes control plane for tests: etcd + kube-apiserver as local processes.

envtest style (no kubelet; kube-controller-manager and kube-scheduler only on demand,
:mod:`.controllers`). Exists so tests, benchmarks and
the demo get a real API server — admission, CEL, RBAC, watches, status
subresources — started in a second or two, and so that one object holds
everything needed to drive it: its processes and logs, raw HTTPS (:mod:`.rest`),
kubectl and helm (:mod:`.tools`), namespaces (:mod:`.namespaces`) and
service-account kubeconfigs (:mod:`.credentials`).

``WT_TEST_KUBECONFIG=/path/to/kubeconfig`` makes :func:`start_control_plane` drive
an existing cluster instead: no local processes, ``restart_apiserver_async`` skips, and
kubectl/helm are still taken from the envtest folder (so their versions stay
pinned); namespaces are deleted and left to that cluster's namespace controller.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from wt_envtest import crds, credentials, namespaces, tools
from wt_envtest.binaries import find_bin_dir
from wt_envtest.processes import free_port, kill_group, spawn, tail
from wt_envtest.rest import RestClient

__all__ = ["ControlPlane", "start_control_plane"]


@dataclasses.dataclass(kw_only=True)
class ControlPlane(RestClient):
    """A running (or external) API server plus everything needed to talk to it.

    Sync methods are safe to call from async tests through ``asyncio.to_thread``.
    """

    bin_dir: Path
    """Folder with etcd, kube-apiserver, kubectl and helm."""
    data_dir: Path
    """Session folder: etcd data, PKI, kubeconfigs, logs (``etcd.log``, ``kube-apiserver.log``)."""
    kubeconfig: Path = dataclasses.field(init=False)
    """Admin kubeconfig (user ``wt-admin`` in ``system:masters``)."""
    external: bool = False
    """True when driving ``WT_TEST_KUBECONFIG``'s cluster instead of local processes."""
    startup_seconds: float = 0.0
    """Time from spawning etcd to a ready API server (last start or restart)."""
    etcd_url: str = ""
    apiserver_port: int = 0
    _etcd: subprocess.Popen[bytes] | None = None
    _apiserver: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.kubeconfig = self.data_dir / "admin.kubeconfig"

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the local etcd and kube-apiserver (none for an external cluster)."""
        procs = {"kube-apiserver": self._apiserver, "etcd": self._etcd}
        return {name: p.pid for name, p in procs.items() if p is not None and p.poll() is None}

    @property
    def logs(self) -> dict[str, Path]:
        """Log file of each local process."""
        return {name: self.data_dir / f"{name}.log" for name in ("etcd", "kube-apiserver")}

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30.0) -> ControlPlane:
        """Start etcd then kube-apiserver on free loopback ports; return once /readyz is ok."""
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pki = self.data_dir / "pki"
        pki.mkdir(exist_ok=True)
        credentials.write_service_account_key(pki / "sa.key")
        self.token = credentials.write_admin_token(pki / "tokens.csv")
        self.ca_file = pki / "apiserver.crt"  # written by kube-apiserver from --cert-dir
        self._start_etcd(deadline=began + timeout)
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self._start_apiserver(deadline=began + timeout)
        self.kubeconfig.write_text(
            credentials.kubeconfig_text(self.server, self.ca_file, {"token": self.token}, "default")
        )
        self.startup_seconds = time.monotonic() - began
        return self

    def _start_etcd(self, deadline: float) -> None:
        for _attempt in range(3):  # a free port can be taken between probe and bind
            client, peer = free_port(), free_port()
            self.etcd_url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            self._etcd = spawn(
                [
                    str(self.bin_dir / "etcd"),
                    "--name=envtest",
                    f"--data-dir={self.data_dir / 'etcd'}",
                    f"--listen-client-urls={self.etcd_url}",
                    f"--advertise-client-urls={self.etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=envtest={peer_url}",
                    # Test data is disposable; fsync dominates write latency on CI disks.
                    "--unsafe-no-fsync=true",
                    "--log-level=warn",
                ],
                self.logs["etcd"],
            )
            while time.monotonic() < deadline:
                if self._etcd.poll() is not None:
                    break
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{self.etcd_url}/health", timeout=1) as rsp,
                ):
                    if json.loads(rsp.read()).get("health") == "true":
                        return
                time.sleep(0.05)
            else:
                break
            if "address already in use" not in tail(self.logs["etcd"]):
                break
        self.stop()
        raise RuntimeError(f"etcd did not become healthy:\n{tail(self.logs['etcd'])}")

    def _apiserver_args(self) -> list[str]:
        pki = self.data_dir / "pki"
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={pki}",  # self-signed serving cert + CA, kept across restarts
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            f"--token-auth-file={pki / 'tokens.csv'}",
            f"--service-account-issuer={credentials.ISSUER}",
            f"--service-account-key-file={pki / 'sa.key'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--api-audiences={credentials.ISSUER}",
            # ServiceAccount admission rejects pods until the (absent) controller-manager
            # has created the namespace's `default` ServiceAccount.
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            # Nothing reads the `kubernetes` Service endpoints; skip the lease reconciler.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def _start_apiserver(self, deadline: float) -> None:
        self._apiserver = spawn(self._apiserver_args(), self.logs["kube-apiserver"])
        while time.monotonic() < deadline:
            if self._apiserver.poll() is not None:
                break
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"kube-apiserver not ready at {self.server}:\n{tail(self.logs['kube-apiserver'])}"
        )

    def stop(self) -> None:
        """Stop kube-apiserver then etcd (idempotent); etcd's data folder is removed."""
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                kill_group(proc)
        self._apiserver = self._etcd = None
        if not self.external:
            shutil.rmtree(self.data_dir / "etcd", ignore_errors=True)

    def _skip_if_external(self) -> None:
        if self.external:
            pytest.skip(
                "restart_apiserver_async needs the local control plane (WT_TEST_KUBECONFIG set)"
            )

    async def restart_apiserver_async(self, timeout: float = 30.0) -> None:
        """Stop kube-apiserver and start it again on the same port; etcd (and data) stay.

        Async only: from a worker thread the new process would be started without the
        die-with-parent guard (set only from the main thread) and could outlive a crashed
        test run.
        """
        self._skip_if_external()
        began = time.monotonic()
        proc = self._apiserver
        if proc is not None:
            await asyncio.to_thread(kill_group, proc, 10.0)
        # Spawned from the loop's (main) thread so the die-with-parent guard applies.
        self._apiserver = spawn(self._apiserver_args(), self.logs["kube-apiserver"])
        while time.monotonic() - began < timeout:
            if self._apiserver.poll() is not None:
                break
            if await asyncio.to_thread(self.ready):
                self.startup_seconds = time.monotonic() - began
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(
            f"kube-apiserver not ready after restart:\n{tail(self.logs['kube-apiserver'])}"
        )

    # ---------------------------------------------------------------- tools and objects

    def env(self) -> dict[str, str]:
        """Environment for subprocesses: KUBECONFIG, binaries first on PATH, private helm dirs."""
        return tools.tool_env(self.kubeconfig, self.bin_dir, self.data_dir)

    def kubectl(
        self, *args: Any, input: Any = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster as admin; ``input`` (str or manifest dict) is stdin."""
        return tools.run_tool(
            self.bin_dir / "kubectl",
            args,
            env=self.env(),
            input=input,
            check=check,
            timeout=timeout,
        )

    def helm(
        self, *args: Any, input: Any = None, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster as admin, with private cache/config folders."""
        return tools.run_tool(
            self.bin_dir / "helm", args, env=self.env(), input=input, check=check, timeout=timeout
        )

    def service_account_kubeconfig(
        self,
        namespace: str,
        sa_name: str,
        path: Path | None = None,
        *,
        expiration_seconds: int = 3600,
    ) -> Path:
        """A kubeconfig authenticating as ``system:serviceaccount:<namespace>:<sa_name>``.

        Creates the ServiceAccount if missing and gets a bound token from the
        TokenRequest API, exactly what a pod's projected token would hold.
        """
        token = credentials.request_service_account_token(
            self.api, namespace, sa_name, expiration_seconds
        )
        path = path or self.data_dir / f"sa-{namespace}-{sa_name}.kubeconfig"
        path.write_text(
            credentials.kubeconfig_text(self.server, self.ca_file, {"token": token}, namespace)
        )
        return path

    def wait_crd_served(self, name: str) -> None:
        """Block until every served version of CRD ``name`` answers a LIST."""
        crds.wait_crd_served(self.api, name)

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Create a namespace labelled as owned by the test harness."""
        namespaces.create_namespace(self.api, name, labels)

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace and everything in it, without a namespace controller."""
        namespaces.delete_namespace(self.api, name, external=self.external)


def _external(kubeconfig: Path, bin_dir: Path, data_dir: Path) -> ControlPlane:
    """A ControlPlane view of an existing cluster, credentials read from its kubeconfig."""
    from kubernetes_asyncio import client, config

    async def load() -> Any:
        cfg = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        return cfg

    # A private thread: works whether or not an event loop is running here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        cfg = pool.submit(asyncio.run, load()).result()
    data_dir.mkdir(parents=True, exist_ok=True)
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None
    plane = ControlPlane(
        bin_dir=bin_dir,
        data_dir=data_dir,
        server=cfg.host.rstrip("/"),
        token=auth.removeprefix("Bearer ").strip() if auth else None,
        ca_file=Path(cfg.ssl_ca_cert) if cfg.ssl_ca_cert else None,
        external=True,
        _verify=bool(cfg.verify_ssl),
        _client_cert=cert,
    )
    shutil.copyfile(kubeconfig, plane.kubeconfig)
    return plane


@contextlib.contextmanager
def start_control_plane(
    data_dir: Path | None = None,
    bin_dir: Path | None = None,
    *,
    envtest_script: Path | None = None,
) -> Iterator[ControlPlane]:
    """A control plane for the ``with`` block (or ``WT_TEST_KUBECONFIG``'s cluster).

    ``bin_dir`` defaults to :func:`~wt_envtest.binaries.find_bin_dir` with ``envtest_script``.
    """
    bin_dir = bin_dir or find_bin_dir(envtest_script)
    owned = data_dir is None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="wt-control-plane-"))
    external = os.environ.get("WT_TEST_KUBECONFIG")
    if external:
        yield _external(Path(external), bin_dir, data_dir)
        return
    plane = ControlPlane(bin_dir=bin_dir, data_dir=data_dir)
    try:
        yield plane.start()
    finally:
        plane.stop()
        if owned:
            shutil.rmtree(data_dir, ignore_errors=True)
