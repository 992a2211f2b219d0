"""Carrying out a CloudRunJob run's decisions: trigger (or adopt), track, cancel.

See :mod:`wt_operator.core.cloudrun` for the guarantees and
:mod:`wt_operator.shell.remote_runner` for the loop. The execution is found again
by the run's uid (the library's correlation), so it can always be found — after a
crash, and when the run is deleted while no operator ran.
"""

from __future__ import annotations

from wt_invokers import InvokerConfigurationError, PermanentSubmissionError
from wt_invokers.cloud_run_jobs import ExecutionInfo, JobTarget, SandboxArgs
from wt_operator.api import CloudRunStatus
from wt_operator.core import cloudrun
from wt_operator.core.cloudrun import Track
from wt_operator.core.errors import Terminal
from wt_operator.core.invocation import invocation as build_invocation
from wt_operator.core.invocation import trace_id
from wt_operator.core.masking import Masker
from wt_operator.core.policy import cloud_run_target
from wt_operator.core.spec import RunRequest
from wt_operator.core.status import Transition
from wt_operator.shell.context import RunContext
from wt_operator.shell.invokers import CloudRunInvoker
from wt_operator.shell.remote_runner import ONCE, RemoteRunner, StillStopping
from wt_operator.shell.resolve import resolve
from wt_operator.shell.stop import StopRequested

__all__ = ["CloudRunRunner"]


class CloudRunRunner(RemoteRunner[CloudRunInvoker, JobTarget, ExecutionInfo]):
    """Triggers CloudRunJob WorkflowRuns and follows their executions to the end."""

    kind = cloudrun.KIND
    status_key = "cloudRun"
    label = "CloudRunJob"

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

    def open(self, ctx: RunContext, req: RunRequest) -> tuple[CloudRunInvoker, JobTarget]:
        return self.invokers.cloud_run(req), self.target(req)

    def recorded(self, ctx: RunContext) -> CloudRunStatus | None:
        plan = cloudrun.resume(ctx.status.get("cloudRun"))
        return plan.execution if isinstance(plan, Track) else None

    async def start(
        self, ctx: RunContext, req: RunRequest, invoker: CloudRunInvoker, where: JobTarget
    ) -> CloudRunStatus | None:
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
            info = await ctx.until_stopped(invoker.trigger(the_invocation, where, sandbox))
        except StopRequested:
            raise
        except Exception as exc:
            verdict = cloudrun.trigger_failed(exc, where.name)
            if not isinstance(verdict, Terminal):
                raise
            await ctx.record(verdict.transition(cloud_run=cloudrun.execution_status(where.name)))
            return None
        status = cloudrun.execution_status(where.name, info)
        await ctx.record(cloudrun.triggered(status, req, trace_id=trace_id(ctx.ref.uid)))
        ended = cloudrun.adopted_ended(status, info)  # an adopted execution that had ended
        if ended is not None:
            await ctx.record(ended)
            return None
        return status

    async def poll(self, invoker: CloudRunInvoker, job: CloudRunStatus) -> ExecutionInfo:
        return await invoker.get_execution(job.get("executionName"))

    def observe(self, job: CloudRunStatus, info: ExecutionInfo) -> Transition | None:
        return cloudrun.observe(job, info)

    async def cancel(self, invoker: CloudRunInvoker, job: CloudRunStatus) -> None:
        await invoker.cancel_execution(job.get("executionName"))

    async def stop(self, ctx: RunContext, invoker: CloudRunInvoker, where: JobTarget) -> None:
        """Stop the run's execution until Cloud Run shows it stopped, then record Cancelled.

        The execution is the recorded one, else the one carrying the run's uid (a trigger
        may have started it unseen). A failure is recorded (Reason Cancelling) and retried
        with backoff: the run, and its finalizer, stay until the execution has stopped.
        """
        status: CloudRunStatus | None = ctx.status.get("cloudRun") or None
        requested = False

        async def attempt() -> tuple[str | None, bool]:
            """The execution's final state (None: Cloud Run knows none), and whether the Job
            itself is missing."""
            nonlocal status, requested
            try:
                name = (status or {}).get("executionName")
                if not name:
                    found = await invoker.find_execution(where, ctx.ref.uid, retry=ONCE)
                    if found is None:
                        return None, False
                    status = cloudrun.execution_status(where.name, found)
                    name = found.name
                if not requested:
                    await invoker.cancel_execution(name, retry=ONCE)
                    requested = True
                info = await invoker.get_execution(name, retry=ONCE)
            except PermanentSubmissionError as exc:
                if exc.code != "NOT_FOUND":
                    raise
                # the execution, or the whole job, is gone
                return None, not (status and status.get("executionName"))
            if not info.is_terminal:
                raise StillStopping(name)
            return info.state, False

        ended, job_missing = await self.keep_trying(
            ctx, "stop Cloud Run execution", attempt, lambda: status
        )
        why = ctx.stop.why()
        verb = why.verb if why else "deleted"
        await ctx.record(cloudrun.stopped(status, ended=ended, job_missing=job_missing, verb=verb))
