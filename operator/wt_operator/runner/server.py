"""The runner: start, stream, kill and report Local workflows on the operator's behalf.

Exists so workflows run beside the operator, not inside it: another uid, another
container, no ServiceAccount token, nothing of the operator's environment. The
runner decides nothing about a run: it is handed argv, environment, working
directory and marker (:class:`~.protocol.Start`) and adds nothing of its own
process's environment. What it owns is the process tree: every workflow is its
own session (the group is the tree), marked so leftovers are found, given
``oom_score_adj`` 1000 so under memory pressure the kernel picks a workflow and
never the runner that follows everyone's runs.

Who may talk to it: only the uids given with ``--allow-uid`` (the operator's),
checked with ``SO_PEERCRED`` — the kernel's word for the peer, which no client can
forge. The socket file itself is world-connectable on purpose: its directory is a
volume both containers share, and a file mode can only separate the operator from
the workflows through a group, and pod-level groups reach every container, the
workflows included. The workflows run as the runner's own uid, which is never
allowed (unless ``--allow-same-uid``, for development), so a workflow cannot
start, attach to or read another run through the socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wt_invokers import processes
from wt_invokers.exceptions import InstallationError, InvokerConfigurationError
from wt_invokers.processes import (
    OutputReader,
    make_results_dir,
    remove_all,
    start_error,
    write_private,
)
from wt_operator.runner import protocol
from wt_operator.runner.protocol import FILE_PLACEHOLDER_PREFIX, ErrorKind, ProtocolError, Start

__all__ = ["Runner"]

log = logging.getLogger("wt_operator.runner")

OOM_SCORE_ADJ = b"1000"
"""The kernel's OOM killer picks the highest score first: workflows, never the runner."""

_MARKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_DRAIN_AFTER_EXIT_SECONDS = 2.0
_SEND_BUFFER_LIMIT = 4 * 1024 * 1024
"""A client that lets this much output pile up unread is dropped (the run goes on; the
client reattaches and gets what it missed from the history)."""


def _workflow_preexec() -> None:
    # In the child between fork and exec: the workflow (and all it forks) inherit it.
    # Raising one's own score needs no privilege. Only os calls: no locks after fork.
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, OOM_SCORE_ADJ)
        finally:
            os.close(fd)
    except OSError:
        pass


def _error_kind(exc: BaseException) -> ErrorKind:
    match exc:
        case InstallationError():
            return "installation"
        case InvokerConfigurationError():
            return "config"
        case _:
            return "start"


class _Run:
    """One workflow process tree and what its client may still need of it."""

    def __init__(self, start: Start, history_bytes: int) -> None:
        self.start = start
        self.proc: asyncio.subprocess.Process | None = None
        self.files: list[Path] = []
        self.client: asyncio.StreamWriter | None = None
        self.exit_code: int | None = None
        self.done = asyncio.Event()
        self._history: collections.deque[tuple[int, bytes]] = collections.deque()
        self._history_bytes = 0
        self._history_limit = history_bytes
        self._seq = 0
        self._finishing: asyncio.Task[None] | None = None

    @property
    def marker(self) -> str:
        return self.start.marker

    def emit(self, stream: str, text: str) -> None:
        self._seq += 1
        msg = protocol.encode("line", seq=self._seq, stream=stream, text=text)
        self._history.append((self._seq, msg))
        self._history_bytes += len(msg)
        while self._history_bytes > self._history_limit and len(self._history) > 1:
            self._history_bytes -= len(self._history.popleft()[1])
        self.send(msg)

    def send(self, msg: bytes) -> None:
        client = self.client
        if client is None:
            return
        transport = client.transport
        if transport.is_closing() or transport.get_write_buffer_size() > _SEND_BUFFER_LIMIT:
            log.warning("run %s: its client stopped reading; dropping it", self.marker)
            self.detach(client)
            return
        client.write(msg)

    def attach(self, client: asyncio.StreamWriter, after: int) -> None:
        """Make ``client`` the run's follower: lines after ``after``, then live ones."""
        if self.client is not None and self.client is not client:
            self.detach(self.client)  # a newer operator took over
        self.client = client
        for seq, msg in self._history:
            if seq > after:
                client.write(msg)
        if self.exit_code is not None:
            client.write(protocol.encode("exited", code=self.exit_code))

    def detach(self, client: asyncio.StreamWriter) -> None:
        if self.client is client:
            self.client = None
        client.close()

    def targets(self) -> set[int]:
        pgid = self.proc.pid if self.proc is not None else None
        found = processes.live_group_members(pgid) if pgid is not None else set()
        return found | processes.find_marked(self.marker)

    async def kill_tree(self) -> None:
        pgids = [self.proc.pid] if self.proc is not None else []
        await processes.terminate(self.targets, grace=self.start.kill_grace_seconds, pgids=pgids)

    def finish(self, reader: OutputReader) -> asyncio.Task[None]:
        if self._finishing is None:
            self._finishing = asyncio.create_task(self._finish(reader))
        return self._finishing

    async def _finish(self, reader: OutputReader) -> None:
        assert self.proc is not None
        try:
            returncode = await self.proc.wait()
            await self.kill_tree()  # what it left behind goes with it
            await reader.finish(_DRAIN_AFTER_EXIT_SECONDS)
        finally:
            await asyncio.to_thread(remove_all, self.files)
        self.exit_code = 128 - returncode if returncode < 0 else returncode
        log.info("run %s exited with %d", self.marker, self.exit_code)
        self.send(protocol.encode("exited", code=self.exit_code))
        self.done.set()


class Runner:
    """The runner's state: its runs by marker, and the socket it serves them on."""

    def __init__(
        self,
        socket_path: Path,
        *,
        allowed_uids: Iterable[int],
        state_dir: Path,
        history_bytes: int = 1024 * 1024,
        finished_ttl: float = 600.0,
    ) -> None:
        self.socket_path = socket_path
        self.allowed_uids = frozenset(allowed_uids)
        self.state_dir = state_dir
        self.history_bytes = history_bytes
        self.finished_ttl = finished_ttl
        """How long a finished run's outcome waits for a (restarted) operator to attach."""
        self.runs: dict[str, _Run] = {}
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        await self._kill_previous_runs()
        with contextlib.suppress(FileNotFoundError):
            if self.socket_path.is_socket():
                self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=os.fspath(self.socket_path), limit=protocol.MAX_MESSAGE_BYTES
        )
        # Connectable by any uid: SO_PEERCRED decides (see the module docstring).
        os.chmod(self.socket_path, 0o666)
        log.info("serving on %s for uid(s) %s", self.socket_path, sorted(self.allowed_uids))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Clients first: a run killed because its runner stops was lost, it did not exit,
        # and its operator must hear that (it reattaches, finds nothing: InvokerLost).
        for run in list(self.runs.values()):
            if run.client is not None:
                run.detach(run.client)
        for run in list(self.runs.values()):
            if run.exit_code is None and run.proc is not None:
                await run.kill_tree()

    async def _kill_previous_runs(self) -> None:
        """Processes of runs an earlier runner started (it died without cleaning up)."""
        for entry in self.state_dir.iterdir():
            killed = await processes.kill_stale_processes(entry.name, grace=1.0)
            log.warning(
                "run %s was lost with the previous runner (%d process(es) killed)",
                entry.name,
                killed,
            )
            entry.unlink(missing_ok=True)

    # -- one connection -----------------------------------------------------------------

    def _peer_allowed(self, writer: asyncio.StreamWriter) -> tuple[bool, int]:
        sock: socket.socket = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return uid in self.allowed_uids, uid

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            allowed, uid = self._peer_allowed(writer)
            if not allowed:
                log.warning("refused a connection from uid %d", uid)
                # Its request is read (and ignored) first: closing with unread data would
                # reset the connection and the refusal would never reach the peer.
                with contextlib.suppress(TimeoutError, ValueError):
                    await asyncio.wait_for(reader.readline(), 1.0)
                await self._reply(
                    writer, "error", kind="denied", message=f"uid {uid} may not use this runner"
                )
                return
            msg = protocol.decode(await reader.readline())
            await self._dispatch(msg, reader, writer)
        except ProtocolError as exc:
            await self._reply(writer, "error", kind="protocol", message=str(exc))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.info("a client went away: %s", exc)
        finally:
            writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, msg_type: str, **fields: Any) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(protocol.encode(msg_type, **fields))
            await writer.drain()

    async def _dispatch(
        self, msg: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        match msg["type"]:
            case "start":
                start = Start.from_message(msg)
                _check_marker(start.marker)
                await self._start(start, reader, writer)
            case "attach":
                marker = _check_marker(msg.get("marker"))
                run = self.runs.get(marker)
                if run is None:
                    await self._reply(writer, "unknown", marker=marker)
                    return
                await self._reply(writer, "attached", pid=run.proc.pid if run.proc else 0)
                after = msg.get("after", 0)
                run.attach(writer, after if isinstance(after, int) else 0)
                await self._follow(run, reader, writer)
            case "kill":
                marker = _check_marker(msg.get("marker"))
                count = await self._kill(marker)
                await self._reply(writer, "killed", count=count)
            case "leftovers":
                marker = _check_marker(msg.get("marker"))
                pids = await asyncio.to_thread(processes.find_marked, marker)
                await self._reply(writer, "leftovers", pids=sorted(pids))
            case other:
                raise ProtocolError(f"unknown request {other!r}")

    async def _start(
        self, start: Start, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        existing = self.runs.get(start.marker)
        if existing is not None and existing.exit_code is None:
            # Never twice: the operator records Running before it starts, and attaches after.
            await self._reply(
                writer, "error", kind="busy", message=f"run {start.marker} is already running here"
            )
            return
        run = _Run(start, self.history_bytes)
        try:
            out_r, err_r = await self._launch(run)
        except Exception as exc:
            await self._reply(writer, "error", kind=_error_kind(exc), message=str(exc))
            return
        self.runs[start.marker] = run
        assert run.proc is not None
        await self._reply(writer, "started", pid=run.proc.pid)
        reader_ = OutputReader(out_r, err_r, label=start.marker, tail_lines=0, callback=run.emit)
        task = run.finish(reader_)
        task.add_done_callback(lambda _t: self._finished(run))
        run.attach(writer, after=0)
        await self._follow(run, reader, writer)

    async def _launch(self, run: _Run) -> tuple[int, int]:
        start = run.start
        run.files = await asyncio.to_thread(_write_files, start)
        paths = {
            FILE_PLACEHOLDER_PREFIX + name: os.fspath(path)
            for name, path in zip(start.files, run.files, strict=True)
        }
        argv = [paths.get(arg, arg) for arg in start.argv]
        env = {key: paths.get(value, value) for key, value in start.env.items()}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        (self.state_dir / start.marker).touch()
        try:
            run.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                cwd=start.cwd,
                env=env,
                start_new_session=True,  # the group is the tree
                preexec_fn=_workflow_preexec,
            )
        except BaseException as exc:
            os.close(out_r)
            os.close(err_r)
            (self.state_dir / start.marker).unlink(missing_ok=True)
            await asyncio.to_thread(remove_all, run.files)
            raise start_error(argv[0], exc, "prefix") from exc
        finally:
            os.close(out_w)
            os.close(err_w)
        log.info("run %s started: pid %d, %s", start.marker, run.proc.pid, argv[0])
        return out_r, err_r

    async def _follow(
        self, run: _Run, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve the run's client until it goes away (the run goes on without it)."""
        try:
            while line := await reader.readline():
                msg = protocol.decode(line)
                if msg["type"] != "cancel":
                    raise ProtocolError(f"only cancel is understood here, not {msg['type']!r}")
                if run.exit_code is None and run.proc is not None:
                    log.info("run %s: cancel requested", run.marker)
                    await run.kill_tree()
                await run.done.wait()
        finally:
            run.detach(writer)

    async def _kill(self, marker: str) -> int:
        run = self.runs.get(marker)
        count = 0
        if run is not None and run.exit_code is None and run.proc is not None:
            count = len(await asyncio.to_thread(run.targets))
            await run.kill_tree()
            await run.done.wait()
        return count + await processes.kill_stale_processes(marker, grace=1.0)

    def _finished(self, run: _Run) -> None:
        (self.state_dir / run.marker).unlink(missing_ok=True)
        loop = asyncio.get_running_loop()
        loop.call_later(self.finished_ttl, self._forget, run)

    def _forget(self, run: _Run) -> None:
        if self.runs.get(run.marker) is not run:
            return
        if run.client is not None:  # still being read: ask again later
            asyncio.get_running_loop().call_later(self.finished_ttl, self._forget, run)
            return
        del self.runs[run.marker]


def _check_marker(marker: object) -> str:
    # The marker names a file in the state directory: nothing but a plain name.
    if not isinstance(marker, str) or not _MARKER.fullmatch(marker):
        raise ProtocolError("the marker must be a plain name ([A-Za-z0-9._-])")
    return marker


def _write_files(start: Start) -> list[Path]:
    written: list[Path] = []
    try:
        if start.results_dir is not None:
            make_results_dir(Path(start.results_dir))
        for name, text in start.files.items():
            written.append(write_private(text, f"wt-{name}-", ".yaml"))
    except BaseException:
        remove_all(written)
        raise
    return written
