"""Finding and killing process trees through ``/proc``.

Exists because killing only the direct child of a workflow leaves its helpers
(shell pipelines, ``sleep``, worker pools) running. Workflows are started in
their own session, so their process group is the tree; processes that left the
group (``setsid``) are still found by the run marker in their environment.

Zombies count as dead everywhere here: they hold no resources but a pid, and in
a container nobody may ever reap an orphaned one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "PROCESS_MARKER_ENV_VAR",
    "RUN_ID_ENV_VAR",
    "ProcInfo",
    "find_marked",
    "group_exists",
    "kill_stale_processes",
    "live_group_members",
    "pid_is_alive",
    "snapshot",
    "terminate",
]

logger = logging.getLogger(__name__)

RUN_ID_ENV_VAR = "WT_INVOKERS__RUN_ID"
"""Tells the workflow its run id (``workflow_run_id``)."""

PROCESS_MARKER_ENV_VAR = "WT_INVOKERS__PROCESS_MARKER"
"""Set in every workflow's environment to the invocation's identity, so its processes can
be found after a crash — and only its: two runs told the same run id have distinct markers."""

_PROC = "/proc"
_POLL_SECONDS = 0.02
_READ_LIMIT = 1 << 20


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgrp: int
    state: str


def _read(path: str) -> bytes | None:
    # os.open/os.read, not pathlib: these scans run at the end of every run, and with a
    # few hundred processes on a machine the pathlib version cost milliseconds of CPU.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, _READ_LIMIT)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_stat(pid: int) -> ProcInfo | None:
    raw = _read(f"{_PROC}/{pid}/stat")
    if raw is None:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(b")") + 2 :].split()
    if len(rest) < 3:
        return None
    return ProcInfo(pid=pid, state=rest[0].decode(), ppid=int(rest[1]), pgrp=int(rest[2]))


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(_PROC) if name.isdigit()]
    except OSError:
        return []


def snapshot() -> list[ProcInfo]:
    """Every live (non-zombie) process visible in ``/proc``."""
    infos = (_read_stat(pid) for pid in _pids())
    return [info for info in infos if info is not None and info.state not in ("Z", "X")]


def pid_is_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    info = _read_stat(pid)
    return info is not None and info.state not in ("Z", "X")


def group_exists(pgid: int) -> bool:
    """Whether any process (zombies included) is in process group ``pgid``; no /proc scan."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_group_members(pgid: int) -> set[int]:
    """Live members of process group ``pgid`` (the empty set at once when the group is gone)."""
    if not group_exists(pgid):
        return set()
    return {info.pid for info in snapshot() if info.pgrp == pgid}


def find_marked(marker: str) -> set[int]:
    """Live processes whose environment carries ``WT_INVOKERS__PROCESS_MARKER=<marker>``.

    Processes whose environ cannot be read (other users, gone meanwhile) are skipped.
    """
    needle = f"\0{PROCESS_MARKER_ENV_VAR}={marker}\0".encode()
    me = os.getpid()
    found: set[int] = set()
    for pid in _pids():
        if pid == me:
            continue
        environ = _read(f"{_PROC}/{pid}/environ")
        if environ and needle in b"\0" + environ and pid_is_alive(pid):
            found.add(pid)
    return found


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` plus every live process below them (by parent pid)."""
    children: dict[int, list[int]] = {}
    for info in snapshot():
        children.setdefault(info.ppid, []).append(info.pid)
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, ()))
    return seen


def _signal_all(pgids: Iterable[int], pids: Iterable[int], sig: signal.Signals) -> None:
    for pgid in pgids:
        # killpg reaches members forked after the last scan, too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def terminate(
    targets: Callable[[], set[int]],
    *,
    grace: float,
    pgids: Iterable[int] = (),
) -> set[int]:
    """SIGTERM everything ``targets()`` returns (and the groups ``pgids``), SIGKILL after ``grace``.

    ``targets`` is re-evaluated while waiting (in a thread: it scans ``/proc``), so
    processes forked during the grace period are caught as well. Returns the pids
    seen at the first scan.
    """
    pgids = list(pgids)
    first = await asyncio.to_thread(targets)
    _signal_all(pgids, first, signal.SIGTERM)
    deadline = time.monotonic() + max(grace, 0.0)
    remaining = first
    while remaining and time.monotonic() < deadline:
        await asyncio.sleep(_POLL_SECONDS)
        remaining = await asyncio.to_thread(targets)
    if remaining:
        logger.info("processes %s outlived SIGTERM by %.1fs; sending SIGKILL", remaining, grace)
        # SIGKILL cannot be ignored; a few rounds catch anything forked meanwhile.
        for _ in range(50):
            _signal_all(pgids, remaining, signal.SIGKILL)
            await asyncio.sleep(_POLL_SECONDS)
            remaining = await asyncio.to_thread(targets)
            if not remaining:
                break
    return first


async def kill_stale_processes(marker: str, *, grace: float = 5.0) -> int:
    """Kill every process on this machine marked with ``marker``; how many were found.

    ``marker`` is an invocation's identity (:attr:`Invocation.identity`: its
    ``run_uid``, else its run id). For the operator after a crash: the previous
    operator process's children are no longer its children, but they still carry
    ``WT_INVOKERS__PROCESS_MARKER`` in their environment. They and their
    descendants get SIGTERM, then SIGKILL after ``grace``.
    """
    if not marker:
        raise ValueError("the process marker must not be empty")

    def targets() -> set[int]:
        return descendants(find_marked(marker))

    marked = await asyncio.to_thread(find_marked, marker)
    if not marked:
        return 0
    logger.warning(
        "killing %d stale process(es) of workflow run %s: %s", len(marked), marker, sorted(marked)
    )
    await terminate(targets, grace=grace)
    return len(marked)
