"""The operator's side of the runner: Local runs started and followed over its unix socket.

Exists so the reconciler drives a run in the runner container exactly as it drives
one in-process (:class:`~wt_operator.shell.invokers.LocalInvoker`: start, wait,
cancel), and so an operator that restarted can pick up a run the runner still
holds (:meth:`RunnerInvokers.attach`) instead of declaring it lost. Everything
about the launch is decided here — argv, the whole environment, the working
directory, the marker — the runner adds nothing.

Failure modes, decided: the runner not answering a request within
``runner_timeout`` is a clear error, never a hang; a connection that drops
mid-run is re-established and the run re-attached (output resumes where it
stopped); a runner that comes back without the run (it restarted) or does not
come back within ``runner_timeout`` ends the run ``InvokerLost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

from wt_invokers import LocalSubprocessInvoker
from wt_invokers.abstract import as_matchspec
from wt_invokers.activation import activation as prefix_activation
from wt_invokers.activation import cached_activation
from wt_invokers.exceptions import (
    InstallationError,
    InvocationTimeoutError,
    InvokerConfigurationError,
)
from wt_invokers.invocation import Invocation, workflow_args
from wt_invokers.local import (
    LITHOPS_CONFIG_ENV_VAR,
    PROCESS_MARKER_ENV_VAR,
    RUN_ID_ENV_VAR,
    LineCallback,
)
from wt_invokers.processes import results_dir_of
from wt_operator.config import OperatorConfig
from wt_operator.core.errors import InvokerLostError
from wt_operator.core.spec import RunRequest
from wt_operator.metrics import Metrics
from wt_operator.runner.protocol import FILE_PLACEHOLDER_PREFIX, Start
from wt_operator.shell.invokers import Invokers, LocalInvoker
from wt_operator.shell.runner_connection import (
    RETRY_SECONDS,
    Connection,
    RunnerUnavailableError,
    request,
)

__all__ = ["RemoteInvoker", "RunnerInvokers"]

log = logging.getLogger(__name__)


class RemoteInvoker:
    """A :class:`~wt_operator.shell.invokers.LocalInvoker` whose process lives in the runner."""

    def __init__(
        self,
        local: LocalSubprocessInvoker,
        *,
        socket_path: Path,
        timeout: float,
        line_callback: LineCallback,
    ) -> None:
        self._local = local  # what the launch is made of: workspace, launcher, prefix
        self.socket_path = socket_path
        self.timeout = timeout
        self.line_callback = line_callback
        self.marker: str | None = None
        self._conn: Connection | None = None
        self._seq = 0
        self._exit: asyncio.Future[int] | None = None
        self._follower: asyncio.Task[None] | None = None

    async def is_installed(self) -> bool:
        return await self._local.is_installed()

    async def launch(self, invocation: Invocation) -> Start:
        """The launch, whole: what the runner is handed and all the workflow gets."""
        local = self._local
        # The environment the operator chose (core.environment.workflow_base_env): never
        # the runner's or the operator's own variables.
        env = dict(local.base_env)
        if local.launcher == "prefix":
            activation = cached_activation(local.prefix)
            if activation is None:
                try:
                    activation = await asyncio.to_thread(prefix_activation, local.prefix)
                except (FileNotFoundError, RuntimeError) as exc:
                    raise InstallationError(
                        f"pixi environment {local.environment!r} is not installed in "
                        f"{local.workdir}: {exc}"
                    ) from exc
            env = activation.apply(env)
            head = [os.fspath(local.executable)]
        else:
            head = [
                os.fspath(local.pixi_executable),
                "run",
                "--frozen",
                "-e",
                local.environment,
                local.package_name,
            ]
        env.update(invocation.extra_env)
        files = {"config": invocation.config_text}
        if invocation.lithops_config_text is not None:
            files["lithops"] = invocation.lithops_config_text
            env[LITHOPS_CONFIG_ENV_VAR] = FILE_PLACEHOLDER_PREFIX + "lithops"
        # Set last: what the run author passed can never replace them.
        env[local.results_env_var] = invocation.results_url
        env[RUN_ID_ENV_VAR] = invocation.workflow_run_id
        env[PROCESS_MARKER_ENV_VAR] = invocation.identity
        results_dir = results_dir_of(invocation.results_url)
        return Start(
            marker=invocation.identity,
            argv=(
                *head,
                *workflow_args(invocation, ["--config-file", FILE_PLACEHOLDER_PREFIX + "config"]),
            ),
            env=env,
            cwd=os.fspath(local.workdir),
            files=files,
            results_dir=None if results_dir is None else os.fspath(results_dir),
            kill_grace_seconds=local.kill_grace_seconds,
        )

    async def start(self, invocation: Invocation) -> None:
        invocation.validate()
        start = await self.launch(invocation)
        self.marker = start.marker
        conn = await Connection.open(self.socket_path, self.timeout)
        try:
            await conn.send("start", **start.fields())
            answer = await conn.receive(self.timeout)
        except BaseException as exc:
            conn.close()
            # It may have started before the answer was lost: never leave it running.
            with contextlib.suppress(Exception):
                await request(self.socket_path, self.timeout, "kill", marker=start.marker)
            if isinstance(exc, TimeoutError):
                raise RunnerUnavailableError(
                    f"the runner did not answer the start within {self.timeout:g} s"
                ) from None
            raise
        if answer is None or answer["type"] != "started":
            conn.close()
            raise RunnerUnavailableError(f"the runner answered the start with {answer!r}")
        log.info("run %s started in the runner: pid %s", start.marker, answer.get("pid"))
        self._follow(conn)

    async def attach(self, marker: str) -> bool:
        """Follow the runner's run ``marker`` from its first line; False if it has none."""
        self.marker = marker
        conn = await self._attach(after=0)
        if conn is None:
            return False
        self._follow(conn)
        return True

    async def _attach(self, after: int) -> Connection | None:
        assert self.marker is not None
        conn = await Connection.open(self.socket_path, self.timeout)
        try:
            await conn.send("attach", marker=self.marker, after=after)
            answer = await conn.receive(self.timeout)
        except (OSError, TimeoutError) as exc:
            conn.close()
            raise RunnerUnavailableError(
                f"the runner did not answer within {self.timeout:g} s ({type(exc).__name__})"
            ) from None
        except BaseException:
            conn.close()
            raise
        if answer is not None and answer["type"] == "attached":
            return conn
        conn.close()
        if answer is not None and answer["type"] == "unknown":
            return None
        raise RunnerUnavailableError(f"the runner answered attach with {answer!r}")

    def _follow(self, conn: Connection) -> None:
        self._conn = conn
        self._exit = asyncio.get_running_loop().create_future()
        self._follower = asyncio.create_task(self._read_until_exit())

    async def _read_until_exit(self) -> None:
        assert self._exit is not None
        try:
            code = await self._read_lines()
        except InvokerLostError as exc:
            self._exit.set_exception(exc)
        except Exception as exc:  # a protocol error: as good as a lost runner
            self._exit.set_exception(InvokerLostError(f"the runner connection failed: {exc}"))
        else:
            self._exit.set_result(code)
        finally:
            if self._conn is not None:
                self._conn.close()

    async def _read_lines(self) -> int:
        while True:
            assert self._conn is not None
            try:
                msg = await self._conn.receive(None)
            except (ConnectionError, OSError):
                msg = None
            if msg is None:  # the connection dropped: the run may well go on
                self._conn.close()
                self._conn = await self._reattach()
                continue
            if msg["type"] == "line":
                self._seq = max(self._seq, int(msg.get("seq", 0)))
                self.line_callback(str(msg.get("stream")), str(msg.get("text")))
            elif msg["type"] == "exited":
                return int(msg["code"])

    async def _reattach(self) -> Connection:
        # A restarting runner may refuse, reset or not answer for a moment: keep asking
        # until ``timeout`` has passed since the connection dropped.
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn = await self._attach(after=self._seq)
                break
            except RunnerUnavailableError as exc:
                if time.monotonic() < deadline:
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                raise InvokerLostError(
                    f"the runner stopped answering while this run was in flight ({exc}); "
                    "its processes may be gone or still running there. "
                    "Create a new WorkflowRun to run it again."
                ) from None
        if conn is None:
            raise InvokerLostError(
                "the runner restarted while this run was in flight; its processes died "
                "with it. Create a new WorkflowRun to run it again."
            )
        log.info("run %s: re-attached to the runner after a dropped connection", self.marker)
        return conn

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        """The run's exit code; on ``timeout`` its tree is killed (InvocationTimeoutError).

        Unlike an in-process run, a cancelled wait leaves the run going: it lives in the
        runner, and an operator that stops hands it over (:meth:`release`); only
        :meth:`cancel` or the deadline kill it.
        """
        if self._exit is None:
            raise InvokerConfigurationError("wait() called but no run was started")
        try:
            return await asyncio.wait_for(asyncio.shield(self._exit), timeout)
        except TimeoutError:
            await self.cancel()
            raise InvocationTimeoutError(
                error_msg
                or f"run {self.marker} did not finish within {timeout} s; "
                "its process tree was killed"
            ) from None

    async def release(self) -> None:
        """Stop following the run and leave it running (an operator handing over)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        if self._conn is not None:
            self._conn.close()

    async def cancel(self) -> int | None:
        """Have the runner kill the run's tree; its exit code (None if none ran or unknown)."""
        exit_, marker = self._exit, self.marker
        if exit_ is None or marker is None:
            return None
        if not exit_.done():
            conn = self._conn
            try:
                if conn is not None and not conn.writer.is_closing():
                    await conn.send("cancel")
                else:
                    await request(self.socket_path, self.timeout, "kill", marker=marker)
            except (ConnectionError, OSError, RunnerUnavailableError) as exc:
                log.warning("run %s: cancel not delivered: %s", marker, exc)
            grace = self._local.kill_grace_seconds
            with contextlib.suppress(TimeoutError, InvokerLostError):
                await asyncio.wait_for(asyncio.shield(exit_), grace + self.timeout)
        if exit_.done() and exit_.exception() is None:
            return exit_.result()
        return None


class _ArchiveRefused:
    """A run from a pixi-pack archive (``spec.environment``): not through the runner yet.

    The archive is unpacked where the operator runs; the runner container cannot see it.
    Refused (``InvalidSpec``) rather than run in the operator container, where the run
    would have the operator's token and uid.
    """

    async def is_installed(self) -> bool:
        return True  # said at start, with the reason

    async def start(self, invocation: Invocation) -> None:
        raise InvokerConfigurationError(
            "spec.environment (a pixi-pack archive) cannot run in the runner container yet; "
            "use the workspace's environments, or an operator with runner.enabled: false "
            "(workflows then run in the operator container, without the runner's isolation)"
        )

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        raise InvokerConfigurationError("nothing was started")

    async def cancel(self) -> int | None:
        return None


class RunnerInvokers(Invokers):
    """:class:`~wt_operator.shell.invokers.Invokers` whose Local runs live in the runner."""

    def __init__(self, config: OperatorConfig, socket_path: Path, *, metrics: Metrics) -> None:
        super().__init__(config, metrics=metrics)
        self.socket_path = socket_path

    def local(self, req: RunRequest, *, line_callback: LineCallback) -> LocalInvoker:
        if req.archive is not None:
            return _ArchiveRefused()
        return self._remote(req.workflow, req.environment, line_callback)

    def _remote(
        self, workflow: str, environment: str, line_callback: LineCallback
    ) -> RemoteInvoker:
        cfg = self.config
        local = LocalSubprocessInvoker(
            as_matchspec(workflow),
            cwd=cfg.workspace,
            environment=environment,
            launcher=cfg.local_launcher,
            results_env_var=cfg.results_env_var,
            kill_grace_seconds=cfg.kill_grace_seconds,
            base_env=self.workflow_env,
        )
        return RemoteInvoker(
            local,
            socket_path=self.socket_path,
            timeout=cfg.runner_timeout,
            line_callback=line_callback,
        )

    async def attach(
        self, marker: str, req: RunRequest, *, line_callback: LineCallback
    ) -> LocalInvoker | None:
        invoker = self._remote(req.workflow, req.environment, line_callback)
        try:
            attached = await invoker.attach(marker)
        except RunnerUnavailableError as exc:
            log.warning("run %s: cannot ask the runner about it: %s", marker, exc)
            return None
        return invoker if attached else None

    async def kill_stale(self, marker: str) -> int:
        answer = await request(self.socket_path, self.config.runner_timeout, "kill", marker=marker)
        return int(answer.get("count", 0))

    async def leftovers(self, marker: str) -> set[int]:
        answer = await request(
            self.socket_path, self.config.runner_timeout, "leftovers", marker=marker
        )
        return {int(pid) for pid in answer.get("pids", ())}
