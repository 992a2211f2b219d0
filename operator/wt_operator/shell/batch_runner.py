"""Carrying out a CloudBatch run's decisions: submit (or adopt), track, cancel, delete.

See :mod:`wt_operator.core.batch` for the guarantees. The job is named after the
run's uid (with its name as a readable prefix), so this loop can always find it
again — after a crash, and when the run is deleted while no operator ran.
"""

from __future__ import annotations

import asyncio
import dataclasses

from wt_operator.api import CloudBatchStatus
from wt_operator.config import OperatorConfig
from wt_operator.core import batch
from wt_operator.core.batch import Submit
from wt_operator.core.errors import Terminal, classify
from wt_operator.core.invocation import invocation as build_invocation
from wt_operator.core.invocation import trace_id
from wt_operator.core.masking import Masker
from wt_operator.core.spec import RunRequest
from wt_operator.metrics import Metrics
from wt_operator.shell.context import RunContext
from wt_operator.shell.invokers import BatchInvoker, InvokerFactory
from wt_operator.shell.resolve import resolve
from wt_operator.shell.stop import StopRequested

__all__ = ["BatchRunner"]


class BatchRunner:
    """Submits CloudBatch WorkflowRuns and follows their jobs to the end."""

    def __init__(self, config: OperatorConfig, invokers: InvokerFactory, metrics: Metrics) -> None:
        self.config = config
        self.invokers = invokers
        self.metrics = metrics

    def job_name(self, ctx: RunContext, invoker: BatchInvoker) -> str:
        """The job's name: recorded in the status, else derived from the run's uid."""
        recorded = (ctx.status.get("cloudBatch") or {}).get("jobName")
        return recorded or invoker.job_name_for(ctx.ref.uid, readable=ctx.ref.name)

    async def run(self, ctx: RunContext, req: RunRequest) -> None:
        """Drive ``req`` from its current phase to a terminal one (or until stopped)."""
        try:
            invoker = self.invokers.batch(req)
            name = self.job_name(ctx, invoker)
        except Exception as exc:  # e.g. no GCP project configured
            await ctx.fail(exc)
            return
        try:
            plan = batch.resume(ctx.status.get("cloudBatch"))
            if isinstance(plan, Submit):
                job = await self._submit(ctx, req, invoker, name)
                if job is None:
                    return
                await self._track(ctx, req, invoker, job, poll_now=False)
            else:
                await self._track(ctx, req, invoker, plan.job, poll_now=True)
        except StopRequested as stop:
            if stop.why.cancels:
                # A create may have been stored although we never saw its reply: delete
                # by name whatever the status says.
                await self.delete(ctx, invoker, name)
            raise

    async def _submit(
        self, ctx: RunContext, req: RunRequest, invoker: BatchInvoker, name: str
    ) -> CloudBatchStatus | None:
        """Submit or adopt the job and record Submitted; None once an outcome is recorded."""
        if req.batch is None:  # parse_spec guarantees it for CloudBatch; narrows the type
            raise AssertionError("a CloudBatch request without cloudBatch options")
        try:
            resolved = await resolve(
                ctx.kube, ctx.ref.namespace, req, budget=self.config.secret_budget()
            )
            # Off the event loop: a large Secret takes a noticeable part of a second.
            ctx.masker = await asyncio.to_thread(Masker, resolved.secrets)
            options = dataclasses.replace(
                req.batch.options, timeout=ctx.remaining(req.active_deadline_seconds)
            )
            info = await ctx.until_stopped(
                invoker.submit(
                    build_invocation(
                        req, uid=ctx.ref.uid, config_text=resolved.config_text, env=resolved.env
                    ),
                    options,
                    job_id=name.rsplit("/", 1)[-1],
                    secret_env=resolved.gcp_secrets,
                )
            )
        except StopRequested:
            raise
        except Exception as exc:
            await ctx.fail(exc)
            return None
        job = batch.job_status(info.name or name, uid=info.uid, state=info.state or "QUEUED")
        await ctx.record(batch.submitted(job, req, trace_id=trace_id(ctx.ref.uid)))
        if info.is_terminal:  # an adopted job that already ended
            ended = batch.observe({**job, "state": ""}, info)
            if ended is not None:
                await ctx.record(ended)
            return None
        return job

    async def _track(
        self,
        ctx: RunContext,
        req: RunRequest,
        invoker: BatchInvoker,
        job: CloudBatchStatus,
        *,
        poll_now: bool,
    ) -> None:
        name = job.get("jobName", "")
        self.metrics.active.labels("CloudBatch").inc()
        try:
            if not poll_now:
                # A job just created is QUEUED: polling it at once costs a call and, under
                # load, a second status write for nothing.
                await ctx.sleep(self._poll_wait(ctx, req))
            while True:
                left = ctx.remaining(req.active_deadline_seconds)
                if left is not None and left <= 0:
                    await self._cancel_for_deadline(ctx, req, invoker, job)
                    return
                try:
                    info = await ctx.until_stopped(invoker.get_job(name))
                except StopRequested:
                    raise
                except Exception as exc:
                    verdict = classify(exc)
                    if not isinstance(verdict, Terminal):
                        raise
                    gone: CloudBatchStatus = {**job, "state": "NOT_FOUND"}
                    await ctx.record(verdict.transition(cloud_batch=gone))
                    return
                moved = batch.observe(job, info)
                if moved is not None:
                    await ctx.record(moved)
                    job = moved.cloud_batch or job
                    if moved.terminal:
                        return
                await ctx.sleep(self._poll_wait(ctx, req))
        finally:
            self.metrics.active.labels("CloudBatch").dec()

    def _poll_wait(self, ctx: RunContext, req: RunRequest) -> float:
        left = ctx.remaining(req.active_deadline_seconds)
        return batch.next_poll(self.config.batch_poll_interval, left)

    async def _cancel_for_deadline(
        self, ctx: RunContext, req: RunRequest, invoker: BatchInvoker, job: CloudBatchStatus
    ) -> None:
        t = batch.deadline_exceeded(job, req)
        try:
            await ctx.until_stopped(invoker.cancel_job(job.get("jobName")))
        except StopRequested:
            raise
        except Exception as exc:
            # Batch also enforces the deadline itself (max_run_duration), except in its queue.
            t = dataclasses.replace(
                t, message=t.message.replace("was cancelled", f"could not be cancelled ({exc})")
            )
        await ctx.record(t)

    async def delete(self, ctx: RunContext, invoker: BatchInvoker, name: str) -> None:
        """Delete the job until Batch confirms (NOT_FOUND counts), then record Cancelled.

        A failed delete is recorded (Reason Cancelling, a Warning Event per distinct
        error) and retried with backoff: the run, and its finalizer, stay until it works.
        """
        job = ctx.status.get("cloudBatch") or None
        delay = 1.0
        last_error = ""
        while True:
            try:
                await invoker.delete_job(name)
                break
            except Exception as exc:
                error = ctx.masker.mask(str(exc))
                if error != last_error:
                    last_error = error
                    await ctx.record(batch.cancelling(ctx.phase, job, error, delay))
                await ctx.clock.sleep(delay)
                delay = min(delay * 2, self.config.retry_backoff_max)
        recorded = job if job else batch.job_status(name, state="")
        how = (
            "the Batch job was deleted"
            if job
            else "no job was recorded; any job under its name was deleted"
        )
        why = ctx.stop.why()
        await ctx.record(batch.cancelled(recorded, how, verb=why.verb if why else "deleted"))
