"""Child processes that never outlive the test run, and small facts about processes.

Exists because a leaked etcd or kube-apiserver poisons every later run (ports,
CPU, stale data): each process gets its own session (so its whole group can be
signalled), dies with its parent where Linux allows it, and is killed at
interpreter exit whatever happened before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["free_port", "kill_group", "spawn", "tail", "tcp_connections_to"]

_LIVE: set[subprocess.Popen[bytes]] = set()
"""Every process started here, killed at interpreter exit whatever happened before."""


def kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
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
        kill_group(proc, grace=2.0)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if pytest itself is SIGKILLed the
    # kernel kills the server too (Linux only; atexit covers every other exit).
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(
    args: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``args`` in a session of its own, stdout and stderr appended to ``log``.

    The session of its own lets :func:`kill_group` reach its children, and keeps a
    Ctrl-C of the test run from reaching it before the fixture that owns it stops it.
    """
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
            env=None if env is None else dict(env),
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


def tail(path: Path, limit: int = 4000) -> str:
    """The last ``limit`` bytes of a log file as text ("" when it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def tcp_connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to local port ``port`` (from /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                remote_port = int(cols[2].rsplit(":", 1)[1], 16)
                if remote_port == port and cols[3] == "01" and cols[9] in inodes:
                    count += 1
    return count
