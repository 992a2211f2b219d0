"""Carrying out a CloudRunJob run's decisions: trigger (or adopt), track, cancel.

See :mod:`wt_operator.core.cloudrun` for the guarantees. The execution is found
again by the run's uid (the library's correlation), so this loop can always find
it — after a crash, and when the run is deleted while no operator ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wt_invokers import InvokerConfigurationError, PermanentSubmissionError
from wt_invokers.cloud_run_jobs import JobTarget, SandboxArgs
from wt_operator.api import CloudRunStatus
from wt_operator.config import OperatorConfig
from wt_operator.core import cloudrun
from wt_operator.core.cloudrun import Trigger
from wt_operator.core.errors import Terminal
from wt_operator.core.invocation import invocation as build_invocation
from wt_operator.core.invocation import trace_id
from wt_operator.core.masking import Masker
from wt_operator.core.policy import cloud_run_target
from wt_operator.core.spec import RunRequest, parse_spec
from wt_operator.core.status import Transition
from wt_operator.metrics import Metrics
from wt_operator.shell.context import RunContext
from wt_operator.shell.invokers import CloudRunInvoker, InvokerFactory
from wt_operator.shell.resolve import resolve
from wt_operator.shell.stop import StopRequested

__all__ = ["CloudRunRunner"]

_INVOKER = "CloudRunJob"


class CloudRunRunner:
    """Triggers CloudRunJob WorkflowRuns and follows their executions to the end."""

    def __init__(self, config: OperatorConfig, invokers: InvokerFactory, metrics: Metrics) -> None:
        self.config = config
        self.invokers = invokers
        self.metrics = metrics

    def target(self, req: RunRequest) -> JobTarget:
        """The run's job, the operator's GCP defaults applied."""
        project, region = cloud_run_target(req, self.config.batch_defaults)
        if req.cloud_run is None:  # parse_spec guarantees it for CloudRunJob
            raise AssertionError("a CloudRunJob request without cloudRun options")
        if project is None:
            raise InvokerConfigurationError(
                "no GCP project: set spec.cloudRun.project or the operator's GOOGLE_CLOUD_PROJECT"
            )
        return JobTarget(job_name=req.cloud_run.job_name, project_id=project, region=region)

    async def run(self, ctx: RunContext, req: RunRequest) -> None:
        """Drive ``req`` from its current phase to a terminal one (or until stopped)."""
        try:
            invoker = self.invokers.cloud_run(req)
            target = self.target(req)
        except Exception as exc:
            await ctx.fail(exc)
            return
        try:
            plan = cloudrun.resume(ctx.status.get("cloudRun"))
            if isinstance(plan, Trigger):
                status = await self._trigger(ctx, req, invoker, target)
                if status is None:
                    return
                await self._track(ctx, req, invoker, status, poll_now=False)
            else:
                await self._track(ctx, req, invoker, plan.execution, poll_now=True)
        except StopRequested as stop:
            if stop.why.cancels:  # deleted, or cancelled in place (spec.cancel)
                await self.cancel(ctx, invoker, target)
            raise

    async def _trigger(
        self, ctx: RunContext, req: RunRequest, invoker: CloudRunInvoker, target: JobTarget
    ) -> CloudRunStatus | None:
        """Trigger or adopt the execution and record Submitted; None once an outcome is recorded."""
        cr = req.cloud_run
        if cr is None:
            raise AssertionError("a CloudRunJob request without cloudRun options")
        try:
            resolved = await resolve(ctx.kube, ctx.ref.namespace, req)
            ctx.masker = Masker(resolved.secrets)
            sandbox = SandboxArgs(
                environment_tar_url=cr.environment_archive_url,
                environment_tar_digest=cr.environment_archive_digest,
                results_upload_url=cr.results_upload_url,
                skip_results_archive_upload=cr.skip_results_archive_upload,
                timeout=ctx.remaining(req.active_deadline_seconds),
            )
            the_invocation = build_invocation(
                req, uid=ctx.ref.uid, config_text=resolved.config_text, env=resolved.env
            )
            info = await ctx.until_stopped(invoker.trigger(the_invocation, target, sandbox))
        except StopRequested:
            raise
        except Exception as exc:
            verdict = cloudrun.trigger_failed(exc, target.name)
            if not isinstance(verdict, Terminal):
                raise
            await ctx.record(verdict.transition(cloud_run=cloudrun.execution_status(target.name)))
            return None
        status = cloudrun.execution_status(target.name, info)
        await ctx.record(cloudrun.triggered(status, req, trace_id=trace_id(ctx.ref.uid)))
        if info.is_terminal:  # an adopted execution that already ended
            ended = cloudrun.observe({**status, "state": ""}, info)
            if ended is not None:
                await ctx.record(ended)
            return None
        return status

    async def _track(
        self,
        ctx: RunContext,
        req: RunRequest,
        invoker: CloudRunInvoker,
        status: CloudRunStatus,
        *,
        poll_now: bool,
    ) -> None:
        self.metrics.active.labels(_INVOKER).inc()
        try:
            if not poll_now:
                await ctx.sleep(self._poll_wait(ctx, req))
            while True:
                left = ctx.remaining(req.active_deadline_seconds)
                if left is not None and left <= 0:
                    await self._cancel_for_deadline(ctx, req, invoker, status)
                    return
                try:
                    info = await ctx.until_stopped(
                        invoker.get_execution(status.get("executionName"))
                    )
                except StopRequested:
                    raise
                except PermanentSubmissionError as exc:
                    if exc.code != "NOT_FOUND":
                        raise
                    await ctx.record(cloudrun.gone(status, exc))
                    return
                moved = cloudrun.observe(status, info)
                if moved is not None:
                    await ctx.record(moved)
                    status = moved.cloud_run or status
                    if moved.terminal:
                        return
                await ctx.sleep(self._poll_wait(ctx, req))
        finally:
            self.metrics.active.labels(_INVOKER).dec()

    def _poll_wait(self, ctx: RunContext, req: RunRequest) -> float:
        left = ctx.remaining(req.active_deadline_seconds)
        interval = self.config.batch_poll_interval
        return interval if left is None else min(interval, left)

    async def _cancel_for_deadline(
        self, ctx: RunContext, req: RunRequest, invoker: CloudRunInvoker, status: CloudRunStatus
    ) -> None:
        t = cloudrun.deadline_exceeded(status, req)
        try:
            await ctx.until_stopped(invoker.cancel_execution(status.get("executionName")))
        except StopRequested:
            raise
        except Exception as exc:
            # Cloud Run also enforces the deadline itself (the timeout override).
            t = Transition(
                t.phase,
                t.reason,
                t.message.replace("was cancelled", f"could not be cancelled ({exc})"),
                cloud_run=status,
            )
        await ctx.record(t)

    async def cancel(self, ctx: RunContext, invoker: CloudRunInvoker, target: JobTarget) -> None:
        """Stop the run's execution until Cloud Run shows it stopped, then record Cancelled.

        The execution is the recorded one, else the one carrying the run's uid (a trigger
        may have started it unseen). A failure is recorded (Reason Cancelling) and retried
        with backoff: the run, and its finalizer, stay until the execution has stopped.
        """
        status: CloudRunStatus | None = ctx.status.get("cloudRun") or None
        delay = 1.0
        last_error = ""
        requested = False
        while True:
            try:
                name = (status or {}).get("executionName")
                if not name:
                    found = await invoker.find_execution(target, ctx.ref.uid)
                    if found is None:
                        how = "no execution of it was started"
                        break
                    status = cloudrun.execution_status(target.name, found)
                    name = found.name
                if not requested:
                    await invoker.cancel_execution(name)
                    requested = True
                info = await invoker.get_execution(name)
                if info.is_terminal:
                    how = f"its Cloud Run execution is {info.state.lower()}"
                    break
                error = ""  # cancelling takes a while on Cloud Run: nothing went wrong
            except PermanentSubmissionError as exc:
                if exc.code == "NOT_FOUND":  # the execution, or the whole job, is gone
                    how = (
                        "its Cloud Run execution is gone"
                        if status and status.get("executionName")
                        else "its Cloud Run Job does not exist; nothing was started"
                    )
                    break
                error = ctx.masker.mask(str(exc))
            except Exception as exc:
                error = ctx.masker.mask(str(exc))
            if error and error != last_error:
                last_error = error
                await ctx.record(cloudrun.cancelling(ctx.phase, status, error, delay))
            await ctx.clock.sleep(delay)
            delay = min(delay * 2, self.config.retry_backoff_max)
        why = ctx.stop.why()
        await ctx.record(cloudrun.cancelled(status, how, verb=why.verb if why else "deleted"))

    async def finalize_unowned(self, ctx: RunContext, spec: Mapping[str, Any]) -> None:
        """A CloudRunJob run deleted while no reconciler owned it: stop its execution."""
        try:
            req = parse_spec(spec, uid=ctx.ref.uid)
            invoker = self.invokers.cloud_run(req)
            target = self.target(req)
        except Exception as exc:  # an invalid spec: nothing can have been triggered
            await ctx.record(
                cloudrun.cancelled(
                    None, f"no operator was reconciling it; nothing was triggered ({exc})"
                )
            )
            return
        await self.cancel(ctx, invoker, target)
