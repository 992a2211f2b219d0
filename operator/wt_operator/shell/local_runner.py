"""Carrying out a Local run's decisions: prepare, queue, record Running, start, wait, record.

The order is the guarantee (see :mod:`wt_operator.core.local`): ``Running`` is
written before the process starts, so a run is never started twice; whatever the
outcome, every process of the run (found by its process group and by the marker
derived from its uid) is gone before the outcome is recorded, so a finished run
leaves nothing behind and a deleted run keeps its finalizer until that is true.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Mapping
from typing import Any

from wt_invokers import InvocationTimeoutError
from wt_invokers.invocation import Invocation
from wt_invokers.retry import RetryPolicy, retry_call
from wt_operator.api import Phase
from wt_operator.config import OperatorConfig
from wt_operator.core import local
from wt_operator.core.errors import InvokerLostError
from wt_operator.core.invocation import invocation as build_invocation
from wt_operator.core.invocation import trace_id
from wt_operator.core.local import Exited, LocalOutcome, Stopped, TimedOut
from wt_operator.core.masking import Masker
from wt_operator.core.spec import RunRequest, parse_spec
from wt_operator.core.status import log_tail
from wt_operator.core.stopping import Stopping
from wt_operator.metrics import Metrics
from wt_operator.shell.context import RunContext
from wt_operator.shell.invokers import InvokerFactory, LocalInvoker
from wt_operator.shell.refs import LogTarget, log_target
from wt_operator.shell.resolve import resolve
from wt_operator.shell.runlog import RunLog
from wt_operator.shell.runner_client import RemoteInvoker
from wt_operator.shell.runner_connection import RunnerUnavailableError
from wt_operator.shell.stop import StopRequested

__all__ = ["LocalRunner"]


class _Slot:
    """One held local slot, released once (early, or at the latest when the run ends)."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


class LocalRunner:
    """Runs Local WorkflowRuns in this process, at most ``max_concurrent_local_runs`` at once."""

    def __init__(
        self,
        config: OperatorConfig,
        invokers: InvokerFactory,
        metrics: Metrics,
        output_logger: logging.Logger,
    ) -> None:
        self.config = config
        self.invokers = invokers
        self.metrics = metrics
        self.output_logger = output_logger
        self.slots = asyncio.Semaphore(config.max_concurrent_local_runs)
        self.kill_policy = RetryPolicy(
            # Until they are gone: the finalizer holds the deleted run until then, and a
            # process that outlives SIGKILL (uninterruptible I/O) usually goes in seconds.
            max_attempts=None,
            initial_backoff=1.0,
            max_backoff=config.retry_backoff_max,
        )
        # Masking output has threads of its own: a burst of long lines from several runs
        # must not occupy the default executor that DNS lookups and file I/O wait on.
        self.masking = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="wt-mask"
        )

    def _runlog(self, ctx: RunContext, *, target: LogTarget | None = None) -> RunLog:
        return RunLog(
            ctx.ref,
            kube=ctx.kube,
            masker=ctx.masker,
            max_bytes=self.config.log_max_bytes,
            flush_seconds=self.config.log_flush_seconds,
            tail_lines=self.config.log_tail_lines,
            logger=logging.LoggerAdapter(self.output_logger, ctx.log_fields),
            target=target,
            executor=self.masking,
        )

    async def run(self, ctx: RunContext, req: RunRequest) -> None:
        """Drive ``req`` from its current phase to a terminal one (or until stopped)."""
        runlog = self._runlog(ctx)
        invoker = self.invokers.local(req, line_callback=runlog.line)
        try:
            installed = await invoker.is_installed()
        except Exception as exc:
            await ctx.fail(exc)
            return
        if not installed:  # said at once, not after a wait in the queue
            await ctx.record(local.not_installed(req, self.invokers.workspace))
            return
        if not await self._take_slot(ctx, req):
            return
        slot = _Slot(self.slots)
        try:
            # References are read when the run starts, not when it was queued: a Secret
            # rotated meanwhile is read fresh.
            invocation = await self._prepare(ctx, req)
            if invocation is not None:
                runlog.masker = ctx.masker
                await self._execute(ctx, req, invoker, invocation, runlog, slot)
        finally:
            slot.release()

    async def lost(self, ctx: RunContext, spec: Mapping[str, Any]) -> None:
        """A run found ``Running``: started by an operator process that is gone.

        If the runner still holds it, it is followed to its end (never started again);
        otherwise its processes are killed and it fails ``InvokerLost``.
        """
        uid = ctx.ref.uid
        if self.config.runner_socket is None:  # in-process: it died with its operator
            await ctx.record(local.lost(await self.invokers.kill_stale(uid)))
            return
        try:
            # Its Secrets are read again first: output replayed on attach is masked too.
            # admitted: it runs already, a rule added since must not end it InvalidSpec.
            req = parse_spec(spec, uid=uid, results_env_var=None, admitted=True)
            resolved = await resolve(
                ctx.kube, ctx.ref.namespace, req, budget=self.config.secret_budget()
            )
        except Exception as exc:
            killed = await self.invokers.kill_stale(uid)
            await ctx.record(local.lost_spec_unreadable(killed, exc))
            return
        ctx.masker = await asyncio.to_thread(Masker, resolved.secrets)
        # The log the previous operator wrote (status.log) is written on, not replaced.
        runlog = self._runlog(ctx, target=log_target(ctx.status.get("log")))
        invoker = await self.invokers.attach(uid, req, line_callback=runlog.line)
        if invoker is None:
            try:
                killed = await self.invokers.kill_stale(uid)
            except RunnerUnavailableError as exc:  # no runner to ask: say so, never hang
                await ctx.record(local.lost_runner_unreachable(exc))
                return
            await ctx.record(local.lost(killed))
            return
        ctx.logger.info("picked up after an operator restart; following it to its end")
        # It runs already: it takes a free slot, but never waits for one.
        slot = _Slot(self.slots) if not self.slots.locked() else None
        if slot is not None:
            await self.slots.acquire()
        try:
            await self._execute(ctx, req, invoker, None, runlog, slot)
        finally:
            if slot is not None:
                slot.release()

    async def _prepare(self, ctx: RunContext, req: RunRequest) -> Invocation | None:
        """The run's Invocation, or None once a terminal outcome is recorded."""
        try:
            resolved = await resolve(
                ctx.kube, ctx.ref.namespace, req, budget=self.config.secret_budget()
            )
        except Exception as exc:
            await ctx.fail(exc)
            return None
        # Off the event loop: a large Secret takes a noticeable part of a second.
        ctx.masker = await asyncio.to_thread(Masker, resolved.secrets)
        return build_invocation(
            req, uid=ctx.ref.uid, config_text=resolved.config_text, env=resolved.env
        )

    async def _take_slot(self, ctx: RunContext, req: RunRequest) -> bool:
        """Wait for a free slot (recording Queued if none is free); False once ended."""
        if not self.slots.locked():
            # Taken at once, with no await between the look and the take: runs arriving in
            # the same loop turn cannot all see this slot free and then wait unrecorded.
            await self.slots.acquire()
            return True
        if ctx.phase != Phase.QUEUED:
            await ctx.record(local.queued(self.config.max_concurrent_local_runs))
        self.metrics.queued.inc()
        try:
            remaining = ctx.remaining(req.active_deadline_seconds)
            await ctx.until_stopped(self.slots.acquire(), timeout=remaining)
        except TimeoutError:
            await ctx.record(local.deadline_while_queued(req))
            return False
        except StopRequested as stop:
            ended = local.stopped_while_queued(stop.why)
            if ended is not None:
                await ctx.record(ended)
            raise
        finally:
            self.metrics.queued.dec()
        why = ctx.stop.why()
        if why is not None:  # stopped just as the slot came free
            self.slots.release()
            raise StopRequested(why)
        return True

    async def _execute(
        self,
        ctx: RunContext,
        req: RunRequest,
        invoker: LocalInvoker,
        invocation: Invocation | None,
        runlog: RunLog,
        slot: _Slot | None,
    ) -> None:
        """Start (``invocation``) or, with None, only follow an attached run, and record it."""
        if invocation is not None:
            # Running is written *before* the process starts: see core.local.
            await ctx.record(local.running(req, trace_id=trace_id(ctx.ref.uid)))
        self.metrics.active.labels("Local").inc()
        runlog.start()
        result: LocalOutcome
        try:
            try:
                result = await self._start_and_wait(ctx, req, invoker, invocation)
            finally:
                self.metrics.active.labels("Local").dec()
            if isinstance(result, Stopped) and result.why.cancels:
                await self._until_gone(ctx)
            # Nothing of the run is left: the next queued run may start while this one's
            # outcome is written (a queue hand-off no longer waits for two API writes).
            if slot is not None:
                slot.release()
        finally:
            await runlog.close()
        tail = log_tail(runlog.tail(), max_lines=self.config.log_tail_lines)
        await ctx.record(local.outcome(result, req, tail=tail))

    async def _start_and_wait(
        self,
        ctx: RunContext,
        req: RunRequest,
        invoker: LocalInvoker,
        invocation: Invocation | None,
    ) -> LocalOutcome:
        try:
            if invocation is not None:
                await invoker.start(invocation)
        except Exception as exc:
            return local.failed(exc)
        try:
            code = await ctx.until_stopped(
                invoker.wait(timeout=ctx.remaining(req.active_deadline_seconds))
            )
        except InvocationTimeoutError:
            return TimedOut()
        except InvokerLostError as exc:  # the runner restarted or stopped answering
            return local.failed(exc)
        except StopRequested as stop:
            if stop.why is Stopping.OPERATOR and isinstance(invoker, RemoteInvoker):
                # The run lives on in the runner: the next operator picks it up by marker.
                await invoker.release()
                raise
            await invoker.cancel()  # the cancelled wait killed the tree; this makes sure
            return Stopped(stop.why)
        return Exited(code)

    async def _until_gone(self, ctx: RunContext) -> None:
        """Keep killing until no process of the run is left (the finalizer waits for this)."""
        uid = ctx.ref.uid
        recorded = False

        async def kill_all() -> None:
            left = await self.invokers.leftovers(uid)
            if left:
                await self.invokers.kill_stale(uid)
                raise _Survivors(left)

        async def say_once(exc: BaseException, code: str, pause: float) -> None:
            nonlocal recorded
            if not recorded and isinstance(exc, _Survivors):
                recorded = True
                await ctx.record(local.survivors(exc.pids))

        await retry_call(
            f"killing what is left of {ctx.ref}",
            kill_all,
            policy=self.kill_policy,
            transient=lambda exc: "SURVIVED" if isinstance(exc, _Survivors) else None,
            give_up=lambda exc, code, attempts: exc,  # unreachable: no attempt limit
            on_failure=say_once,
            sleep=ctx.clock.sleep,
        )


class _Survivors(Exception):
    """Processes of the run outlived a kill (retried until they are gone)."""

    def __init__(self, pids: set[int]) -> None:
        super().__init__(f"process(es) {sorted(pids)} survived SIGKILL")
        self.pids = pids
