"""The operator-wide reconciler: one reconciliation per active run, and clean-ups nobody owns.

Exists to hold what runs share (settings, the Kubernetes client, the invoker
factory, the clock, metrics, the local slots) and to route each run to its
invoker's loop after the checks every run passes first: the spec parses, and
the admin's policy admits it. Collaborators are constructor arguments, so unit
tests drive the same reconciler with an in-memory ``Kube``, scripted invokers and
a fake clock. (It was called ``Runtime``; "run" already named too many things.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

from wt_operator.api import RunStatus
from wt_operator.config import OperatorConfig
from wt_operator.core import local
from wt_operator.core.entry import (
    admitted,
    cancelled_before_start,
    invoker_of,
    unowned_local_cleaned,
)
from wt_operator.core.errors import RunGoneError
from wt_operator.core.policy import admit
from wt_operator.core.spec import parse_spec
from wt_operator.core.stopping import Stopping
from wt_operator.metrics import Metrics
from wt_operator.shell.batch_runner import BatchRunner
from wt_operator.shell.clock import Clock, SystemClock
from wt_operator.shell.cloudrun_runner import CloudRunRunner
from wt_operator.shell.context import RunContext
from wt_operator.shell.invokers import InvokerFactory
from wt_operator.shell.kube import Kube
from wt_operator.shell.local_runner import LocalRunner
from wt_operator.shell.refs import RunRef
from wt_operator.shell.stop import StopFlag, StopRequested, StopSignal

__all__ = ["Reconciler", "log_fields"]

log = logging.getLogger(__name__)
run_logger = logging.getLogger("wt_operator.run")
output_logger = logging.getLogger("wt_operator.output")


def log_fields(ref: RunRef) -> dict[str, Any]:
    """Fields every log record about ``ref`` carries (kopf's formatters print them:
    ``[ns/name]`` in text, an ``object`` field in JSON)."""
    return {"k8s_ref": ref.object_reference()}


class Reconciler:
    """Reconciles WorkflowRuns; see the module docstring."""

    def __init__(
        self,
        config: OperatorConfig,
        kube: Kube,
        invokers: InvokerFactory,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.kube = kube
        self.invokers = invokers
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.local = LocalRunner(config, invokers, self.metrics, output_logger)
        self.batch = BatchRunner(config, invokers, self.metrics)
        self.cloud_run = CloudRunRunner(config, invokers, self.metrics)
        self._background: set[asyncio.Task[Any]] = set()
        self._live: set[str] = set()
        """uids of the runs reconciled in this process right now."""

    def spawn(self, aw: Awaitable[Any]) -> None:
        """Fire-and-forget (Events): keep a reference so the task is not collected early."""
        task = asyncio.ensure_future(aw)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=5)

    def _context(
        self, ref: RunRef, spec: Mapping[str, Any], status: Mapping[str, Any], stop: StopSignal
    ) -> RunContext:
        fields = log_fields(ref)
        current: RunStatus = dict(status or {})  # type: ignore[assignment]
        return RunContext(
            ref,
            current,
            invoker=invoker_of(spec),
            stop=stop,
            logger=logging.LoggerAdapter(run_logger, fields),
            kube=self.kube,
            clock=self.clock,
            metrics=self.metrics,
            spawn=self.spawn,
            log_fields=fields,
        )

    async def reconcile(
        self,
        ref: RunRef,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        stop: StopSignal,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """Drive one run until it is terminal, or until it is stopped."""
        ctx = self._context(ref, spec, status, stop)
        self._live.add(ref.uid)
        try:
            await self._reconcile(ctx, spec, annotations or {})
        except RunGoneError:
            ctx.logger.info("the WorkflowRun is gone; nothing left to do")
        except StopRequested as stopped:
            ctx.logger.debug("stopped (%s)", stopped.why.value)
        finally:
            ctx.close()
            self._live.discard(ref.uid)

    async def _reconcile(
        self, ctx: RunContext, spec: Mapping[str, Any], annotations: Mapping[str, str]
    ) -> None:
        cancelled = cancelled_before_start(ctx.stop.why(), ctx.phase)
        if cancelled is not None:
            await ctx.record(cancelled)
            return
        if invoker_of(spec) == "Local" and local.resume(ctx.phase) is local.Resume.LOST:
            await self.local.lost(ctx, spec)
            return
        started = admitted(ctx.phase)
        try:
            req = parse_spec(
                spec,
                uid=ctx.ref.uid,
                results_env_var=self.config.results_env_var,
                allowed_env=self.config.allowed_env,
                admitted=started,
                annotations=annotations,
            )
        except Exception as exc:
            await ctx.fail(exc)
            return
        if not started:
            denied = admit(
                req,
                local_enabled=self.config.local_enabled,
                policy=self.config.batch_policy,
                defaults=self.config.batch_defaults,
                local_results_root=self.config.local_results_root,
                cloud_run=self.config.cloud_run_policy,
                allowed_archive_urls=self.config.allowed_archive_urls,
            )
            if denied is not None:
                await ctx.record(denied.transition())
                return
        if req.invoker == "Local":
            await self.local.run(ctx, req)
        elif req.invoker == "CloudRunJob":
            await self.cloud_run.run(ctx, req)
        else:
            await self.batch.run(ctx, req)

    async def finalize_unowned(
        self, ref: RunRef, spec: Mapping[str, Any], status: Mapping[str, Any]
    ) -> None:
        """Clean up an active run deleted while no reconciler of this process owned it.

        kopf starts no daemon for an object already being deleted, so a run deleted while
        no operator was running would lose its finalizer with nothing cleaned up: its
        Batch job would keep running (and cost money), an orphaned local process would
        live on. Its job is deleted (by the name derived from its uid, in case a create
        was in flight) until Batch confirms, its processes are killed, and it is
        recorded Cancelled before kopf releases the finalizer.
        """
        if ref.uid in self._live:
            return  # its reconciler is being stopped and cleans up itself
        stop = StopFlag()
        stop.set(Stopping.DELETED)
        ctx = self._context(ref, spec, status, stop)
        try:
            invoker_name = invoker_of(spec)
            if invoker_name == "CloudBatch":
                await self.batch.finalize_unowned(ctx, spec)
                return
            if invoker_name == "CloudRunJob":
                await self.cloud_run.finalize_unowned(ctx, spec)
                return
            await ctx.record(unowned_local_cleaned(await self.invokers.kill_stale(ref.uid)))
        except RunGoneError:
            ctx.logger.info("the WorkflowRun is gone; nothing left to do")
        finally:
            ctx.close()
