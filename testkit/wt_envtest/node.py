"""A real node beside the test control plane: containerd + kubelet, pods that really run.

Exists so the chart's promises that only a kubelet keeps (probes, a read-only root, the
projected token in one container only, the runner container, what ``kubectl delete pod``
or ``helm upgrade`` do to a run) are observed rather than taken on trust. The tools come
from ``hack/node.sh`` (kubelet from the envtest release, runc 1.5, a local pause image;
containerd and the CNI plugins from Debian). Root is required (CI runs as root).

How pods reach the API server: it listens on every address (:class:`NodeControlPlane`)
and one iptables DNAT rule sends the ``kubernetes`` Service's ClusterIP (10.0.0.1:443,
which the kubelet gives pods as ``KUBERNETES_SERVICE_HOST``/``_PORT`` and which the API
server's own certificate names) to it through the bridge's gateway. The rule stands in
for kube-proxy, which would do the same for this one Service; it is not built here to keep
``make setup`` short. Pods reach other host services (the Batch stand-in) at
:data:`GATEWAY`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from wt_envtest.control_plane import ControlPlane
from wt_envtest.controllers import Controllers
from wt_envtest.node_dns import ServiceDns
from wt_envtest.processes import free_port, kill_group, spawn, tail

__all__ = ["GATEWAY", "Node", "NodeControlPlane", "NodeControllers", "find_node_dir", "run_node"]

GATEWAY = "10.87.0.1"
"""The bridge's address on the host: what pods (10.87.0.x) reach the host at."""
SUBNET = "10.87.0.0/24"
"""Pods' addresses. Not containerd's usual 10.88.0.0/16, so that another node on the same
machine (another checkout's test run) keeps its own bridge, routes and DNAT rule."""
BRIDGE = "wtnode0"
SERVICE_IP = "10.0.0.1"
"""The ``kubernetes`` Service's ClusterIP (first address of the kit's service range)."""
NODE_NAME = "wt-node"
_DNAT_COMMENT = "wt-envtest node: kubernetes Service to the test API server"


class NodeUnavailable(RuntimeError):
    """The node's tools are missing, or containerd/kubelet did not start."""


def find_node_dir(script: Path) -> Path:
    """Run ``hack/node.sh`` (builds once into a cache) and return its folder (last line)."""
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NodeUnavailable(f"{script} failed:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclasses.dataclass(kw_only=True)
class NodeControlPlane(ControlPlane):
    """The kit's control plane as a node needs it: reachable from pods, admitting pods as a
    cluster does (ServiceAccount admission: the projected token volume)."""

    def _apiserver_args(self) -> list[str]:
        args = super()._apiserver_args()
        # The default is off because without a controller-manager no `default`
        # ServiceAccount exists; the node's control plane runs one (NodeControllers).
        args = [a for a in args if a != "--disable-admission-plugins=ServiceAccount"]
        args = [("--bind-address=0.0.0.0" if a.startswith("--bind-address=") else a) for a in args]
        # `kubectl logs` goes through the kubelet: by address, the node name resolves nowhere.
        return [*args, "--kubelet-preferred-address-types=InternalIP"]


@dataclasses.dataclass(kw_only=True)
class NodeControllers(Controllers):
    """Every default controller (Deployments, ReplicaSets, ServiceAccounts, the root CA
    ConfigMap that projected tokens mount): the node's control plane is a whole cluster."""

    def _args(self, name: str, port: int) -> list[str]:
        args = [a for a in super()._args(name, port) if not a.startswith("--controllers=")]
        if name == "kube-scheduler":
            return args
        return [*args, "--controllers=*", f"--root-ca-file={self.plane.ca_file}"]


def _runc_wrapper(path: Path, runc: Path) -> None:
    # Why this wrapper exists: the kubelet asks for a negative oomScoreAdj for the pause
    # container and Guaranteed pods, and runc's write to /proc/self/oom_score_adj fails
    # because this machine's processes lack CAP_SYS_RESOURCE; the container never starts.
    # Raising a negative value to 0 in the bundle's config.json changes nothing else.
    path.write_text(
        f"""#!/bin/sh
bundle=""
prev=""
for arg in "$@"; do
  case "$prev" in --bundle|-b) bundle="$arg";; esac
  prev="$arg"
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  {sys.executable} - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
if spec.get("process", {{}}).get("oomScoreAdj", 0) < 0:
    spec["process"]["oomScoreAdj"] = 0
    json.dump(spec, open(path, "w"))
EOF
fi
exec {runc} "$@"
"""
    )
    path.chmod(0o755)


@dataclasses.dataclass(kw_only=True)
class Node:
    """containerd and a kubelet registered as :data:`NODE_NAME` with ``plane``."""

    plane: ControlPlane
    """The control plane the kubelet registers with (a :class:`NodeControlPlane`)."""
    tools_dir: Path
    """``hack/node.sh``'s folder: kubelet, runc, pause.oci.tar, pause.image."""
    data_dir: Path
    """containerd's root/state, the kubelet's root, CNI config, logs (kept short: sockets)."""
    started_seconds: float = 0.0
    """Time from spawning containerd to the Node being Ready."""
    _procs: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)
    _dns: ServiceDns | None = None

    @property
    def socket(self) -> Path:
        """containerd's gRPC socket (the CRI endpoint)."""
        return self.data_dir / "containerd.sock"

    @property
    def logs(self) -> dict[str, Path]:
        """Log file of each process."""
        return {name: self.data_dir / f"{name}.log" for name in ("containerd", "kubelet")}

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ctr`` in the CRI's ``k8s.io`` namespace of this node's containerd."""
        return subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )

    def import_image(self, archive: Path) -> None:
        """Import an OCI/docker archive into the node (pods then use it with no pull)."""
        self.ctr("images", "import", "--no-unpack", str(archive))

    # ---------------------------------------------------------------- start

    def start(self, timeout: float = 120.0) -> Node:
        """Start containerd then the kubelet; return once the Node is Ready."""
        if os.geteuid() != 0:
            raise NodeUnavailable("the test node needs root (containerd, mounts, iptables)")
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._start_containerd(began + timeout)
        self.import_image(self.tools_dir / "pause.oci.tar")
        self._route_service_to_apiserver()
        self._start_dns()
        self._start_kubelet(began + timeout)
        self.started_seconds = time.monotonic() - began
        return self

    def _containerd_config(self) -> Path:
        d = self.data_dir
        (d / "cni").mkdir(exist_ok=True)
        (d / "cni" / "10-wt.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "wt-node",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            "isGateway": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": SUBNET, "gateway": GATEWAY}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(d / "ipam"),
                            },
                        },
                        {"type": "loopback"},
                    ],
                }
            )
        )
        _runc_wrapper(d / "runc-wrapper", self.tools_dir / "runc")
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = d / "containerd.toml"
        config.write_text(
            f"""version = 2
root = "{d / "root"}"
state = "{d / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{d / "containerd.ttrpc.sock"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "opt"}"
[{cri}]
  sandbox_image = "{(self.tools_dir / "pause.image").read_text().strip()}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
[{cri}.containerd]
  # overlayfs cannot mount inside this machine's container; native copies layers.
  snapshotter = "native"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{d / "runc-wrapper"}"
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{d / "cni"}"
[{cri}.registry]
  config_path = "{d / "certs.d"}"
"""
        )
        return config

    def _start_containerd(self, deadline: float) -> None:
        config = self._containerd_config()
        self._procs["containerd"] = spawn(
            ["containerd", "--config", str(config)], self.logs["containerd"]
        )
        while time.monotonic() < deadline:
            if self._procs["containerd"].poll() is not None:
                break
            if self.socket.exists() and self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise NodeUnavailable(f"containerd did not start:\n{tail(self.logs['containerd'])}")

    def _dnat_rule(self, *position: str) -> list[str]:
        return [
            "PREROUTING",
            *position,
            # Only our pods: another test node on this machine has its own API server.
            "-s", SUBNET, "-d", f"{SERVICE_IP}/32", "-p", "tcp", "--dport", "443",
            "-m", "comment", "--comment", _DNAT_COMMENT,
            "-j", "DNAT", "--to-destination", f"{GATEWAY}:{self.plane.apiserver_port}",
        ]  # fmt: skip

    def _route_service_to_apiserver(self) -> None:
        # First in the chain: a rule another test node appended must not catch our pods.
        subprocess.run(["iptables", "-t", "nat", "-I", *self._dnat_rule("1")], check=True)

    def _start_dns(self) -> None:
        # The bridge is made here, before the CNI plugin would, so the DNS stand-in can
        # listen on the gateway's address (the plugin takes an existing bridge as is).
        for cmd in (
            ["ip", "link", "add", BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", f"{GATEWAY}/{SUBNET.split('/')[1]}", "dev", BRIDGE],
            ["ip", "link", "set", BRIDGE, "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        self._dns = ServiceDns(GATEWAY, SERVICE_IP)
        (self.data_dir / "resolv.conf").write_text(f"nameserver {GATEWAY}\n")

    def _start_kubelet(self, deadline: float) -> None:
        d = self.data_dir
        config = d / "kubelet.yaml"
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    # This machine is cgroup v1 and its cgroup tree is not ours to divide.
                    "failCgroupV1": False,
                    "cgroupsPerQOS": False,
                    "enforceNodeAllocatable": [],
                    "cgroupDriver": "cgroupfs",
                    "containerRuntimeEndpoint": f"unix://{self.socket}",
                    # The API server fetches logs from here; test-only, so no client auth.
                    "address": "0.0.0.0",
                    "port": free_port(),
                    "readOnlyPort": 0,
                    "healthzPort": 0,
                    "authentication": {
                        "anonymous": {"enabled": True},
                        "webhook": {"enabled": False},
                    },
                    "authorization": {"mode": "AlwaysAllow"},
                    "failSwapOn": False,
                    # Pods resolve with the DNS stand-in (no clusterDNS: the Default policy).
                    "resolvConf": str(d / "resolv.conf"),
                    # A shared CI disk may be fuller than the defaults allow: never evict.
                    "evictionHard": {"memory.available": "0%", "nodefs.available": "0%",
                                     "imagefs.available": "0%", "nodefs.inodesFree": "0%"},
                    "imageGCHighThresholdPercent": 100,
                    "imageGCLowThresholdPercent": 99,
                    "serializeImagePulls": False,
                    "syncFrequency": "5s",
                    "fileCheckFrequency": "5s",
                }
            )
        )  # fmt: skip
        self._procs["kubelet"] = spawn(
            [
                str(self.tools_dir / "kubelet"),
                f"--config={config}",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--root-dir={d / 'kubelet'}",
                f"--cert-dir={d / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
            self.logs["kubelet"],
        )
        while time.monotonic() < deadline:
            if self._procs["kubelet"].poll() is not None:
                break
            if self.ready():
                return
            time.sleep(0.5)
        self.stop()
        raise NodeUnavailable(f"the Node did not become Ready:\n{tail(self.logs['kubelet'])}")

    def ready(self) -> bool:
        """Whether the Node object reports Ready=True."""
        with contextlib.suppress(Exception):
            node = self.plane.api("GET", f"/api/v1/nodes/{NODE_NAME}")
            conditions = node.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return False

    # ---------------------------------------------------------------- stop

    def stop(self) -> None:
        """Stop pods, kubelet and containerd; remove mounts, network namespaces, the bridge
        and the DNAT rule (idempotent, best effort: a failed step never hides the next)."""
        kubelet = self._procs.pop("kubelet", None)
        if kubelet is not None:
            kill_group(kubelet)
        netns: set[str] = set()
        if "containerd" in self._procs:
            netns = self._pod_netns()
            self._kill_tasks()
            kill_group(self._procs.pop("containerd"))
        self._kill_shims()
        if self._dns is not None:
            self._dns.stop()
            self._dns = None
        for path in netns:  # deleting a pod's netns deletes its veth pair
            subprocess.run(
                ["ip", "netns", "delete", Path(path).name], check=False, capture_output=True
            )
        _unmount_under(self.data_dir)
        subprocess.run(["ip", "link", "delete", BRIDGE], check=False, capture_output=True)
        if self.plane.apiserver_port:
            while (
                subprocess.run(
                    ["iptables", "-t", "nat", "-D", *self._dnat_rule()],
                    check=False,
                    capture_output=True,
                ).returncode
                == 0
            ):
                pass

    def _pod_netns(self) -> set[str]:
        # Only the network namespaces of this containerd's sandboxes: another node may be
        # running on this machine, with its own under the same folder.
        found: set[str] = set()
        for container in self.ctr("containers", "ls", "-q", check=False).stdout.split():
            info = self.ctr("containers", "info", container, check=False).stdout
            with contextlib.suppress(ValueError, KeyError, TypeError):
                for ns in json.loads(info)["Spec"]["linux"]["namespaces"]:
                    if ns.get("type") == "network" and ns.get("path", "").startswith(
                        "/var/run/netns/"
                    ):
                        found.add(ns["path"])
        return found

    def _kill_tasks(self) -> None:
        tasks = self.ctr("tasks", "ls", "-q", check=False).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
        time.sleep(0.5)
        for task in tasks:
            self.ctr("tasks", "delete", "--force", task, check=False)

    def _kill_shims(self) -> None:
        # The shims daemonize out of containerd's process group; ours name our socket.
        marker = str(self.socket).encode()
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if b"containerd-shim" in cmdline and marker in cmdline:
                    os.kill(int(proc.name), 9)


def _unmount_under(folder: Path) -> None:
    prefix = str(folder.resolve())
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


@contextlib.contextmanager
def run_node(
    bin_dir: Path, tools_dir: Path, data_dir: Path | None = None
) -> Iterator[tuple[Node, NodeControllers]]:
    """A control plane + controllers + node for the ``with`` block, all stopped after it."""
    owned = data_dir is None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="wt-node-"))
    plane = NodeControlPlane(bin_dir=bin_dir, data_dir=data_dir / "plane")
    try:
        plane.start()
        controllers = NodeControllers(plane=plane, data_dir=data_dir / "controllers")
        controllers.start()
        node = Node(plane=plane, tools_dir=tools_dir, data_dir=data_dir / "node")
        try:
            node.start()
            yield node, controllers
        finally:
            controllers.stop()
            node.stop()
    finally:
        plane.stop()
        if owned:
            shutil.rmtree(data_dir, ignore_errors=True)
