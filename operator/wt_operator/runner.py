"""Reconciliation of one WorkflowRun: from Pending to a terminal phase.

The kopf daemon of each active run calls :meth:`Runtime.reconcile`. It is
written to be safe to re-enter after a crash at any point:

* Local: the status says ``Running`` *before* the process starts, so an
  operator that finds ``Running`` on start-up knows the process died with its
  predecessor (→ ``InvokerLost``) and never starts the workflow a second time.
* CloudBatch: the job id derives from the run id and ``ALREADY_EXISTS`` adopts
  the job, so re-submitting after a crash cannot create a second job; a run
  already ``Submitted`` is only tracked.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from wt_invokers import CloudBatchInvoker, InvokerError, LocalSubprocessInvoker
from wt_invokers.cloud_batch import make_batch_client
from wt_invokers.local import kill_stale_processes
from wt_operator.config import OperatorConfig
from wt_operator.errors import Terminal, classify
from wt_operator.kube import Kube, RunGoneError, RunRef
from wt_operator.metrics import Metrics
from wt_operator.spec import (
    InvalidSpecError,
    RunRequest,
    batch_run_kwargs,
    parse_spec,
    run_kwargs,
)
from wt_operator.status import TERMINAL_PHASES, Reason, batch_outcome, log_tail, status_patch

__all__ = ["Runtime"]

T = TypeVar("T")
output_log = logging.getLogger("wt_operator.output")


class Stopped(Protocol):
    """kopf's ``stopped`` flag of a daemon (a ``FlagWaiter``), as far as we use it."""

    def __bool__(self) -> bool: ...

    @property
    def reason(self) -> Any: ...

    def wait(self, timeout: float | None = None) -> Awaitable[Any]: ...


class _StopRequested(Exception):
    """The daemon was asked to stop (deletion, operator exit) while waiting."""


class _NeverStopped:
    """The stop flag of work that no daemon owns (a run deleted while no operator ran)."""

    reason = None

    def __bool__(self) -> bool:
        return False

    async def wait(self, timeout: float | None = None) -> None:
        await asyncio.Event().wait()


def _mask(line: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        line = line.replace(value, "***")
    return line


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


class _Run:
    """One reconciliation in progress: its identity, last status and stop flag."""

    def __init__(
        self,
        rt: Runtime,
        ref: RunRef,
        status: Mapping[str, Any],
        stopped: Stopped,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        invoker: str,
    ) -> None:
        self.rt = rt
        self.ref = ref
        self.status: dict[str, Any] = dict(status or {})
        self.stopped = stopped
        self.logger = logger
        self.invoker = invoker

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "Pending")

    @property
    def deleted(self) -> bool:
        reason = self.stopped.reason
        return bool(reason is not None and "RESOURCE_DELETED" in str(reason))

    def remaining(self, deadline_seconds: int | None) -> float | None:
        """Seconds left before activeDeadlineSeconds, counted from status.startTime."""
        if deadline_seconds is None:
            return None
        start = _parse_time(self.status.get("startTime")) or time.time()
        return max(0.0, start + deadline_seconds - time.time())

    async def transition(
        self, phase: str, reason: str, message: str, *, warning: bool = False, **fields: Any
    ) -> None:
        """Write the status for ``phase`` (one API write) and record an Event."""
        patch = status_patch(
            phase, reason, message, generation=self.ref.generation, previous=self.status, **fields
        )
        await self.rt.kube.patch_status(self.ref, patch)
        self.status.update(patch)
        self.logger.info("%s (%s)%s", phase, reason, f": {message}" if message and warning else "")
        # One line per Event keeps `kubectl get events` tables readable; the full text
        # (e.g. a log tail) is in status.message.
        summary = (message or phase).split("\n", 1)[0]
        self.rt.spawn(
            self.rt.kube.post_event(self.ref, reason=reason, message=summary, warning=warning)
        )
        if phase in TERMINAL_PHASES:
            started = _parse_time(self.status.get("startTime"))
            self.rt.metrics.runs.labels(self.invoker, reason).inc()
            if started is not None:
                self.rt.metrics.duration.labels(self.invoker, reason).observe(
                    max(0.0, time.time() - started)
                )

    async def fail(self, outcome: Terminal, **fields: Any) -> None:
        phase = "Cancelled" if outcome.reason == Reason.CANCELLED else "Failed"
        await self.transition(phase, outcome.reason, outcome.message, warning=True, **fields)

    async def fail_or_raise(self, exc: BaseException, **fields: Any) -> None:
        """End the run for a terminal error (see errors.classify); re-raise a transient one."""
        outcome = classify(exc)
        if outcome is None:
            raise exc
        await self.fail(outcome, **fields)

    async def until_stopped(self, aw: Awaitable[T], timeout: float | None = None) -> T:
        """Await ``aw`` unless the daemon is stopped first (then raise _StopRequested)."""
        task = asyncio.ensure_future(aw)
        stop = asyncio.ensure_future(self.stopped.wait())
        try:
            done, _ = await asyncio.wait(
                {task, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if stop in done:
            raise _StopRequested
        raise TimeoutError

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake (raising _StopRequested) as soon as the daemon is stopped."""
        await self.until_stopped(asyncio.sleep(seconds))

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Call until it succeeds or fails terminally; transient errors back off (capped)."""
        delay = 0.5
        while True:
            try:
                return await call()
            except Exception as exc:
                if classify(exc) is not None:
                    raise
                self.rt.metrics.api_errors.labels(self.invoker).inc()
                self.logger.warning(
                    "%s failed transiently (%s); retrying in %.1fs", what, exc, delay
                )
            await self.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.rt.config.retry_backoff_max)


class Runtime:
    """Operator-wide state shared by all runs: settings, clients, the local-run slots."""

    def __init__(
        self,
        config: OperatorConfig,
        kube: Kube,
        metrics: Metrics | None = None,
        batch_client: Any | None = None,
    ) -> None:
        self.config = config
        self.kube = kube
        self.metrics = metrics or Metrics()
        self.local_slots = asyncio.Semaphore(config.max_concurrent_local_runs)
        self._batch_client = batch_client
        self._background: set[asyncio.Task[Any]] = set()
        self._live: set[str] = set()
        """uids of the runs a daemon is reconciling in this process."""

    def spawn(self, aw: Awaitable[Any]) -> None:
        """Fire-and-forget (Events): keep a reference so the task is not collected early."""
        task = asyncio.ensure_future(aw)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def preload_batch(self) -> None:
        """Import the Batch client library now when Batch is configured.

        Importing it takes about a second of CPU; done lazily, that second lands on the
        event loop just as the first Batch runs arrive (often hundreds at once).
        """
        if self.config.google_cloud_project or self.config.batch_emulator_host:
            with contextlib.suppress(ImportError):
                importlib.import_module("google.cloud.batch_v1")

    def batch_client(self) -> Any:
        """One Batch client for all runs (a gRPC channel is expensive; it multiplexes)."""
        if self._batch_client is None:
            self._batch_client = make_batch_client(self.config.batch_emulator_host)
        return self._batch_client

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        client, self._batch_client = self._batch_client, None
        if client is not None:
            transport = getattr(client, "transport", None)
            if transport is not None:
                with contextlib.suppress(Exception):
                    await transport.close()

    async def reconcile(
        self,
        ref: RunRef,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        stopped: Stopped,
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        """Drive one run until it is terminal, or until the daemon is stopped."""
        run = _Run(self, ref, status, stopped, logger, str(spec.get("invoker", "Local")))
        self._live.add(ref.uid)
        try:
            try:
                req = parse_spec(spec, uid=ref.uid)
            except InvalidSpecError as exc:
                await run.fail(Terminal(Reason.INVALID_SPEC, str(exc)))
                return
            if req.invoker == "Local":
                await self._run_local(run, req)
            else:
                await self._run_batch(run, req)
        except RunGoneError:
            logger.info("the WorkflowRun is gone; nothing left to do")
        except _StopRequested:
            logger.debug("stopped (%s)", stopped.reason)
        finally:
            self._live.discard(ref.uid)

    async def finalize_unowned(
        self,
        ref: RunRef,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        logger: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        """Clean up after an active run deleted while no daemon of this process owned it.

        kopf starts no daemon for an object already being deleted, so a run deleted while
        no operator was running would lose its finalizer with nothing cleaned up: its
        Batch job would keep running (and cost money), an orphaned local process would
        live on. Here the job is deleted (by the name derived from the run id, in case a
        create was in flight), stale local processes are killed, and the run is recorded
        as Cancelled before kopf releases the finalizer.
        """
        if ref.uid in self._live:
            return  # its daemon is being stopped and cleans up itself
        run = _Run(self, ref, status, _NeverStopped(), logger, str(spec.get("invoker", "Local")))
        fields: dict[str, Any] = {}
        try:
            req = parse_spec(spec, uid=ref.uid)
            if req.invoker == "Local":
                found = await kill_stale_processes(
                    req.workflow_run_id, grace=self.config.kill_grace_seconds
                )
                done = "its process tree was killed" if found else "no process of it was left"
            else:
                invoker = self._batch_invoker(req)
                job = dict(run.status.get("cloudBatch") or {})
                name = str(job.get("jobName") or invoker.job_name_for(req.workflow_run_id))
                await run.retrying("deleting the Batch job", lambda: invoker.delete_job(name))
                done = "the Batch job was deleted"
                fields = {"cloudBatch": {**job, "jobName": name, "state": "DELETED"}}
        except InvalidSpecError as exc:
            done = f"nothing was started (invalid spec: {exc})"
        except Exception as exc:  # terminal (transient ones are retried): say so, then let go
            done = f"cleaning up failed: {exc}"
        try:
            await run.fail(
                Terminal(Reason.CANCELLED, f"deleted while no operator was reconciling it; {done}"),
                **fields,
            )
        except RunGoneError:
            logger.info("the WorkflowRun is gone; nothing left to do")

    # -- shared steps -----------------------------------------------------------------

    async def _resolve(self, run: _Run, req: RunRequest) -> tuple[str, dict[str, str], list[str]]:
        """Config text, extra env and the secret values to mask, read at start."""
        config_text = req.config_text or ""
        if req.config_ref is not None:
            ref = req.config_ref
            value = await run.retrying(
                f"reading {ref}", lambda: self.kube.read_key(run.ref.namespace, ref)
            )
            config_text = value or ""
        env: dict[str, str] = {}
        secrets: list[str] = []
        for item in req.env:
            if item.ref is None:
                env[item.name] = item.value or ""
                continue
            key_ref = item.ref
            value = await run.retrying(
                f"reading {key_ref}",
                lambda key_ref=key_ref: self.kube.read_key(run.ref.namespace, key_ref),  # type: ignore[misc]
            )
            if value is None:
                continue
            env[item.name] = value
            if key_ref.kind == "Secret" and len(value) >= 3:
                secrets.append(value)
        return config_text, env, sorted(secrets, key=len, reverse=True)

    # -- Local ----------------------------------------------------------------------

    async def _run_local(self, run: _Run, req: RunRequest) -> None:
        cfg = self.config
        if run.phase == "Running":
            # The process belonged to an operator process that is gone.
            found = await kill_stale_processes(req.workflow_run_id, grace=cfg.kill_grace_seconds)
            await run.fail(
                Terminal(
                    Reason.INVOKER_LOST,
                    "the operator restarted while this run was in flight; its process "
                    + ("was still there and has been killed" if found else "is gone")
                    + ". Create a new WorkflowRun to run it again.",
                )
            )
            return
        secrets: list[str] = []

        def forward(stream: str, line: str) -> None:
            output_log.info("[%s] %s", run.ref, _mask(line, secrets))

        invoker = LocalSubprocessInvoker(
            req.workflow,
            cwd=cfg.workspace,
            environment=req.environment,
            launcher=cfg.local_launcher,
            line_callback=forward,
            tail_lines=max(cfg.log_tail_lines, 1),
            kill_grace_seconds=cfg.kill_grace_seconds,
        )
        try:
            if not await invoker.is_installed():
                await run.fail(
                    Terminal(
                        Reason.NOT_INSTALLED,
                        f"no package matching {req.workflow!r} is installed in environment "
                        f"{req.environment!r} of the operator's workspace {cfg.workspace}",
                    )
                )
                return
            config_text, env, found_secrets = await self._resolve(run, req)
            secrets.extend(found_secrets)
        except Exception as exc:
            await run.fail_or_raise(exc)
            return

        if self.local_slots.locked() and run.phase != "Queued":
            await run.transition(
                "Queued",
                Reason.QUEUED,
                f"waiting for a free local slot (limit {cfg.max_concurrent_local_runs})",
                workflowRunId=req.workflow_run_id,
            )
        self.metrics.queued.inc()
        try:
            remaining = run.remaining(req.active_deadline_seconds)
            await run.until_stopped(self.local_slots.acquire(), timeout=remaining)
        except TimeoutError:
            await run.fail(
                Terminal(
                    Reason.DEADLINE_EXCEEDED,
                    f"activeDeadlineSeconds={req.active_deadline_seconds} passed "
                    "while the run was queued",
                )
            )
            return
        except _StopRequested:
            if run.deleted and run.phase == "Queued":
                await run.fail(Terminal(Reason.CANCELLED, "deleted while queued"))
            raise
        finally:
            self.metrics.queued.dec()
        try:
            await self._execute_local(run, req, invoker, config_text, env, secrets)
        finally:
            self.local_slots.release()

    async def _execute_local(
        self,
        run: _Run,
        req: RunRequest,
        invoker: LocalSubprocessInvoker,
        config_text: str,
        env: dict[str, str],
        secrets: list[str],
    ) -> None:
        cfg = self.config
        # Running is written *before* the process starts: see the module docstring.
        await run.transition(
            "Running",
            Reason.RUNNING,
            f"running {req.workflow} locally",
            workflowRunId=req.workflow_run_id,
        )
        self.metrics.active.labels("Local").inc()
        try:
            try:
                await invoker.run(**run_kwargs(req, config_text=config_text, extra_env=env))
            except InvokerError as exc:
                outcome = classify(exc) or Terminal(Reason.FAILED, str(exc))
                await run.fail(outcome)
                return
            remaining = run.remaining(req.active_deadline_seconds)
            try:
                code = await run.until_stopped(
                    invoker.wait(
                        timeout=remaining,
                        error_msg=f"activeDeadlineSeconds={req.active_deadline_seconds} exceeded; "
                        "the workflow's process tree was killed",
                    )
                )
            except _StopRequested:
                await invoker.cancel()
                if run.deleted:
                    await run.fail(
                        Terminal(
                            Reason.CANCELLED, "deleted while running; the process tree was killed"
                        )
                    )
                else:
                    await run.fail(
                        Terminal(
                            Reason.INVOKER_LOST,
                            "the operator stopped while this run was in flight; "
                            "its process tree was killed",
                        )
                    )
                raise
            except InvokerError as exc:
                await run.fail(classify(exc) or Terminal(Reason.FAILED, str(exc)))
                return
        finally:
            self.metrics.active.labels("Local").dec()
            if invoker.is_running:
                await invoker.cancel()
        tail = _mask(log_tail(invoker.output_tail, max_lines=cfg.log_tail_lines), secrets)
        if code == 0:
            await run.transition(
                "Succeeded", Reason.SUCCEEDED, "the workflow exited with 0", exitCode=0, result="0"
            )
        else:
            message = f"the workflow exited with {code}"
            if tail:
                message += f"\nlast output:\n{tail}"
            await run.transition(
                "Failed", Reason.FAILED, message, warning=True, exitCode=code, result=str(code)
            )

    # -- CloudBatch -------------------------------------------------------------------

    def _batch_invoker(self, req: RunRequest) -> CloudBatchInvoker:
        cfg = self.config
        opts = req.batch
        if opts is None:  # parse_spec guarantees it; narrows the type
            raise InvalidSpecError("spec.cloudBatch is required when invoker is CloudBatch")
        return CloudBatchInvoker(
            req.workflow,
            project_id=opts.project or cfg.google_cloud_project,
            region=opts.region or cfg.cloud_run_region,
            service_account=opts.service_account or cfg.batch_service_account,
            client=self.batch_client(),
            environment=req.environment,
        )

    async def _run_batch(self, run: _Run, req: RunRequest) -> None:
        try:
            invoker = self._batch_invoker(req)
        except Exception as exc:
            await run.fail_or_raise(exc)
            return
        job = dict(run.status.get("cloudBatch") or {})
        just_submitted = not job.get("jobName")
        if just_submitted:
            submitted = await self._submit(run, req, invoker)
            if submitted is None:
                return
            job = submitted
        # A job just created is QUEUED: the first poll waits one interval. One adopted
        # from a previous operator process is polled at once.
        await self._track(run, req, invoker, job, poll_first=not just_submitted)

    async def _submit(
        self, run: _Run, req: RunRequest, invoker: CloudBatchInvoker
    ) -> dict[str, Any] | None:
        opts = req.batch
        if opts is None:
            raise InvalidSpecError("spec.cloudBatch is required when invoker is CloudBatch")
        try:
            config_text, env, _ = await self._resolve(run, req)
            remaining = run.remaining(req.active_deadline_seconds)
            kwargs = {
                **run_kwargs(req, config_text=config_text, extra_env=env),
                **batch_run_kwargs(opts, timeout=remaining),
            }
            await run.retrying("submitting the Batch job", lambda: invoker.run(**kwargs))
        except _StopRequested:
            if run.deleted:
                # A create may have been stored even though we never saw its reply.
                with contextlib.suppress(Exception):
                    await invoker.delete_job(invoker.job_name_for(req.workflow_run_id))
            raise
        except Exception as exc:
            await run.fail_or_raise(exc)
            return None
        name = invoker.job_name or invoker.job_name_for(req.workflow_run_id)
        job = {"jobName": name, "jobUid": invoker.job_uid or "", "state": "QUEUED"}
        await run.transition(
            "Submitted",
            Reason.SUBMITTED,
            f"submitted Cloud Batch job {name}",
            workflowRunId=req.workflow_run_id,
            cloudBatch=job,
            result=name.rsplit("/", 1)[-1],
        )
        return job

    def _poll_wait(self, run: _Run, req: RunRequest) -> float:
        """The poll interval, cut short by activeDeadlineSeconds."""
        remaining = run.remaining(req.active_deadline_seconds)
        wait = self.config.batch_poll_interval
        return wait if remaining is None else min(wait, remaining)

    async def _track(
        self,
        run: _Run,
        req: RunRequest,
        invoker: CloudBatchInvoker,
        job: dict[str, Any],
        *,
        poll_first: bool = True,
    ) -> None:
        name = str(job["jobName"])
        state = str(job.get("state") or "")
        self.metrics.active.labels("CloudBatch").inc()
        try:
            if not poll_first:
                await run.sleep(self._poll_wait(run, req))
            while True:
                remaining = run.remaining(req.active_deadline_seconds)
                if remaining is not None and remaining <= 0:
                    await run.retrying("cancelling the Batch job", lambda: invoker.cancel_job(name))
                    await run.fail(
                        Terminal(
                            Reason.DEADLINE_EXCEEDED,
                            f"activeDeadlineSeconds={req.active_deadline_seconds} exceeded in "
                            f"state {state or 'QUEUED'}; the Batch job was cancelled",
                        ),
                        cloudBatch={**job, "state": state},
                    )
                    return
                try:
                    info = await run.retrying(
                        "reading the Batch job", lambda: invoker.get_job(name)
                    )
                except Exception as exc:
                    await run.fail_or_raise(exc, cloudBatch={**job, "state": "NOT_FOUND"})
                    return
                if info.state != state:
                    state = info.state
                    job = {
                        "jobName": name,
                        "jobUid": info.uid or job.get("jobUid", ""),
                        "state": state,
                    }
                    ended = batch_outcome(state)
                    if ended is not None:
                        phase, reason = ended
                        detail = f"; {info.last_event}" if info.last_event else ""
                        await run.transition(
                            phase,
                            reason,
                            f"the Batch job {state.lower()}{detail}",
                            warning=phase != "Succeeded",
                            cloudBatch=job,
                        )
                        return
                    await run.transition(
                        "Submitted", Reason.SUBMITTED, f"the Batch job is {state}", cloudBatch=job
                    )
                await run.sleep(self._poll_wait(run, req))
        except _StopRequested:
            if run.deleted:
                with contextlib.suppress(Exception):
                    await invoker.delete_job(name)
                await run.fail(
                    Terminal(Reason.CANCELLED, "deleted; the Batch job was deleted"),
                    cloudBatch={**job, "state": "DELETED"},
                )
            raise
        finally:
            self.metrics.active.labels("CloudBatch").dec()
