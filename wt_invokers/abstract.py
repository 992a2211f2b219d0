"""The interface every invoker implements.

Exists so that callers (the operator, scripts, tests) can drive a workflow the
same way whether it runs here or in the cloud, and ask ``is_waitable`` to learn
whether ``wait()`` means anything.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rattler import MatchSpec

from wt_invokers.exceptions import CommandError, InvokerConfigurationError

__all__ = ["DEFAULT_RESULTS_ENV_VAR", "RESULTS_ENV_VAR_SETTING", "AbstractInvoker"]

RESULTS_ENV_VAR_SETTING = "WT_INVOKERS__RESULTS_ENV_VAR"
"""Environment variable naming the variable through which a workflow learns its results URL."""

DEFAULT_RESULTS_ENV_VAR = "WT_RESULTS"
"""Used when neither the constructor nor ``WT_INVOKERS__RESULTS_ENV_VAR`` names one."""


def _as_matchspec(spec: MatchSpec | str) -> MatchSpec:
    if isinstance(spec, MatchSpec):
        return spec
    try:
        return MatchSpec(spec)
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        raise InvokerConfigurationError(f"invalid workflow MatchSpec {spec!r}: {exc}") from exc


class AbstractInvoker(abc.ABC):
    """Runs one compiled workflow package; one instance drives one invocation at a time.

    Args:
        matchspec: the conda MatchSpec of the workflow package (a string is parsed).
        results_env_var: name of the environment variable that carries the results URL
            to the workflow; defaults to ``$WT_INVOKERS__RESULTS_ENV_VAR``, else ``WT_RESULTS``.
        environment: the pixi environment the workflow is installed in.
    """

    matchspec: MatchSpec
    results_env_var: str

    def __init__(
        self,
        matchspec: MatchSpec | str,
        *,
        results_env_var: str | None = None,
        environment: str = "default",
    ) -> None:
        self.matchspec = _as_matchspec(matchspec)
        if self.matchspec.name is None:
            raise InvokerConfigurationError(f"MatchSpec {str(matchspec)!r} names no package")
        self.results_env_var = (
            results_env_var or os.environ.get(RESULTS_ENV_VAR_SETTING) or DEFAULT_RESULTS_ENV_VAR
        )
        if not environment:
            raise InvokerConfigurationError("the pixi environment name must not be empty")
        self.environment = environment

    # -- identity -------------------------------------------------------------------

    @property
    def package_name(self) -> str:
        """The normalized conda package name, which is also the workflow's executable."""
        name = self.matchspec.name
        if name is None:  # checked in __init__; narrows the type for mypy
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
        """Launch the workflow with its configuration (YAML text) and return once started."""

    @abc.abstractmethod
    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """Wait for the launched workflow and return its exit code."""

    # -- one-off commands -------------------------------------------------------------

    def _command_argv(self, command: list[str]) -> list[str]:
        """argv that runs ``command`` in the workflow environment (overridable)."""
        return [*self.entrypoint_args, *command]

    def _command_cwd(self) -> Path | None:
        return None

    async def _command_env(self) -> Mapping[str, str] | None:
        return None

    async def check_output(self, command: list[str], stdin: str | None = None) -> str:
        """Run ``<entrypoint> <command…>`` in the workflow environment and return its stdout.

        For quick questions to the workflow (``--version``, ``describe``…) without
        a full run. A non-zero exit raises :class:`CommandError` carrying stderr.
        """
        argv = self._command_argv(list(command))
        env = await self._command_env()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self._command_cwd(),
                env=dict(env) if env is not None else None,
            )
        except FileNotFoundError as exc:
            raise CommandError(
                f"cannot start {argv[0]!r}: {exc.strerror}", returncode=127, stderr=str(exc)
            ) from exc
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        stderr = err.decode(errors="replace")
        if proc.returncode != 0:
            code = proc.returncode if proc.returncode is not None else -1
            raise CommandError(
                f"{' '.join(argv)} exited with {code}: {stderr.strip()[-2000:]}",
                returncode=code,
                stderr=stderr,
            )
        return out.decode(errors="replace").strip()
