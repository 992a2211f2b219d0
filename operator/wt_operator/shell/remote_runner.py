"""The one loop of the remote invokers: start or adopt a job, track it, stop it.

:class:`RemoteRunner` carries out :mod:`wt_operator.core.remote`'s decisions for
any service that runs a run's workflow as a remote job (a Batch job, a Cloud Run
execution); a subclass says only how to talk to its service and which core
decisions are its own (``kind``, ``resume``, ``observe``, …). Stopping a job
the service refuses to stop is retried by the project's one retry loop, with no
limit (the run and its finalizer stay until it works) and one ``Cancelling``
record per distinct error.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from wt_invokers.retry import RetryPolicy, retry_call
from wt_operator.config import OperatorConfig
from wt_operator.core import remote
from wt_operator.core.spec import RunRequest, parse_spec
from wt_operator.core.status import Transition
from wt_operator.metrics import Metrics
from wt_operator.shell.context import RunContext
from wt_operator.shell.invokers import InvokerFactory
from wt_operator.shell.stop import StopRequested

__all__ = ["ONCE", "RemoteRunner", "StillStopping"]

ONCE = RetryPolicy(max_attempts=1)
"""The client's policy for the calls inside :meth:`RemoteRunner.keep_trying`: that loop is
the only retry (never one retry inside another), and it tells the run each failure."""

Inv = TypeVar("Inv")
"""The invoker talking to the service."""
Where = TypeVar("Where")
"""Where the run's job is found: its name (Batch), the Cloud Run Job (Cloud Run)."""
Info = TypeVar("Info")
"""What a poll of the job reads."""
T = TypeVar("T")


class StillStopping(Exception):
    """The service accepted the stop but the job has not stopped yet: wait, say nothing."""


class RemoteRunner(abc.ABC, Generic[Inv, Where, Info]):
    """Drives a remote run from its current phase to a terminal one (or until stopped)."""

    kind: remote.Kind
    status_key: str
    """The ``status`` field recording the job: ``cloudBatch``, ``cloudRun``."""
    label: str
    """The run's invoker, as metrics label it."""

    def __init__(self, config: OperatorConfig, invokers: InvokerFactory, metrics: Metrics) -> None:
        self.config = config
        self.invokers = invokers
        self.metrics = metrics

    # What each service does its own way.

    @abc.abstractmethod
    def open(self, ctx: RunContext, req: RunRequest) -> tuple[Inv, Where]:
        """The invoker and where the run's job is (raises on a configuration error)."""

    @abc.abstractmethod
    def recorded(self, ctx: RunContext) -> Any:
        """The job the status records, when one was started (an earlier operator's)."""

    @abc.abstractmethod
    async def start(
        self, ctx: RunContext, req: RunRequest, invoker: Inv, where: Where
    ) -> Any | None:
        """Start or adopt the job and record Submitted; None once an outcome is recorded."""

    @abc.abstractmethod
    async def poll(self, invoker: Inv, job: Any) -> Info:
        """Read the job's state."""

    @abc.abstractmethod
    def observe(self, job: Any, info: Info) -> Transition | None:
        """Core's reading of a poll."""

    @abc.abstractmethod
    async def cancel(self, invoker: Inv, job: Any) -> None:
        """Ask the service to cancel the job (the deadline passed)."""

    @abc.abstractmethod
    async def stop(self, ctx: RunContext, invoker: Inv, where: Where) -> None:
        """Stop the run's job until the service confirms, then record Cancelled."""

    # The loop they share.

    async def run(self, ctx: RunContext, req: RunRequest) -> None:
        """Drive ``req`` from its current phase to a terminal one (or until stopped)."""
        try:
            invoker, where = self.open(ctx, req)
        except Exception as exc:  # e.g. no GCP project configured
            await ctx.fail(exc)
            return
        try:
            job = self.recorded(ctx)
            if job is None:
                job = await self.start(ctx, req, invoker, where)
                if job is None:
                    return
                await self.track(ctx, req, invoker, job, poll_now=False)
            else:
                await self.track(ctx, req, invoker, job, poll_now=True)
        except StopRequested as stop:
            if stop.why.cancels:  # deleted, or cancelled in place (spec.cancel)
                # A start may have reached the service although its reply never came:
                # stop finds the job by the run's uid whatever the status says.
                await self.stop(ctx, invoker, where)
            raise

    async def finalize_unowned(self, ctx: RunContext, spec: Mapping[str, Any]) -> None:
        """A run deleted while no reconciler owned it: stop its job, record Cancelled."""
        try:
            # admitted: a rule added since it was submitted must not keep its job alive.
            req = parse_spec(spec, uid=ctx.ref.uid, admitted=True)
            invoker, where = self.open(ctx, req)
        except Exception as exc:  # an invalid spec: nothing can have been started
            await ctx.record(remote.unowned_invalid(self.kind, str(exc)))
            return
        await self.stop(ctx, invoker, where)

    async def track(
        self, ctx: RunContext, req: RunRequest, invoker: Inv, job: Any, *, poll_now: bool
    ) -> None:
        """Poll the job until it ends or the deadline passes (then cancel it)."""
        self.metrics.active.labels(self.label).inc()
        try:
            if not poll_now:
                # A job just started is queued: polling it at once costs a call and,
                # under load, a second status write for nothing.
                await ctx.sleep(self._poll_wait(ctx, req))
            while True:
                left = ctx.remaining(req.active_deadline_seconds)
                if left is not None and left <= 0:
                    await self._cancel_for_deadline(ctx, req, invoker, job)
                    return
                try:
                    info = await ctx.until_stopped(self.poll(invoker, job))
                except StopRequested:
                    raise
                except Exception as exc:
                    ended = remote.poll_failed(self.kind, job, exc)
                    if ended is None:
                        await ctx.fail(exc)  # transient: says Retrying; kopf retries the run
                        return
                    await ctx.record(ended)
                    return
                moved = self.observe(job, info)
                if moved is not None:
                    await ctx.record(moved)
                    job = getattr(moved, self.kind.field) or job
                    if moved.terminal:
                        return
                await ctx.sleep(self._poll_wait(ctx, req))
        finally:
            self.metrics.active.labels(self.label).dec()

    def _poll_wait(self, ctx: RunContext, req: RunRequest) -> float:
        left = ctx.remaining(req.active_deadline_seconds)
        return remote.next_poll(self.config.batch_poll_interval, left)

    async def _cancel_for_deadline(
        self, ctx: RunContext, req: RunRequest, invoker: Inv, job: Any
    ) -> None:
        error: str | None = None
        try:
            await ctx.until_stopped(self.cancel(invoker, job))
        except StopRequested:
            raise
        except Exception as exc:
            error = str(exc)
        await ctx.record(remote.deadline_exceeded(self.kind, job, req, error=error))

    async def keep_trying(
        self,
        ctx: RunContext,
        what: str,
        call: Callable[[], Awaitable[T]],
        job: Callable[[], Any],
    ) -> T:
        """``call()`` until it succeeds: each distinct error recorded once as Cancelling.

        ``job()`` is the job as known at the time of a failure (the status records it).
        """
        why = ctx.stop.why()
        verb = why.verb if why else "deleted"
        last = ""

        async def failed(exc: BaseException, code: str, pause: float) -> None:
            nonlocal last
            if isinstance(exc, StillStopping):
                return  # stopping takes a while: nothing went wrong
            error = ctx.masker.mask(str(exc))
            if error != last:
                last = error
                await ctx.record(
                    remote.cancelling(self.kind, ctx.phase, job(), error, pause, verb=verb)
                )

        policy = RetryPolicy(
            max_attempts=None, initial_backoff=1.0, max_backoff=self.config.retry_backoff_max
        )
        return await retry_call(
            what,
            call,
            policy=policy,
            transient=lambda exc: type(exc).__name__,
            give_up=lambda exc, code, attempts: exc,  # max_attempts=None: never called
            on_failure=failed,
            sleep=ctx.clock.sleep,
        )
