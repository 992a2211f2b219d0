"""Run a workflow as a local subprocess tree, inside a pixi workspace's environment.

Exists for development machines, CI and the operator's own nodes: the same
workflow package the cloud runs, started here with ``pixi run`` (or, without a
pixi binary, straight from the environment prefix) and supervised as a process
*tree* — a timeout or a cancel kills grandchildren too, and a crashed operator
can find a run's orphans again through :func:`kill_stale_processes`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal
from urllib.parse import unquote, urlparse

import yaml
from rattler import MatchSpec, PrefixRecord

from wt_invokers import _process
from wt_invokers._activation import ActivationDelta, compute_activation
from wt_invokers._process import RUN_ID_ENV_VAR
from wt_invokers.abstract import AbstractInvoker
from wt_invokers.exceptions import (
    InstallationError,
    InvocationStateError,
    InvocationTimeoutError,
    InvokerConfigurationError,
)

__all__ = [
    "CWD_ENV_VAR",
    "LITHOPS_CONFIG_ENV_VAR",
    "RUN_ID_ENV_VAR",
    "Launcher",
    "LineCallback",
    "LocalSubprocessInvoker",
    "kill_stale_processes",
]

logger = logging.getLogger(__name__)
# Workflow output gets its own logger so a caller that forwards lines itself (the
# operator masks secrets first) can silence this unfiltered copy.
output_logger = logging.getLogger(__name__ + ".output")

CWD_ENV_VAR = "WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD"
"""Default working directory (the pixi workspace) when the constructor gives none."""

LITHOPS_CONFIG_ENV_VAR = "LITHOPS_CONFIG_FILE"
"""Where lithops looks for its configuration; points at the run's private copy."""

LineCallback = Callable[[str, str], None]
"""``callback(stream_name, line)`` with ``stream_name`` ``"stdout"`` or ``"stderr"``."""

Launcher = Literal["pixi", "prefix"]
"""How the workflow is started: through ``pixi run``, or straight from the env prefix."""

_CHUNK = 64 * 1024
# A "line" longer than this is cut: one runaway write must not hold megabytes in memory.
_MAX_LINE = 64 * 1024
# After the workflow exits, how long its output pipes may stay open (held by a background
# grandchild) before the readers give up on them.
_DRAIN_AFTER_EXIT_SECONDS = 2.0


def _exit_code(returncode: int) -> int:
    # asyncio reports death by signal N as -N; shells (and users) expect 128+N.
    return 128 - returncode if returncode < 0 else returncode


def _results_dir(results_url: str) -> Path | None:
    """The local directory a results URL names, or None for remote URLs (gs://, s3://…)."""
    if results_url.startswith("file:"):
        parsed = urlparse(results_url)
        if parsed.netloc not in ("", "localhost"):
            raise InvokerConfigurationError(
                f"results URL {results_url!r} names a remote host; only local file URLs work here"
            )
        return Path(unquote(parsed.path))
    if os.path.isabs(results_url):
        return Path(results_url)
    return None


def _write_private(text: str, prefix: str, suffix: str) -> Path:
    # mkstemp creates the file 0600: configurations may carry credentials.
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(name)


class LocalSubprocessInvoker(AbstractInvoker):
    """Runs the workflow as a child process tree of this process, in a pixi workspace.

    Args:
        matchspec: the workflow package (its name is also its executable).
        cwd: the pixi workspace; default ``$WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD``,
            else the current directory.
        results_env_var: see :class:`AbstractInvoker`.
        environment: the pixi environment (``<cwd>/.pixi/envs/<environment>``).
        launcher: ``"pixi"`` runs ``<pixi_executable> run -e <environment> <name>``;
            ``"prefix"`` needs no pixi binary: it activates the environment prefix with
            py-rattler (once per invoker) and executes ``<prefix>/bin/<name>`` directly.
        pixi_executable: the pixi binary (a name looked up on ``PATH``, or a path).
        line_callback: called with every output line, from the event loop; keep it cheap.
        tail_lines: how many of the last output lines (both streams) ``output_tail`` keeps.
        kill_grace_seconds: between SIGTERM and SIGKILL when a run is timed out or cancelled.
    """

    def __init__(
        self,
        matchspec: MatchSpec | str,
        *,
        cwd: str | os.PathLike[str] | None = None,
        results_env_var: str | None = None,
        environment: str = "default",
        launcher: Launcher = "pixi",
        pixi_executable: str | os.PathLike[str] = "pixi",
        line_callback: LineCallback | None = None,
        tail_lines: int = 50,
        kill_grace_seconds: float = 10.0,
    ) -> None:
        super().__init__(matchspec, results_env_var=results_env_var, environment=environment)
        if launcher not in ("pixi", "prefix"):
            raise InvokerConfigurationError(
                f"launcher must be 'pixi' or 'prefix', not {launcher!r}"
            )
        if tail_lines < 0:
            raise InvokerConfigurationError("tail_lines must be >= 0")
        if kill_grace_seconds < 0:
            raise InvokerConfigurationError("kill_grace_seconds must be >= 0")
        chosen = cwd if cwd is not None else os.environ.get(CWD_ENV_VAR) or os.getcwd()
        self.cwd = Path(chosen).absolute()
        self.launcher: Launcher = launcher
        self.pixi_executable = os.fspath(pixi_executable)
        self.line_callback = line_callback
        self.tail_lines = tail_lines
        self.kill_grace_seconds = kill_grace_seconds

        self._activation: ActivationDelta | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._proc: asyncio.subprocess.Process | None = None
        self._run_id: str | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._pipes: list[BinaryIO] = []
        self._temp_files: list[Path] = []
        self._finishing: asyncio.Future[int] | None = None
        """The one task collecting the current run (see ``_finish``)."""

    # -- identity ---------------------------------------------------------------------

    @property
    def is_waitable(self) -> bool:
        return True

    @property
    def prefix(self) -> Path:
        """The conda environment the workflow runs in: ``<cwd>/.pixi/envs/<environment>``."""
        return self.cwd / ".pixi" / "envs" / self.environment

    @property
    def executable(self) -> Path:
        """The workflow's executable inside :attr:`prefix` (what the ``prefix`` launcher runs)."""
        return self.prefix / "bin" / self.package_name

    @property
    def pid(self) -> int | None:
        """The direct child's pid (also its process group id), while a run is in flight."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        """Whether the direct child has not exited yet."""
        return self._proc is not None and self._proc.returncode is None

    @property
    def output_tail(self) -> list[str]:
        """The last ``tail_lines`` output lines of the current or last run, both streams in order.

        For error reports: what a failed workflow said last.
        """
        return list(self._tail)

    # -- installation -----------------------------------------------------------------

    def _installed_records(self) -> list[PrefixRecord]:
        meta = self.prefix / "conda-meta"
        if not meta.is_dir():
            return []
        records = []
        for path in sorted(meta.glob("*.json")):
            try:
                records.append(PrefixRecord.from_path(path))
            except Exception as exc:  # a half-written or foreign JSON file is not a package
                logger.debug("skipping unreadable %s: %s", path, exc)
        return records

    async def is_installed(self) -> bool:
        """Whether the environment holds a package matching ``matchspec`` (versions included).

        Reads ``conda-meta`` directly instead of asking pixi: fast, and works without pixi.
        """
        records = await asyncio.to_thread(self._installed_records)
        return any(self.matchspec.matches(record) for record in records)

    async def install(self) -> None:
        """Not supported: the workspace's own ``pixi install`` owns the environment."""
        raise NotImplementedError(
            "LocalSubprocessInvoker does not install packages; "
            f"run `pixi install -e {self.environment}` in {self.cwd}"
        )

    # -- launching --------------------------------------------------------------------

    async def _activated(self) -> ActivationDelta:
        if self._activation is None:
            try:
                self._activation = await asyncio.to_thread(compute_activation, self.prefix)
            except FileNotFoundError as exc:
                raise InstallationError(
                    f"pixi environment {self.environment!r} is not installed in {self.cwd}: {exc}"
                ) from exc
            except RuntimeError as exc:
                raise InstallationError(str(exc)) from exc
        return self._activation

    def _launch_argv(self) -> list[str]:
        if self.launcher == "prefix":
            return [os.fspath(self.executable)]
        return [self.pixi_executable, "run", "-e", self.environment, self.package_name]

    def _command_argv(self, command: list[str]) -> list[str]:
        return [*self._launch_argv(), *command]

    def _command_cwd(self) -> Path | None:
        return self.cwd

    def _command_env(self) -> Mapping[str, str] | None:
        if self.launcher == "prefix" and self._activation is not None:
            return self._activation.apply(os.environ)
        return None

    async def check_output(self, command: list[str], stdin: str | None = None) -> str:
        if self.launcher == "prefix":
            await self._activated()  # the sync _command_env hook needs it computed
        return await super().check_output(command, stdin=stdin)

    async def run(
        self,
        workflow_run_id: str,
        config_text: str,
        results_url: str,
        execution_mode: str,
        mock_io: bool,
        otel_exporter: str | None = None,
        otel_console_exporter_dst: str | None = None,
        extra_env: dict[str, str] | None = None,
        lithops_config_text: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the workflow and return at once; :meth:`wait` collects it.

        The configuration goes through private temp files (not argv, where ``ps``
        shows it to everyone); they live until :meth:`wait` or :meth:`cancel` ends.
        """
        if self._proc is not None:
            raise InvocationStateError(
                f"a run ({self._run_id}) is still in flight; wait() for it or cancel() it first"
            )
        if not workflow_run_id:
            raise InvokerConfigurationError("workflow_run_id must not be empty")
        if not execution_mode:
            raise InvokerConfigurationError("execution_mode must not be empty")
        try:
            yaml.safe_load(config_text)
        except yaml.YAMLError as exc:
            raise InvokerConfigurationError(f"config_text is not valid YAML: {exc}") from exc
        if kwargs:
            logger.debug("ignoring options the local invoker does not use: %s", sorted(kwargs))
        if not self.cwd.is_dir():
            raise InvokerConfigurationError(f"working directory {self.cwd} does not exist")

        base_env: Mapping[str, str] = os.environ
        if self.launcher == "prefix":
            base_env = (await self._activated()).apply(os.environ)
            if not self.executable.exists():
                raise InstallationError(
                    f"{self.package_name} is not installed in {self.prefix} (no {self.executable})"
                )
        results_dir = _results_dir(results_url)
        if results_dir is not None:
            await asyncio.to_thread(results_dir.mkdir, parents=True, exist_ok=True)

        temp_files: list[Path] = []
        try:
            config_file = await asyncio.to_thread(
                _write_private, config_text, "wt-config-", ".yaml"
            )
            temp_files.append(config_file)
            env = dict(base_env)
            env.update(extra_env or {})
            if lithops_config_text is not None:
                lithops_file = await asyncio.to_thread(
                    _write_private, lithops_config_text, "wt-lithops-", ".yaml"
                )
                temp_files.append(lithops_file)
                env[LITHOPS_CONFIG_ENV_VAR] = os.fspath(lithops_file)
            env[self.results_env_var] = results_url
            env[RUN_ID_ENV_VAR] = workflow_run_id

            argv = [
                *self._launch_argv(),
                "run",
                "--config-file",
                os.fspath(config_file),
                "--execution-mode",
                execution_mode,
                "--mock-io" if mock_io else "--no-mock-io",
            ]
            if otel_exporter is not None:
                argv += ["--otel-exporter", otel_exporter]
            if otel_console_exporter_dst is not None:
                argv += ["--otel-console-exporter-dst", otel_console_exporter_dst]

            # Our own pipes, not asyncio's PIPE: asyncio's Process.wait() only returns once
            # every pipe is closed, so a background grandchild keeping stdout open would
            # make wait() hang although the workflow itself has exited.
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out_w,
                    stderr=err_w,
                    cwd=self.cwd,
                    env=env,
                    # Own session and process group: the whole tree can be signalled at once.
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                os.close(out_r)
                os.close(err_r)
                hint = (
                    "is pixi installed and on PATH? (or use launcher='prefix')"
                    if self.launcher == "pixi"
                    else "is the workflow installed?"
                )
                raise InstallationError(
                    f"cannot start {argv[0]!r}: {exc.strerror}; {hint}"
                ) from exc
            except BaseException as exc:
                os.close(out_r)
                os.close(err_r)
                if isinstance(exc, PermissionError):
                    raise InstallationError(f"cannot execute {argv[0]!r}: {exc.strerror}") from exc
                raise
            finally:
                os.close(out_w)
                os.close(err_w)
        except BaseException:
            await asyncio.to_thread(_remove_all, temp_files)
            raise

        logger.info("started workflow run %s: pid %d, %s", workflow_run_id, proc.pid, argv[0])
        self._proc = proc
        self._run_id = workflow_run_id
        self._temp_files = temp_files
        self._finishing = None
        self._tail = collections.deque(maxlen=self.tail_lines)
        self._pipes = [os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0)]
        self._readers = [
            asyncio.create_task(self._drain(self._pipes[0], "stdout")),
            asyncio.create_task(self._drain(self._pipes[1], "stderr")),
        ]

    async def _drain(self, pipe: BinaryIO, name: str) -> None:
        # Read chunks, not readline(): a long line without "\n" must neither raise
        # (readline's limit) nor stall the pipe and so deadlock the child.
        level = logging.DEBUG if name == "stdout" else logging.INFO
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader(limit=_CHUNK, loop=loop)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream, loop=loop), pipe
        )
        try:
            pending = b""
            while True:
                chunk = await stream.read(_CHUNK)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                while len(pending) > _MAX_LINE:
                    lines.append(pending[:_MAX_LINE])
                    pending = pending[_MAX_LINE:]
                self._emit(name, level, lines)
            if pending:
                self._emit(name, level, [pending])
        finally:
            transport.close()

    def _emit(self, name: str, level: int, lines: list[bytes]) -> None:
        log = output_logger.isEnabledFor(level)
        callback = self.line_callback
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            self._tail.append(line)
            if log:
                output_logger.log(level, "[%s %s] %s", self._run_id, name, line)
            if callback is not None:
                try:
                    callback(name, line)
                except Exception:  # a broken callback must not stop draining (deadlock)
                    logger.exception("line_callback failed; it will not be called again")
                    self.line_callback = callback = None

    # -- collecting -------------------------------------------------------------------

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Wait for the workflow; return its exit code (128+N when killed by signal N).

        On timeout the whole process tree is killed (SIGTERM, then SIGKILL after
        ``kill_grace_seconds``) and :class:`InvocationTimeoutError` raised. A
        cancelled ``wait()`` kills the tree too: nobody would collect it otherwise.
        """
        proc = self._proc
        if proc is None:
            raise InvocationStateError("wait() called but no run was started")
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            logger.warning(
                "workflow run %s exceeded %ss; killing its process tree", self._run_id, timeout
            )
            await self._kill_tree(proc)
            await self._finish(proc)
            raise InvocationTimeoutError(
                error_msg
                or f"workflow {self.package_name} (run {self._run_id}) did not finish within "
                f"{timeout} s; its process tree was killed"
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel_now(proc))
            raise
        return await self._finish(proc)

    async def cancel(self) -> int | None:
        """Kill the running workflow's process tree; its exit code, or None if none ran.

        Safe to call repeatedly and concurrently with :meth:`wait`.
        """
        proc = self._proc
        if proc is None:
            return None
        return await self._cancel_now(proc)

    async def _cancel_now(self, proc: asyncio.subprocess.Process) -> int:
        await self._kill_tree(proc)
        return await self._finish(proc)

    async def _kill_tree(self, proc: asyncio.subprocess.Process) -> None:
        run_id = self._run_id or ""
        pgid = proc.pid

        def targets() -> set[int]:
            found = _process.live_group_members(pgid)
            if run_id:  # members that left the group (setsid) still carry the marker
                found |= _process.find_marked(run_id)
            return found

        await _process.terminate(targets, grace=self.kill_grace_seconds, pgids=[pgid])

    async def _finish(self, proc: asyncio.subprocess.Process) -> int:
        # Several callers (wait, cancel, a cancelled wait) may finish the same run: the
        # first starts one task doing the work, everyone awaits it shielded, so a caller
        # being cancelled cannot leave the run half cleaned up.
        if self._proc is not proc:  # finished already
            return _exit_code(proc.returncode if proc.returncode is not None else -9)
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._finish_work(proc))
        return await asyncio.shield(self._finishing)

    async def _finish_work(self, proc: asyncio.subprocess.Process) -> int:
        try:
            returncode = await proc.wait()
            done, pending = await asyncio.wait(self._readers, timeout=_DRAIN_AFTER_EXIT_SECONDS)
            for task in pending:  # a background grandchild still holds the pipe open
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    logger.warning("reading workflow output failed: %r", task.exception())
        finally:
            temp_files, self._temp_files = self._temp_files, []
            await asyncio.to_thread(_remove_all, temp_files)
            for pipe in self._pipes:  # a reader cancelled before it started left its pipe
                pipe.close()
            self._readers, self._pipes = [], []
            self._proc = None
            self._finishing = None
        code = _exit_code(returncode)
        logger.info("workflow run %s exited with %d", self._run_id, code)
        return code


def _remove_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def kill_stale_processes(workflow_run_id: str, *, grace: float = 5.0) -> int:
    """Kill every process on this machine that belongs to ``workflow_run_id``; how many were found.

    For the operator after a crash: the previous operator process's children are
    no longer its children, but they still carry ``WT_INVOKERS__RUN_ID`` in their
    environment. They and their descendants get SIGTERM, then SIGKILL after ``grace``.
    """
    if not workflow_run_id:
        raise InvokerConfigurationError("workflow_run_id must not be empty")

    def targets() -> set[int]:
        return _process.descendants(_process.find_marked(workflow_run_id))

    marked = await asyncio.to_thread(_process.find_marked, workflow_run_id)
    if not marked:
        return 0
    logger.warning(
        "killing %d stale process(es) of workflow run %s: %s",
        len(marked),
        workflow_run_id,
        sorted(marked),
    )
    await _process.terminate(targets, grace=grace)
    return len(marked)
