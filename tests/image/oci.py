"""Run an image the way a kubelet would: runc on the image's root filesystem.

Exists because ``buildah run`` cannot show what a pod gets: it has no read-only root
filesystem and does not start the image's ENTRYPOINT. Here the OCI runtime spec is
written from the image's own config (entrypoint, cmd, env, user, workdir), so the smoke
test starts exactly what the image declares, in its own PID namespace, with no
capabilities and no privilege escalation (the chart's restricted pod), sharing the host's
network so the container reaches the test API server on 127.0.0.1.

runc, not crun: crun 1.8 refuses this machine's hybrid cgroup v1/v2 layout. No cgroup
limits are set; nothing here measures resources.

The host sees the container's processes in ``/proc`` (their uid, state, parent, pid
inside the namespace) and its files through ``/proc/<pid>/root``; that is how the
tests look inside without adding anything to the image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Container", "ImageConfig", "Proc", "runtime_spec"]


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """What an image declares about how it runs (its OCI config)."""

    entrypoint: list[str]
    cmd: list[str]
    env: list[str]
    user: str
    workdir: str

    @classmethod
    def from_inspect(cls, info: Mapping[str, Any]) -> ImageConfig:
        """From ``buildah inspect --type image`` output."""
        config = info["OCIv1"].get("config", {})
        return cls(
            entrypoint=list(config.get("Entrypoint") or []),
            cmd=list(config.get("Cmd") or []),
            env=list(config.get("Env") or []),
            user=config.get("User") or "0",
            workdir=config.get("WorkingDir") or "/",
        )

    def uid_gid(self) -> tuple[int, int]:
        """The numeric ``USER`` (this image declares one; names are not resolved here)."""
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or 0)


def runtime_spec(
    rootfs: Path,
    image: ImageConfig,
    *,
    args: Sequence[str] | None = None,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    user: tuple[int, int] | None = None,
    readonly: bool = True,
    binds: Mapping[str, Path] | None = None,
    rw_binds: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """An OCI runtime spec running ``image`` like ``docker run [--user] IMAGE [args]``.

    ``args`` replace the image's CMD (ENTRYPOINT stays); ``command`` replaces both.
    ``readonly`` mounts the root read-only with an empty tmpfs on /tmp, as the chart does.
    ``binds`` maps container paths to host files mounted read-only; ``rw_binds`` to host
    folders mounted writable (an emptyDir two containers of a pod share).
    """
    process_args = list(command) if command else [*image.entrypoint, *(args or image.cmd)]
    merged = dict(e.split("=", 1) for e in image.env)
    merged.update(env or {})
    uid, gid = user or image.uid_gid()
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
        # The host's network namespace has its own sysfs: bind it (read-only) instead.
        {
            "destination": "/sys",
            "type": "bind",
            "source": "/sys",
            "options": ["rbind", "ro", "nosuid", "noexec", "nodev"],
        },
    ]
    if readonly:
        mounts.append(
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777"],
            }
        )
    for target, source in (binds or {}).items():
        bind = {"destination": target, "type": "bind", "source": str(source)}
        mounts.append({**bind, "options": ["bind", "ro"]})
    for target, source in (rw_binds or {}).items():
        mounts.append(
            {"destination": target, "type": "bind", "source": str(source), "options": ["bind"]}
        )
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": process_args,
            "env": [f"{k}={v}" for k, v in merged.items()],
            "cwd": image.workdir,
            "capabilities": {"bounding": [], "effective": [], "permitted": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": readonly},
        "hostname": "wt-operator",
        "mounts": mounts,
        "linux": {
            # No network namespace: the host's, so 127.0.0.1 is the test API server.
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"],
        },
    }


@dataclasses.dataclass(frozen=True)
class Proc:
    """One process of the container, seen from the host."""

    host_pid: int
    pid: int
    """Its pid inside the container's PID namespace."""
    ppid: int
    """Its parent's pid inside the namespace (0 for the namespace's init)."""
    uid: int
    gid: int
    state: str
    argv: list[str]


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


class Container:
    """One runc container in the foreground of a child process; always deleted by ``delete``."""

    def __init__(self, name: str, bundle: Path, spec: Mapping[str, Any], state_root: Path) -> None:
        self.name = name
        self.bundle = bundle
        self.state_root = state_root
        self.log_path = bundle / "output.log"
        bundle.mkdir(parents=True, exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(spec, indent=1))
        self.proc: subprocess.Popen[bytes] | None = None

    def _runc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runc", "--root", str(self.state_root), *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def start(self) -> Container:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    "runc",
                    "--root",
                    str(self.state_root),
                    "run",
                    "--bundle",
                    str(self.bundle),
                    self.name,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def run(self, timeout: float = 60) -> tuple[int, str]:
        """Start, wait for the exit; (exit code, output)."""
        self.start()
        if self.proc is None:
            raise RuntimeError("not started")
        code = self.proc.wait(timeout)
        return code, self.output()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def init_pid(self) -> int:
        """Host pid of the container's PID 1 (0 when it is not running)."""
        proc = self._runc("state", self.name, check=False)
        if proc.returncode != 0:
            return 0
        return int(json.loads(proc.stdout).get("pid") or 0)

    def path(self, inside: str) -> Path:
        """A path inside the running container, as the host can read it."""
        return Path(f"/proc/{self.init_pid}/root") / inside.lstrip("/")

    def processes(self) -> list[Proc]:
        """Every process in the container's PID namespace."""
        init = self.init_pid
        if not init:
            return []
        ns = os.readlink(f"/proc/{init}/ns/pid")
        found: dict[int, tuple[int, dict[str, str], list[str]]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns/pid") != ns:
                    continue
                status = _status(int(entry.name))
                argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
                found[int(entry.name)] = (
                    int(status["PPid"]),
                    status,
                    [a.decode(errors="replace") for a in argv],
                )
        inner = {host: int(status["NSpid"].split()[-1]) for host, (_, status, _) in found.items()}
        return [
            Proc(
                host_pid=host,
                pid=inner[host],
                ppid=inner.get(ppid, 0),
                uid=int(status["Uid"].split()[0]),
                gid=int(status["Gid"].split()[0]),
                state=status["State"].split()[0],
                argv=argv,
            )
            for host, (ppid, status, argv) in sorted(found.items())
        ]

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM to PID 1 (as a kubelet does), SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            raise RuntimeError("not started")
        if self.proc.poll() is None:
            self._runc("kill", self.name, "TERM", check=False)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._runc("kill", self.name, "KILL", check=False)
                self.proc.wait(10)
                raise
        return self.proc.returncode

    def delete(self) -> None:
        """Kill whatever is left and remove the container's state."""
        self._runc("delete", "--force", self.name, check=False)
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate()`` until true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")
