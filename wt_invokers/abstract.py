"""The interface every invoker implements, and the run/wait lifecycle they share.

Exists so that callers (the operator, scripts, tests) can drive a workflow the
same way whether it runs here or in the cloud, and ask ``is_waitable`` to learn
whether ``wait()`` means anything.

As upstream wt-invokers (v0.3), the base is a dataclass (``matchspec``,
``results_env_var``) and ``run()``/``wait()`` are concrete: they keep an invoker
IDLE → RUNNING → IDLE around four hooks — ``_pre_run`` and ``_run`` in ``run()``,
``_wait`` and ``_post_run`` in ``wait()`` — so mixins (:mod:`wt_invokers.mixins`)
add work before and after a run without each invoker re-implementing the plumbing.
``_post_run`` always runs once ``wait()`` started, and its failure is never hidden:
it replaces the exit code (an upload that failed is not secondary to the workflow).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rattler import MatchSpec

from wt_invokers import _process
from wt_invokers.exceptions import CommandError, InvocationStateError, InvokerConfigurationError

__all__ = [
    "DEFAULT_RESULTS_ENV_VAR",
    "RESULTS_ENV_VAR_SETTING",
    "AbstractInvoker",
    "as_matchspec",
]

RESULTS_ENV_VAR_SETTING = "WT_INVOKERS__RESULTS_ENV_VAR"
"""Environment variable naming the variable through which a workflow learns its results URL."""

DEFAULT_RESULTS_ENV_VAR = "WT_RESULTS"
"""Used when neither the constructor nor ``WT_INVOKERS__RESULTS_ENV_VAR`` names one."""


def as_matchspec(spec: MatchSpec | str) -> MatchSpec:
    """``spec`` parsed; an invalid one raises InvokerConfigurationError (a ValueError).

    The field is typed ``MatchSpec`` as upstream's; a string passed to an invoker is
    parsed too, and typed callers holding a string call this first.
    """
    if isinstance(spec, MatchSpec):
        return spec
    try:
        return MatchSpec(spec)
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        raise InvokerConfigurationError(f"invalid workflow MatchSpec {spec!r}: {exc}") from exc


def _default_results_env_var() -> str:
    return os.environ.get(RESULTS_ENV_VAR_SETTING) or DEFAULT_RESULTS_ENV_VAR


# eq=False: an invoker is a live object (a process, a client); two are never "equal".
@dataclasses.dataclass(eq=False)
class AbstractInvoker(abc.ABC):
    """Runs one compiled workflow package; one instance drives one invocation at a time.

    A dataclass, as upstream's: ``@dataclass class MyInvoker(AbstractInvoker)`` with
    ``_run``/``_wait``/``is_installed``/``install``/``is_waitable`` is a complete invoker.
    Positional order: ``matchspec, results_env_var``; the rest is keyword-only.
    """

    matchspec: MatchSpec
    """The conda MatchSpec of the workflow package (a string is parsed)."""
    results_env_var: str = dataclasses.field(default_factory=_default_results_env_var)
    """The variable carrying the results URL to the workflow; default
    ``$WT_INVOKERS__RESULTS_ENV_VAR``, else ``WT_RESULTS`` (read at construction)."""
    _: dataclasses.KW_ONLY
    environment: str = "default"
    """The pixi environment the workflow is installed in."""

    _run_args: dict[str, Any] = dataclasses.field(default_factory=dict, init=False, repr=False)
    _run_state: dict[str, Any] = dataclasses.field(default_factory=dict, init=False, repr=False)
    _is_running: bool = dataclasses.field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.matchspec = as_matchspec(self.matchspec)
        if self.matchspec.name is None:
            raise InvokerConfigurationError(f"MatchSpec {str(self.matchspec)!r} names no package")
        if not self.results_env_var:  # None or "" from callers that mean "the default"
            self.results_env_var = _default_results_env_var()
        if not self.environment:
            raise InvokerConfigurationError("the pixi environment name must not be empty")

    # -- identity -------------------------------------------------------------------

    @property
    def package_name(self) -> str:
        """The normalized conda package name, which is also the workflow's executable."""
        # Parsed here too: a subclass's own __post_init__ may not call ours.
        name = as_matchspec(self.matchspec).name
        if name is None:
            raise InvokerConfigurationError("MatchSpec names no package")
        return str(name.normalized)

    @property
    def entrypoint_args(self) -> list[str]:
        """The entrypoint as argv tokens: ``["pixi", "run", "-e", env, name]``."""
        return ["pixi", "run", "-e", self.environment, self.package_name]

    @property
    def entrypoint(self) -> str:
        """The entrypoint as the seed spells it: ``pixi run -e default <name>``."""
        return " ".join(self.entrypoint_args)

    # -- lifecycle ------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """Whether the invoker is between ``run()`` and the end of ``wait()`` (RUNNING)."""
        return self._is_running

    @property
    def run_args(self) -> MappingProxyType[str, Any]:
        """Read-only view of the current ``run()`` call's arguments (its ``**kwargs`` too).

        For hooks: a mixin reads its per-run inputs (``environment_tar_url``…) here.
        Empty when IDLE.
        """
        return MappingProxyType(self._run_args)

    @property
    def run_state(self) -> dict[str, Any]:
        """What one hook leaves for the next during a run; emptied when the run ends."""
        return self._run_state

    def _reset_lifecycle(self) -> None:
        self._run_args = {}
        self._run_state = {}
        self._is_running = False

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
        """Start the workflow (``_pre_run`` then ``_run``) and return once it is started.

        Raises :class:`InvocationStateError` (a ``RuntimeError``) while a run is in
        flight. If a hook fails the invoker is IDLE again. A non-waitable invoker
        is IDLE again as soon as ``run()`` returns: there is no ``wait()`` phase.
        """
        if self._is_running:
            raise InvocationStateError(
                f"run() called while already running (run {self._run_args.get('workflow_run_id')})"
                " -- wait() must complete (or cancel()) before calling run() again"
            )
        self._is_running = True
        self._run_args = {
            "workflow_run_id": workflow_run_id,
            "config_text": config_text,
            "results_url": results_url,
            "execution_mode": execution_mode,
            "mock_io": mock_io,
            "otel_exporter": otel_exporter,
            "otel_console_exporter_dst": otel_console_exporter_dst,
            "extra_env": extra_env,
            "lithops_config_text": lithops_config_text,
            **kwargs,
        }
        self._run_state = {}
        try:
            await self._pre_run()
            await self._run(
                workflow_run_id,
                config_text,
                results_url,
                execution_mode,
                mock_io,
                otel_exporter,
                otel_console_exporter_dst,
                extra_env,
                lithops_config_text,
                **kwargs,
            )
        except BaseException:
            self._reset_lifecycle()
            raise
        if not self.is_waitable:
            self._reset_lifecycle()

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Wait for the workflow (``_wait``), then ``_post_run``; return the exit code.

        ``_post_run`` runs whatever ``_wait`` did (returned, raised, was cancelled); if
        it raises, its exception propagates (``_wait``'s, if any, on ``__context__``).
        A waitable invoker that is IDLE raises :class:`InvocationStateError`; a
        non-waitable one returns ``_wait()``'s answer (by convention 0).
        """
        if self.is_waitable and not self._is_running:
            raise InvocationStateError(
                "wait() called while not running -- run() must complete first"
            )
        try:
            code = await self._wait(timeout=timeout, error_msg=error_msg)
        finally:
            try:
                await self._post_run()
            finally:
                self._reset_lifecycle()
        return code

    async def _pre_run(self) -> None:  # noqa: B027 - a hook: empty on purpose
        """Before ``_run``; mixins override it and call ``super()._pre_run()`` first."""

    async def _post_run(self) -> None:  # noqa: B027 - a hook: empty on purpose
        """After ``_wait``, always; mixins override it and call ``super()._post_run()`` first."""

    # -- the abstract API -----------------------------------------------------------

    @property
    @abc.abstractmethod
    def is_waitable(self) -> bool:
        """Whether ``wait()`` waits for the workflow (True) or returns 0 at once (False)."""

    @abc.abstractmethod
    async def is_installed(self) -> bool:
        """Whether a package matching ``matchspec`` is available to run."""

    @abc.abstractmethod
    async def install(self) -> None:
        """Install the workflow package."""

    @abc.abstractmethod
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
        """Launch the workflow with its configuration (YAML text) and return once started."""

    @abc.abstractmethod
    async def _wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Wait for the launched workflow and return its exit code."""

    # -- one-off commands -------------------------------------------------------------

    def _command_argv(self, command: list[str]) -> list[str]:
        """argv that runs ``command`` in the workflow environment (overridable)."""
        return [*self.entrypoint_args, *command]

    def _command_cwd(self) -> Path | None:
        return None

    async def _command_env(self) -> Mapping[str, str] | None:
        return None

    def _command_kill_grace(self) -> float:
        """Seconds between SIGTERM and SIGKILL for a cancelled ``check_output``."""
        return 5.0

    async def check_output(self, command: list[str], stdin: str | None = None) -> str:
        """Run ``<entrypoint> <command…>`` in the workflow environment and return its stdout.

        For quick questions to the workflow (``--version``, ``describe``…) without
        a full run. A non-zero exit raises :class:`CommandError` (a ``RuntimeError``)
        carrying stderr. Cancelled (a caller's timeout, a shutdown), it kills the
        command's whole process tree before re-raising: nobody would collect it otherwise.
        """
        argv = self._command_argv(list(command))
        env = dict(await self._command_env() or os.environ)
        # Marks the tree, so a child that left the process group is still found.
        marker = f"check-output-{uuid.uuid4().hex}"
        env[_process.PROCESS_MARKER_ENV_VAR] = marker
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self._command_cwd(),
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise CommandError(
                f"cannot start {argv[0]!r}: {exc.strerror}", returncode=127, stderr=str(exc)
            ) from exc
        try:
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        except BaseException:
            await asyncio.shield(self._kill_command_tree(proc.pid, marker))
            raise
        stderr = err.decode(errors="replace")
        if proc.returncode != 0:
            code = proc.returncode if proc.returncode is not None else -1
            raise CommandError(
                f"{' '.join(argv)} exited with {code}: {stderr.strip()[-2000:]}",
                returncode=code,
                stderr=stderr,
            )
        return out.decode(errors="replace").strip()

    async def _kill_command_tree(self, pgid: int, marker: str) -> None:
        def targets() -> set[int]:
            return _process.live_group_members(pgid) | _process.find_marked(marker)

        await _process.terminate(targets, grace=self._command_kill_grace(), pgids=[pgid])
