"""Carrying out a CloudBatch run's decisions: submit (or adopt), track, cancel, delete.

See :mod:`wt_operator.core.batch` for the guarantees and
:mod:`wt_operator.shell.remote_runner` for the loop. The job is named after the
run's uid (with its name as a readable prefix), so it can always be found
again — after a crash, and when the run is deleted while no operator ran.
"""

from __future__ import annotations

import asyncio
import dataclasses

from wt_invokers.cloud_batch import BatchJobInfo
from wt_operator.api import CloudBatchStatus
from wt_operator.core import batch
from wt_operator.core.batch import Track
from wt_operator.core.invocation import invocation as build_invocation
from wt_operator.core.invocation import trace_id
from wt_operator.core.masking import Masker
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition
from wt_operator.shell.context import RunContext
from wt_operator.shell.invokers import BatchInvoker
from wt_operator.shell.remote_runner import ONCE, RemoteRunner
from wt_operator.shell.resolve import resolve
from wt_operator.shell.stop import StopRequested

__all__ = ["BatchRunner"]


class BatchRunner(RemoteRunner[BatchInvoker, str, BatchJobInfo]):
    """Submits CloudBatch WorkflowRuns and follows their jobs to the end."""

    kind = batch.KIND
    status_key = "cloudBatch"
    label = "CloudBatch"

    def job_name(self, ctx: RunContext, invoker: BatchInvoker) -> str:
        """The job's name: recorded in the status, else derived from the run's uid."""
        recorded = (ctx.status.get("cloudBatch") or {}).get("jobName")
        return recorded or invoker.job_name_for(ctx.ref.uid, readable=ctx.ref.name)

    def open(self, ctx: RunContext, req: RunRequest) -> tuple[BatchInvoker, str]:
        invoker = self.invokers.batch(req)
        return invoker, self.job_name(ctx, invoker)

    def recorded(self, ctx: RunContext) -> CloudBatchStatus | None:
        plan = batch.resume(ctx.status.get("cloudBatch"))
        return plan.job if isinstance(plan, Track) else None

    async def start(
        self, ctx: RunContext, req: RunRequest, invoker: BatchInvoker, where: str
    ) -> CloudBatchStatus | None:
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
                    job_id=batch.job_id(where),
                    secret_env=resolved.gcp_secrets,
                )
            )
        except StopRequested:
            raise
        except Exception as exc:
            await ctx.fail(exc)
            return None
        job = batch.job_status(info.name or where, uid=info.uid, state=info.state or "QUEUED")
        await ctx.record(batch.submitted(job, req, trace_id=trace_id(ctx.ref.uid)))
        ended = batch.adopted_ended(job, info)  # an adopted job that had already ended
        if ended is not None:
            await ctx.record(ended)
            return None
        return job

    async def poll(self, invoker: BatchInvoker, job: CloudBatchStatus) -> BatchJobInfo:
        return await invoker.get_job(job.get("jobName", ""))

    def observe(self, job: CloudBatchStatus, info: BatchJobInfo) -> Transition | None:
        return batch.observe(job, info)

    async def cancel(self, invoker: BatchInvoker, job: CloudBatchStatus) -> None:
        await invoker.cancel_job(job.get("jobName"))

    async def stop(self, ctx: RunContext, invoker: BatchInvoker, where: str) -> None:
        """Delete the job until Batch confirms (NOT_FOUND counts), then record Cancelled.

        A failed delete is recorded (Reason Cancelling, a Warning Event per distinct
        error) and retried with backoff: the run, and its finalizer, stay until it works.
        """
        job: CloudBatchStatus | None = ctx.status.get("cloudBatch") or None
        await self.keep_trying(
            ctx, "delete Batch job", lambda: invoker.delete_job(where, retry=ONCE), lambda: job
        )
        why = ctx.stop.why()
        await ctx.record(batch.deleted(job, where, verb=why.verb if why else "deleted"))
