"""A real Kubernetes control plane for tests: etcd + kube-apiserver as local processes.

envtest style (no kubelet, no controller-manager), registered as a pytest plugin by
``tests/conftest.py``. Nothing starts until a test asks for ``control_plane`` (or a
fixture built on it), so ``pytest tests/unit`` never pays for it.

Fixtures: ``control_plane`` (session), ``bin_dir``, ``kubeconfig``, ``kubectl``,
``crds`` (session), ``namespace`` and ``kube_api`` (per test).

Binaries come from ``KUBEBUILDER_ASSETS`` or ``hack/envtest.sh``; when neither
delivers them the session fails (never skips) with the script's message.

``WT_TEST_KUBECONFIG=/path/to/kubeconfig`` runs the same fixtures against an
existing cluster instead: no local processes, ``restart_apiserver`` skips, and
kubectl/helm are still taken from the envtest folder (so their versions stay
pinned); namespaces are deleted and left to that cluster's namespace controller.

Outside pytest (benchmarks, demo) use :func:`start_control_plane` as a context manager.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

__all__ = [
    "ApiError",
    "ControlPlane",
    "EnvtestUnavailable",
    "find_bin_dir",
    "start_control_plane",
]

REPO = Path(__file__).resolve().parent.parent
ENVTEST_SCRIPT = REPO / "hack" / "envtest.sh"
TOOLS = ("etcd", "kube-apiserver", "kubectl", "helm")
ISSUER = "https://kubernetes.default.svc.cluster.local"
"""Service-account token issuer and API audience (what an in-cluster client expects)."""

_TESTS = Path(__file__).resolve().parent
_INTEGRATION_DIRS = (_TESTS / "integration", _TESTS / "chaos")


class EnvtestUnavailable(RuntimeError):
    """The control-plane binaries could not be found or built."""


class ApiError(RuntimeError):
    """The API server answered with an HTTP error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:2000]}")
        self.status = status
        self.body = body


class CommandError(subprocess.CalledProcessError):
    """A kubectl/helm command failed; unlike its base, its message shows stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}\nstdout:\n{self.stdout}"


# --------------------------------------------------------------------------- binaries


def _complete(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) for tool in TOOLS)


def find_bin_dir() -> Path:
    """The folder holding etcd, kube-apiserver, kubectl and helm.

    ``KUBEBUILDER_ASSETS`` when complete, else ``hack/envtest.sh``'s last stdout
    line (which builds missing binaries once into a cache outside the checkout).
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and _complete(Path(assets)):
        return Path(assets).resolve()
    try:
        proc = subprocess.run(
            ["bash", str(ENVTEST_SCRIPT)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise EnvtestUnavailable(f"cannot run {ENVTEST_SCRIPT}: {exc}") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise EnvtestUnavailable(
            f"hack/envtest.sh failed (exit {proc.returncode}); the control-plane "
            f"binaries are needed by the integration tests:\n{proc.stderr[-3000:]}"
        )
    folder = Path(lines[-1])
    if not _complete(folder):
        raise EnvtestUnavailable(f"hack/envtest.sh printed {folder}, which lacks one of {TOOLS}")
    return folder


# --------------------------------------------------------------------------- processes

_LIVE: set[subprocess.Popen[bytes]] = set()
"""Every process started here, killed at interpreter exit whatever happened before."""


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _LIVE.discard(proc)


@atexit.register
def _kill_all() -> None:
    for proc in list(_LIVE):
        _kill_group(proc, grace=2.0)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if pytest itself is SIGKILLed the
    # kernel kills the server too (Linux only; atexit covers every other exit).
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _spawn(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    # PDEATHSIG fires when the forking *thread* ends, so only use it from the
    # main thread (pytest's and the event loop's).
    main = threading.current_thread() is threading.main_thread() and sys.platform == "linux"
    with log.open("ab") as out:
        out.write(f"\n==== {time.strftime('%H:%M:%S')} {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if main else None,
        )
    _LIVE.add(proc)
    return proc


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _write_service_account_key(path: Path) -> None:
    """An RSA signing key for service-account tokens (cryptography, else openssl)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        subprocess.run(
            ["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
        )
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _kubeconfig(server: str, ca_file: Path | None, user: dict[str, Any], namespace: str) -> str:
    cluster: dict[str, Any] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "envtest", "cluster": cluster}],
            "users": [{"name": "user", "user": user}],
            "contexts": [
                {
                    "name": "envtest",
                    "context": {"cluster": "envtest", "user": "user", "namespace": namespace},
                }
            ],
            "current-context": "envtest",
        }
    )


# --------------------------------------------------------------------------- control plane


@dataclasses.dataclass
class ControlPlane:
    """A running (or external) API server plus everything needed to talk to it.

    Sync methods are safe to call from async tests through ``asyncio.to_thread``.
    """

    bin_dir: Path
    """Folder with etcd, kube-apiserver, kubectl and helm."""
    data_dir: Path
    """Session folder: etcd data, PKI, kubeconfigs, logs (``etcd.log``, ``kube-apiserver.log``)."""
    kubeconfig: Path = dataclasses.field(init=False)
    """Admin kubeconfig (user ``wt-admin`` in ``system:masters``)."""
    server: str = ""
    """``https://127.0.0.1:<port>``."""
    token: str | None = None
    """The admin bearer token (None for an external cluster using other credentials)."""
    ca_file: Path | None = None
    """CA bundle that verifies the server's certificate (kube-apiserver's self-generated one)."""
    external: bool = False
    """True when driving ``WT_TEST_KUBECONFIG``'s cluster instead of local processes."""
    startup_seconds: float = 0.0
    """Time from spawning etcd to a ready API server (last start or restart)."""
    etcd_url: str = ""
    apiserver_port: int = 0
    _client_cert: tuple[str, str] | None = None
    _verify: bool = True
    _ctx: ssl.SSLContext | None = None
    _etcd: subprocess.Popen[bytes] | None = None
    _apiserver: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.kubeconfig = self.data_dir / "admin.kubeconfig"

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the local etcd and kube-apiserver (none for an external cluster)."""
        procs = {"kube-apiserver": self._apiserver, "etcd": self._etcd}
        return {name: p.pid for name, p in procs.items() if p is not None and p.poll() is None}

    # ---------------------------------------------------------------- lifecycle

    @property
    def logs(self) -> dict[str, Path]:
        """Log file of each local process."""
        return {name: self.data_dir / f"{name}.log" for name in ("etcd", "kube-apiserver")}

    def start(self, timeout: float = 30.0) -> ControlPlane:
        """Start etcd then kube-apiserver on free loopback ports; return once /readyz is ok."""
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pki = self.data_dir / "pki"
        pki.mkdir(exist_ok=True)
        _write_service_account_key(pki / "sa.key")
        self.token = secrets.token_hex(24)
        # token,user,uid,"group1,group2": the static admin identity.
        (pki / "tokens.csv").write_text(f'{self.token},wt-admin,wt-admin,"system:masters"\n')
        self.ca_file = pki / "apiserver.crt"  # written by kube-apiserver from --cert-dir
        self._start_etcd(deadline=began + timeout)
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self._start_apiserver(deadline=began + timeout)
        self.kubeconfig.write_text(
            _kubeconfig(self.server, self.ca_file, {"token": self.token}, "default")
        )
        self.startup_seconds = time.monotonic() - began
        return self

    def _start_etcd(self, deadline: float) -> None:
        for _attempt in range(3):  # a free port can be taken between probe and bind
            client, peer = free_port(), free_port()
            self.etcd_url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            self._etcd = _spawn(
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
            if "address already in use" not in _tail(self.logs["etcd"]):
                break
        self.stop()
        raise RuntimeError(f"etcd did not become healthy:\n{_tail(self.logs['etcd'])}")

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
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={pki / 'sa.key'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--api-audiences={ISSUER}",
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
        self._apiserver = _spawn(self._apiserver_args(), self.logs["kube-apiserver"])
        while time.monotonic() < deadline:
            if self._apiserver.poll() is not None:
                break
            if self._ready_once():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"kube-apiserver not ready at {self.server}:\n{_tail(self.logs['kube-apiserver'])}"
        )

    def _ready_once(self) -> bool:
        if self.ca_file is not None and not self.ca_file.exists():
            return False
        try:
            status, _ = self.request("GET", "/readyz", timeout=2)
        except (OSError, ApiError, ssl.SSLError):
            return False
        return status == 200

    def stop(self) -> None:
        """Stop kube-apiserver then etcd (idempotent); etcd's data folder is removed."""
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                _kill_group(proc)
        self._apiserver = self._etcd = None
        if not self.external:
            shutil.rmtree(self.data_dir / "etcd", ignore_errors=True)

    def _skip_if_external(self) -> None:
        if self.external:
            pytest.skip("restart_apiserver needs the local control plane (WT_TEST_KUBECONFIG set)")

    def restart_apiserver(self, timeout: float = 30.0) -> None:
        """Stop kube-apiserver and start it again on the same port; etcd (and data) stay."""
        self._skip_if_external()
        began = time.monotonic()
        if self._apiserver is not None:
            _kill_group(self._apiserver, grace=10.0)
        self._start_apiserver(deadline=began + timeout)
        self.startup_seconds = time.monotonic() - began

    async def restart_apiserver_async(self, timeout: float = 30.0) -> None:
        """:meth:`restart_apiserver` without blocking the event loop."""
        self._skip_if_external()
        began = time.monotonic()
        proc = self._apiserver
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 10)
            _kill_group(proc, grace=0)  # SIGKILL if it ignored SIGTERM
        # Spawned from the loop's (main) thread so the die-with-parent guard applies.
        self._apiserver = _spawn(self._apiserver_args(), self.logs["kube-apiserver"])
        while time.monotonic() - began < timeout:
            if self._apiserver.poll() is not None:
                break
            if await asyncio.to_thread(self._ready_once):
                self.startup_seconds = time.monotonic() - began
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(
            f"kube-apiserver not ready after restart:\n{_tail(self.logs['kube-apiserver'])}"
        )

    # ---------------------------------------------------------------- raw API access

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once: loading the CA per request costs more than the request itself.
        # (Not cached until the CA file exists: kube-apiserver writes it at startup.)
        if self._ctx is None:
            self._ctx = self._new_ssl_context()
        return self._ctx

    def _new_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if not self._verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self._client_cert is not None:
            ctx.load_cert_chain(*self._client_cert)
        return ctx

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float = 30.0,
    ) -> tuple[int, bytes]:
        """One HTTP call as admin; raises :class:`ApiError` on a status >= 400."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method)
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        # 429 "storage is (re)initializing" answers requests for a CRD created moments
        # ago (and during an API server restart); the server says when to come back.
        for attempt in range(20):
            try:
                with urllib.request.urlopen(
                    req, timeout=timeout, context=self._ssl_context()
                ) as rsp:
                    return rsp.status, rsp.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 429 and attempt < 19:
                    time.sleep(min(float(exc.headers.get("Retry-After") or 1), 2.0))
                    continue
                raise ApiError(
                    method, path, exc.code, exc.read().decode(errors="replace")
                ) from None
        raise AssertionError("unreachable")

    def api(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """:meth:`request`, decoding the JSON answer."""
        _, raw = self.request(method, path, body, **kwargs)
        return json.loads(raw) if raw else None

    def metrics_text(self) -> str:
        """kube-apiserver's Prometheus metrics (GET /metrics as admin)."""
        _, raw = self.request("GET", "/metrics", accept="text/plain")
        return raw.decode()

    # ---------------------------------------------------------------- tools

    def env(self) -> dict[str, str]:
        """Environment for subprocesses: KUBECONFIG, binaries first on PATH, private helm dirs."""
        env = dict(os.environ)
        helm_home = self.data_dir / "helm"
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "KUBEBUILDER_ASSETS": str(self.bin_dir),
                "PATH": os.pathsep.join([str(self.bin_dir), env.get("PATH", "")]),
                "HELM_CACHE_HOME": str(helm_home / "cache"),
                "HELM_CONFIG_HOME": str(helm_home / "config"),
                "HELM_DATA_HOME": str(helm_home / "data"),
            }
        )
        return env

    def _run(
        self, tool: str, args: Sequence[str], input: Any, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        if input is not None and not isinstance(input, str):
            input = json.dumps(input)  # a manifest (dict/list) is valid YAML as JSON
        proc = subprocess.run(
            [str(self.bin_dir / tool), *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self, *args: Any, input: Any = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster as admin; ``input`` (str or manifest dict) is stdin."""
        return self._run("kubectl", args, input, check, timeout)

    def helm(
        self, *args: Any, input: Any = None, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster as admin, with private cache/config folders."""
        return self._run("helm", args, input, check, timeout)

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
        with contextlib.suppress(ApiError):  # 409: already there
            self.api(
                "POST",
                f"/api/v1/namespaces/{namespace}/serviceaccounts",
                {"metadata": {"name": sa_name}},
            )
        token_request = self.api(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa_name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        path = path or self.data_dir / f"sa-{namespace}-{sa_name}.kubeconfig"
        user: dict[str, Any] = {"token": token_request["status"]["token"]}
        ca = self.ca_file
        path.write_text(_kubeconfig(self.server, ca, user, namespace))
        return path

    def wait_crd_served(self, name: str) -> None:
        """Block until every served version of CRD ``name`` answers a LIST.

        Established is not enough: for a moment afterwards the new resource's watch
        cache is still initializing and LISTs get 429, which clients (kopf among
        them) would report as errors.
        """
        crd = self.api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                # request() retries the 429s until the cache is ready.
                self.api(
                    "GET",
                    f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}?limit=1",
                )

    # ---------------------------------------------------------------- namespaces

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Create a namespace labelled as owned by the test harness."""
        self.api(
            "POST",
            "/api/v1/namespaces",
            {
                "metadata": {
                    "name": name,
                    "labels": {"app.kubernetes.io/managed-by": "wt-tests", **(labels or {})},
                }
            },
        )

    def _namespaced_resources(self) -> list[str]:
        """Collection paths (``/api/v1/…``, ``/apis/g/v/…``) of namespaced, deletable resources."""
        accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        paths: list[str] = []
        for root, prefix in (("/api", "/api"), ("/apis", "/apis")):
            doc = self.api("GET", root, accept=f"{accept},application/json")
            if doc.get("kind") != "APIGroupDiscoveryList":
                return self._namespaced_resources_legacy()
            for group in doc.get("items", []):
                versions = group.get("versions") or []
                if not versions:
                    continue
                version = versions[0]  # the preferred one
                gv = version["version"]
                if group.get("metadata", {}).get("name"):
                    gv = f"{group['metadata']['name']}/{gv}"
                for res in version.get("resources", []):
                    verbs = res.get("verbs") or []
                    if res.get("scope") == "Namespaced" and "deletecollection" in verbs:
                        paths.append(f"{prefix}/{gv}/namespaces/{{ns}}/{res['resource']}")
        return paths

    def _namespaced_resources_legacy(self) -> list[str]:
        gvs = [("/api", v) for v in self.api("GET", "/api")["versions"]]
        for group in self.api("GET", "/apis")["groups"]:
            gvs.append(("/apis", group["preferredVersion"]["groupVersion"]))
        paths = []
        for prefix, gv in gvs:
            for res in self.api("GET", f"{prefix}/{gv}")["resources"]:
                if (
                    res.get("namespaced")
                    and "/" not in res["name"]
                    and "deletecollection" in res.get("verbs", [])
                ):
                    paths.append(f"{prefix}/{gv}/namespaces/{{ns}}/{res['name']}")
        return paths

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace and everything in it, without a namespace controller.

        kube-apiserver alone only marks a namespace Terminating: emptying it is the
        controller-manager's job. So: strip finalizers from and delete every object
        in it, delete it, then finalize it (drop the ``kubernetes`` finalizer) so it
        is really gone. Against an external cluster its own controller finishes.
        """
        collections = [template.format(ns=name) for template in self._namespaced_resources()]
        # ~50 resource types, nearly all empty: list them concurrently.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for _ in pool.map(self._empty_collection, collections):
                pass
        try:
            self.api("DELETE", f"/api/v1/namespaces/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        if self.external:
            return
        try:
            ns = self.api("GET", f"/api/v1/namespaces/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        ns["spec"]["finalizers"] = []
        self.api("PUT", f"/api/v1/namespaces/{name}/finalize", ns)
        # With no finalizers left, a second delete removes it from storage.
        with contextlib.suppress(ApiError):
            self.api("DELETE", f"/api/v1/namespaces/{name}")

    def _empty_collection(self, collection: str) -> None:
        """Delete every object of one namespaced collection, finalizers stripped first."""
        try:
            items = self.api("GET", collection)["items"]
        except ApiError as exc:
            if exc.status in (403, 404, 405):
                return
            raise
        if items:
            for item in items:
                if item["metadata"].get("finalizers"):
                    with contextlib.suppress(ApiError):
                        self.api(
                            "PATCH",
                            f"{collection}/{item['metadata']['name']}",
                            {"metadata": {"finalizers": None}},
                            content_type="application/merge-patch+json",
                        )
            with contextlib.suppress(ApiError):
                self.api(
                    "DELETE",
                    collection,
                    {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
                )


# --------------------------------------------------------------------------- external cluster


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
    token = auth.removeprefix("Bearer ").strip() if auth else None
    plane = ControlPlane(
        bin_dir=bin_dir,
        data_dir=data_dir,
        server=cfg.host.rstrip("/"),
        token=token,
        ca_file=Path(cfg.ssl_ca_cert) if cfg.ssl_ca_cert else None,
        external=True,
    )
    plane._verify = bool(cfg.verify_ssl)
    if cfg.cert_file and cfg.key_file:
        plane._client_cert = (cfg.cert_file, cfg.key_file)
    shutil.copyfile(kubeconfig, plane.kubeconfig)
    return plane


@contextlib.contextmanager
def start_control_plane(
    data_dir: Path | None = None, bin_dir: Path | None = None
) -> Iterator[ControlPlane]:
    """A control plane for the ``with`` block (or ``WT_TEST_KUBECONFIG``'s cluster)."""
    bin_dir = bin_dir or find_bin_dir()
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


# --------------------------------------------------------------------------- pytest plugin

_ACTIVE: list[ControlPlane] = []


def _bin_dir_or_fail() -> Path:
    try:
        return find_bin_dir()
    except EnvtestUnavailable as exc:
        error = str(exc)
    # Never a skip, in CI or locally: a missing control plane must not pass as green.
    where = "CI" if os.environ.get("CI") == "true" else "this machine"
    pytest.fail(f"integration tests cannot run on {where}: {error}", pytrace=False)


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """Folder holding etcd, kube-apiserver, kubectl and helm (KUBEBUILDER_ASSETS layout)."""
    return _bin_dir_or_fail()


@pytest.fixture(scope="session")
def control_plane(
    bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """The session's API server: local etcd + kube-apiserver, or WT_TEST_KUBECONFIG's cluster."""
    data_dir = tmp_path_factory.mktemp("control-plane")
    with start_control_plane(data_dir, bin_dir) as plane:
        _ACTIVE.append(plane)
        try:
            yield plane
        finally:
            _ACTIVE.remove(plane)


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """Path of the admin kubeconfig."""
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Any:
    """``kubectl(*args, input=None, check=True) -> CompletedProcess`` as admin."""
    return control_plane.kubectl


@pytest.fixture
async def kube_api(control_plane: ControlPlane) -> AsyncIterator[Any]:
    """An async ``kubernetes_asyncio`` ApiClient for this test's event loop, closed after."""
    from kubernetes_asyncio import client, config

    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(control_plane.kubeconfig), client_configuration=cfg
    )
    async with client.ApiClient(cfg) as api:
        yield api


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"t-{base[:48].rstrip('-')}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace ``t-<test>-<random>``, emptied and deleted after the test."""
    name = _namespace_name(request.node.name)
    control_plane.create_namespace(name)
    yield name
    control_plane.delete_namespace(name)


def _crd_names(path: Path) -> list[str]:
    return [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> list[str]:
    """Apply ``crds/*.yaml`` (server-side; not samples/) and wait until Established.

    Returns the CRD names (empty when the folder holds none).
    """
    files = sorted((REPO / "crds").glob("*.yaml"))
    names = [name for f in files for name in _crd_names(f)]
    if not files:
        return []
    args: list[str] = ["apply", "--server-side", "--force-conflicts", "--field-manager=wt-tests"]
    for f in files:
        args += ["-f", str(f)]
    control_plane.kubectl(*args)
    if names:
        control_plane.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names]
        )
        for name in names:
            control_plane.wait_crd_served(name)
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration and tests/chaos as ``integration``."""
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in _INTEGRATION_DIRS):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach the tail of etcd's and kube-apiserver's logs to the report."""
    report = yield
    if report.failed and _ACTIVE and "control_plane" in getattr(item, "fixturenames", ()):
        for plane in _ACTIVE:
            if plane.external:
                continue
            for name, path in plane.logs.items():
                report.sections.append((f"{name} log (tail of {path})", _tail(path)))
    return report
