"""Run a workflow as a local subprocess tree, inside a pixi workspace's environment.

Exists for development machines, CI and the operator's own nodes: the same
workflow package the cloud runs, started here with ``pixi run`` (or, without a
pixi binary, straight from the environment prefix) and supervised as a process
*tree* — when the workflow ends, times out or is cancelled, every process it
left behind is killed too, and a crashed operator can find a run's orphans
again through :func:`kill_stale_processes`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from wt_invokers import _prefix, _process
from wt_invokers._activation import ActivationDelta
from wt_invokers._launch import prepare_files, remove_all, results_dir_of, spawn
from wt_invokers._output import MAX_LINE_BYTES, LineCallback, OutputReader
from wt_invokers._process import PROCESS_MARKER_ENV_VAR, RUN_ID_ENV_VAR, kill_stale_processes
from wt_invokers.abstract import AbstractInvoker
from wt_invokers.exceptions import (
    InstallationError,
    InvocationStateError,
    InvocationTimeoutError,
    InvokerConfigurationError,
)
from wt_invokers.invocation import Invocation, warn_unknown_options, workflow_args

__all__ = [
    "CWD_ENV_VAR",
    "LITHOPS_CONFIG_ENV_VAR",
    "MAX_LINE_BYTES",
    "PROCESS_MARKER_ENV_VAR",
    "RUN_ID_ENV_VAR",
    "Launcher",
    "LineCallback",
    "LocalSubprocessInvoker",
    "kill_stale_processes",
]

logger = logging.getLogger(__name__)

CWD_ENV_VAR = "WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD"
"""Default working directory (the pixi workspace) when the constructor gives none."""

LITHOPS_CONFIG_ENV_VAR = "LITHOPS_CONFIG_FILE"
"""Where lithops looks for its configuration; points at the run's private copy."""

Launcher = Literal["pixi", "prefix"]
"""How the workflow is started: through ``pixi run``, or straight from the env prefix."""

# After the workflow and its leftovers are gone, how long the output pipes may stay
# open (held by a process that escaped both its group and its marker) before reading stops.
_DRAIN_AFTER_EXIT_SECONDS = 2.0


def _exit_code(returncode: int) -> int:
    # Python's convention, as upstream returns it: death by signal N is -N. (The
    # operator shows it as "killed by signal N" and records 128+N, as shells do.)
    return returncode


@dataclasses.dataclass(eq=False)
class LocalSubprocessInvoker(AbstractInvoker):
    """Runs the workflow as a child process tree of this process, in a pixi workspace.

    Upstream's positional order: ``LocalSubprocessInvoker(matchspec, results_env_var, cwd)``;
    everything after ``cwd`` is keyword-only.
    """

    cwd: str | os.PathLike[str] | None = dataclasses.field(
        default_factory=lambda: os.environ.get(CWD_ENV_VAR)
    )
    """The pixi workspace, kept as given; default ``$WT_INVOKERS__LOCAL_SUBPROCESS_INVOKER__CWD``.
    ``None`` means this process's current directory at the time of each call (upstream's
    meaning); :attr:`workdir` is the directory actually used."""
    _: dataclasses.KW_ONLY
    launcher: Launcher = "pixi"
    """``"pixi"`` runs ``<pixi_executable> run --frozen -e <environment> <name>`` (``--frozen``:
    the lock file is used as it is, never re-solved at run time); ``"prefix"`` needs no pixi
    binary: it activates the environment prefix with py-rattler (cached per prefix) and
    executes ``<prefix>/bin/<name>`` directly."""
    pixi_executable: str | os.PathLike[str] = "pixi"
    """The pixi binary (a name looked up on ``PATH``, or a path)."""
    line_callback: LineCallback | None = None
    """Called with every output line, from the event loop; keep it cheap."""
    tail_lines: int = 50
    """How many of the last output lines (both streams) ``output_tail`` keeps."""
    kill_grace_seconds: float = 10.0
    """Between SIGTERM and SIGKILL when a run is timed out or cancelled, and for processes
    the workflow leaves behind when it exits."""
    base_env: Mapping[str, str] = dataclasses.field(default_factory=lambda: os.environ, repr=False)
    """The environment the workflow starts from (before activation and the invocation's
    variables); default this process's own, as upstream. A caller whose environment holds
    credentials (an operator) passes a minimal one."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.launcher not in ("pixi", "prefix"):
            raise InvokerConfigurationError(
                f"launcher must be 'pixi' or 'prefix', not {self.launcher!r}"
            )
        if self.tail_lines < 0:
            raise InvokerConfigurationError("tail_lines must be >= 0")
        if self.kill_grace_seconds < 0:
            raise InvokerConfigurationError("kill_grace_seconds must be >= 0")
        self.pixi_executable = os.fspath(self.pixi_executable)

        self._proc: asyncio.subprocess.Process | None = None
        self._marker: str | None = None
        self._run_id: str | None = None
        self._reader: OutputReader | None = None
        self._last_tail: list[str] = []
        self._temp_files: list[Path] = []
        self._finishing: asyncio.Future[int] | None = None
        """The one task collecting the current run (see ``_finish``)."""
        self._waiters = 0

    # -- identity ---------------------------------------------------------------------

    @property
    def is_waitable(self) -> bool:
        return True

    @property
    def workdir(self) -> Path:
        """The workspace directory used now: ``cwd``, or this process's current directory."""
        return Path(self.cwd if self.cwd is not None else os.getcwd()).absolute()

    @property
    def prefix(self) -> Path:
        """The conda environment the workflow runs in: ``<workdir>/.pixi/envs/<environment>``."""
        return self.workdir / ".pixi" / "envs" / self.environment

    @property
    def executable(self) -> Path:
        """The workflow's executable inside :attr:`prefix` (what the ``prefix`` launcher runs)."""
        return self.prefix / "bin" / self.package_name

    @property
    def pid(self) -> int | None:
        """The direct child's pid (also its process group id), while a run is in flight."""
        return self._proc.pid if self._proc is not None else None

    @property
    def output_tail(self) -> list[str]:
        """The last ``tail_lines`` output lines of the current or last run, both streams in order.

        For error reports: what a failed workflow said last.
        """
        if self._reader is not None:
            return list(self._reader.tail)
        return list(self._last_tail)

    # -- installation -----------------------------------------------------------------

    async def is_installed(self) -> bool:
        """Whether the environment holds a package matching ``matchspec`` (versions included).

        Reads ``conda-meta`` directly instead of asking pixi: fast, works without pixi,
        and cached until the environment changes.
        """
        prefix = self.prefix
        # A cache hit costs one stat: not worth a trip to a worker thread.
        records = _prefix.cached_records(prefix)
        if records is None:
            records = await asyncio.to_thread(_prefix.installed_records, prefix)
        return any(self.matchspec.matches(record) for record in records)

    async def install(self) -> None:
        """Not supported: the workspace's own ``pixi install`` owns the environment."""
        raise NotImplementedError(
            "Dynamic installation of workflows is not yet supported; "
            f"run `pixi install -e {self.environment}` in {self.workdir}"
        )

    # -- launching --------------------------------------------------------------------

    async def _activated(self) -> ActivationDelta:
        cached = _prefix.cached_activation(self.prefix)
        if cached is not None:
            return cached
        try:
            return await asyncio.to_thread(_prefix.activation, self.prefix)
        except FileNotFoundError as exc:
            raise InstallationError(
                f"pixi environment {self.environment!r} is not installed in {self.workdir}: {exc}"
            ) from exc
        except RuntimeError as exc:
            raise InstallationError(str(exc)) from exc

    def _launch_argv(self) -> list[str]:
        if self.launcher == "prefix":
            return [os.fspath(self.executable)]
        pixi = os.fspath(self.pixi_executable)
        return [pixi, "run", "--frozen", "-e", self.environment, self.package_name]

    def _command_argv(self, command: list[str]) -> list[str]:
        return [*self._launch_argv(), *command]

    def _command_cwd(self) -> Path | None:
        return self.workdir

    def _command_kill_grace(self) -> float:
        return self.kill_grace_seconds

    async def _command_env(self) -> Mapping[str, str] | None:
        if self.launcher == "prefix":
            return (await self._activated()).apply(self.base_env)
        return None

    async def _run(
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
        """``run()``'s work: start the workflow and return at once; :meth:`wait` collects it.

        ``run_uid=`` is understood (see :class:`Invocation`), other unknown keywords are
        ignored with a warning. Typed callers use :meth:`start`.
        """
        invocation = Invocation.from_seed(
            workflow_run_id,
            config_text,
            results_url,
            execution_mode,
            mock_io,
            otel_exporter,
            otel_console_exporter_dst,
            extra_env,
            lithops_config_text,
            kwargs,
        )
        warn_unknown_options(type(self).__name__, kwargs)
        await self._launch(invocation)

    async def start(self, invocation: Invocation) -> None:
        """``run()`` for typed callers: start ``invocation`` and return; :meth:`wait` collects it.

        Same lifecycle (and hooks) as :meth:`run`.
        """
        options: dict[str, Any] = {}
        if invocation.run_uid is not None:
            options["run_uid"] = invocation.run_uid
        await self.run(
            invocation.workflow_run_id,
            invocation.config_text,
            invocation.results_url,
            invocation.execution_mode,
            invocation.mock_io,
            invocation.otel_exporter,
            invocation.otel_console_exporter_dst,
            dict(invocation.extra_env),
            invocation.lithops_config_text,
            **options,
        )

    async def _launch(self, invocation: Invocation) -> None:
        """Start the workflow process tree.

        The configuration goes through private temp files (not argv, where ``ps``
        shows it to everyone); they live until :meth:`wait` or :meth:`cancel` ends.
        """
        if self._proc is not None:
            raise InvocationStateError(
                f"a run ({self._run_id}) is still in flight; wait() for it or cancel() it first"
            )
        invocation.validate()
        workdir = self.workdir
        if not workdir.is_dir():
            raise InvokerConfigurationError(f"working directory {workdir} does not exist")
        activated = await self._command_env()
        base_env: Mapping[str, str] = self.base_env if activated is None else activated
        if self.launcher == "prefix" and not self.executable.exists():
            raise InstallationError(
                f"{self.package_name} is not installed in {self.prefix} (no {self.executable})"
            )
        # One trip to a worker thread for every file the run needs.
        temp_files = await asyncio.to_thread(
            prepare_files,
            results_dir_of(invocation.results_url),
            invocation.config_text,
            invocation.lithops_config_text,
        )
        try:
            config_file = temp_files[0]
            env = dict(base_env)
            env.update(invocation.extra_env)
            if invocation.lithops_config_text is not None:
                env[LITHOPS_CONFIG_ENV_VAR] = os.fspath(temp_files[1])
            # Set last: what the run author passed can never replace them.
            env[self.results_env_var] = invocation.results_url
            env[RUN_ID_ENV_VAR] = invocation.workflow_run_id
            env[PROCESS_MARKER_ENV_VAR] = invocation.identity
            argv = self._command_argv(
                workflow_args(invocation, ["--config-file", os.fspath(config_file)])
            )
            proc, out_r, err_r = await spawn(argv, env, cwd=workdir, launcher=self.launcher)
        except BaseException:
            await asyncio.to_thread(remove_all, temp_files)
            raise

        logger.info(
            "started workflow run %s: pid %d, %s", invocation.workflow_run_id, proc.pid, argv[0]
        )
        self._proc = proc
        self._run_id = invocation.workflow_run_id
        self._marker = invocation.identity
        self._temp_files = temp_files
        self._finishing = None
        self._reader = OutputReader(
            out_r,
            err_r,
            label=invocation.workflow_run_id,
            tail_lines=self.tail_lines,
            callback=self.line_callback,
        )

    # -- collecting -------------------------------------------------------------------

    async def _wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Wait for the workflow; return its exit code (-N when killed by signal N).

        Whatever the outcome, the processes the workflow left behind are killed
        before this returns. On timeout the whole process tree is killed (SIGTERM,
        then SIGKILL after ``kill_grace_seconds``) and :class:`InvocationTimeoutError`
        raised. A cancelled ``wait()`` kills the tree too: nobody would collect it otherwise.
        """
        proc = self._proc
        if proc is None:
            raise InvocationStateError("wait() called but no run was started")
        self._waiters += 1
        try:
            return await self._wait_for(proc, timeout, error_msg)
        finally:
            self._waiters -= 1

    async def _wait_for(
        self, proc: asyncio.subprocess.Process, timeout: float | None, error_msg: str | None
    ) -> int:
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
        code = await self._cancel_now(proc)
        if not self._waiters:  # else the wait() being cancelled ends the lifecycle
            self._reset_lifecycle()
        return code

    async def _cancel_now(self, proc: asyncio.subprocess.Process) -> int:
        await self._kill_tree(proc)
        return await self._finish(proc)

    async def _kill_tree(self, proc: asyncio.subprocess.Process) -> None:
        marker = self._marker or ""
        pgid = proc.pid

        def targets() -> set[int]:
            found = _process.live_group_members(pgid)
            if marker:  # members that left the group (setsid) still carry the marker
                found |= _process.find_marked(marker)
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
            # The run is over: whatever it started and left running (a backgrounded
            # child, a daemonised helper) goes too — it would live outside any limit.
            await self._kill_tree(proc)
            if self._reader is not None:
                await self._reader.finish(_DRAIN_AFTER_EXIT_SECONDS)
        finally:
            temp_files, self._temp_files = self._temp_files, []
            await asyncio.to_thread(remove_all, temp_files)
            if self._reader is not None:
                self._last_tail = list(self._reader.tail)
            self._reader = None
            self._proc = None
            self._finishing = None
        code = _exit_code(returncode)
        logger.info("workflow run %s exited with %d", self._run_id, code)
        return code
