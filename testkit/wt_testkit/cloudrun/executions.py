"""The Cloud Run stand-in's store: pre-deployed jobs, their executions, and five RPCs.

Exists so what the service *does* — start an execution with container overrides,
report it through conditions and counters as Cloud Run does, page it, cancel it —
is plain synchronous code apart from how it is served. Jobs are deployed by the
test (:meth:`ExecutionStore.deploy_job`), as an admin deploys them: RunJob on a
job nobody deployed answers ``NOT_FOUND``. An execution's template is the job's
with the overrides applied (args replaced, env merged), which is what makes the
run's correlation variable readable later.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2

from wt_testkit.batch.faults import RpcError

__all__ = ["METHODS", "STATES", "ExecutionStore"]

METHODS = ("GetJob", "RunJob", "GetExecution", "ListExecutions", "CancelExecution")
"""The RPCs the stand-in implements (fault injection accepts these names)."""

STATES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
"""States a test may put an execution in (Cloud Run shows them as conditions)."""

_Execution = run_v2.Execution.pb()
_Job = run_v2.Job.pb()
_ListExecutionsResponse = run_v2.ListExecutionsResponse.pb()
_Condition = run_v2.Condition.pb()
_CondState = run_v2.Condition.State
_Reason = run_v2.Condition.ExecutionReason
_PAGE_SIZE = 100


@dataclasses.dataclass
class _Record:
    execution: Any  # raw Execution proto, owned by the store
    created: float
    steps: list[tuple[str, float]]
    next_step: int = 0
    cancelling: bool = False

    def advance(self, now: float) -> None:
        elapsed = now - self.created
        while self.next_step < len(self.steps) and self.steps[self.next_step][1] <= elapsed:
            _set_state(self.execution, self.steps[self.next_step][0], None)
            self.next_step += 1


class ExecutionStore:
    """Deployed jobs, executions by full name, call counters; thread-safe.

    Args:
        lifecycle: ``[("RUNNING", 0.1), ("SUCCEEDED", 0.3)]``: states every new
            execution enters that many seconds after it started; empty: it stays
            ``PENDING`` until :meth:`set_execution_state` moves it.
    """

    def __init__(self, lifecycle: Sequence[tuple[str, float]] = ()) -> None:
        self.lifecycle = list(lifecycle)
        """Lifecycle given to executions started from now on; assign to change it."""
        self.cancel_delay = 0.0
        """Seconds a cancelled execution keeps running before it is CANCELLED (as on Cloud
        Run, where CancelExecution only starts stopping the tasks)."""
        self.page_size = _PAGE_SIZE
        """ListExecutions' page size when the request names none (small: paging is exercised)."""
        self._lock = threading.Lock()
        self._jobs: dict[str, Any] = {}
        self._records: dict[str, _Record] = {}
        self._calls: collections.Counter[str] = collections.Counter()

    # -- control and observation ------------------------------------------------------------

    def deploy_job(self, name: str, *, args: Sequence[str] = (), image: str = "sandbox") -> None:
        """Deploy ``projects/P/locations/R/jobs/J`` (one container running ``image``)."""
        job = _Job(name=name, uid=uuid.uuid4().hex)
        container = job.template.template.containers.add()
        container.image = image
        container.args.extend(args)
        with self._lock:
            self._jobs[name] = job

    def undeploy_job(self, name: str) -> None:
        """Delete a job (its executions stay, as Cloud Run keeps them until the job goes)."""
        with self._lock:
            self._jobs.pop(name, None)

    def set_execution_state(self, name: str, state: str, message: str | None = None) -> None:
        """Move an execution (full name, or its last segment) to ``state``; lifecycle stops."""
        with self._lock:
            rec = self._find(name)
            rec.advance(time.monotonic())
            rec.next_step = len(rec.steps)
            _set_state(rec.execution, state, message)

    def executions(self, job: str | None = None) -> list[run_v2.Execution]:
        """Copies of the executions (of ``job`` when given), in start order."""
        now = time.monotonic()
        with self._lock:
            out = []
            for name, rec in self._records.items():
                if job is None or name.startswith(f"{job}/executions/"):
                    rec.advance(now)
                    out.append(run_v2.Execution.wrap(_copy(rec.execution)))
            return out

    def execution_state(self, name: str) -> str:
        """The state a test set or the lifecycle reached (``PENDING`` … ``CANCELLED``)."""
        with self._lock:
            rec = self._find(name)
            rec.advance(time.monotonic())
            return _state_of(rec.execution)

    def count_call(self, method: str) -> None:
        with self._lock:
            self._calls[method] += 1

    @property
    def calls(self) -> dict[str, int]:
        """RPCs received per method (counted on arrival, faults and errors included)."""
        with self._lock:
            return dict(self._calls)

    @property
    def started_executions(self) -> int:
        """How many executions RunJob started (what "never a second one" is checked on)."""
        with self._lock:
            return len(self._records)

    # -- the RPCs -----------------------------------------------------------------------------

    def handle(self, method: str, request: Any) -> Any:
        """Answer one RPC of :data:`METHODS` (raw request proto in, raw reply out)."""
        rpcs = {
            "GetJob": self._get_job,
            "RunJob": self._run_job,
            "GetExecution": self._get_execution,
            "ListExecutions": self._list_executions,
            "CancelExecution": self._cancel_execution,
        }
        with self._lock:
            return rpcs[method](request)

    def _job(self, name: str) -> Any:
        job = self._jobs.get(name)
        if job is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Resource '{name}' was not found")
        return job

    def _find(self, name: str) -> _Record:
        rec = self._records.get(name)
        if rec is None:
            rec = next((r for n, r in self._records.items() if n.endswith(f"/{name}")), None)
        if rec is None:
            raise KeyError(f"no Cloud Run execution {name!r}")
        return rec

    def _get_job(self, request: Any) -> Any:
        return _copy(self._job(request.name))

    def _run_job(self, request: Any) -> Any:
        job = self._job(request.name)
        short = request.name.rsplit("/", 1)[-1]
        name = f"{request.name}/executions/{short}-{uuid.uuid4().hex[:5]}"
        execution = _Execution(name=name, uid=uuid.uuid4().hex, job=short, task_count=1)
        execution.create_time.GetCurrentTime()
        execution.template.CopyFrom(job.template.template)
        execution.log_uri = f"https://console.cloud.google.com/logs/viewer?execution={short}"
        for override in request.overrides.container_overrides[:1]:
            container = execution.template.containers[0]
            if override.args or override.clear_args:
                del container.args[:]
                container.args.extend(override.args)
            merged = {v.name: v for v in container.env}
            merged.update({v.name: v for v in override.env})
            del container.env[:]
            container.env.extend(merged.values())
        if request.overrides.HasField("timeout"):
            execution.template.timeout.CopyFrom(request.overrides.timeout)
        _set_state(execution, "PENDING", None)
        self._records[name] = _Record(
            execution, time.monotonic(), [(s, float(at)) for s, at in self.lifecycle]
        )
        op = operations_pb2.Operation(name=f"{request.name}/operations/{uuid.uuid4().hex}")
        op.metadata.Pack(execution)
        return op

    def _get_execution(self, request: Any) -> Any:
        rec = self._records.get(request.name)
        if rec is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        rec.advance(time.monotonic())
        return _copy(rec.execution)

    def _list_executions(self, request: Any) -> Any:
        self._job(request.parent)  # a job that is gone answers NOT_FOUND, as Cloud Run does
        now = time.monotonic()
        prefix = f"{request.parent}/executions/"
        names = [n for n in self._records if n.startswith(prefix)]
        start = int(request.page_token or 0)
        size = request.page_size or self.page_size
        reply = _ListExecutionsResponse()
        for name in names[start : start + size]:
            rec = self._records[name]
            rec.advance(now)
            reply.executions.add().CopyFrom(rec.execution)
        if start + size < len(names):
            reply.next_page_token = str(start + size)
        return reply

    def _cancel_execution(self, request: Any) -> Any:
        rec = self._records.get(request.name)
        if rec is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        rec.advance(time.monotonic())
        if _state_of(rec.execution) in ("SUCCEEDED", "FAILED", "CANCELLED"):
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION, f"execution {request.name} already finished"
            )
        if rec.cancelling:
            pass  # asked again while stopping: it stops when it would have anyway
        elif self.cancel_delay > 0:
            rec.cancelling = True
            _set_state(rec.execution, "RUNNING", None)
            rec.steps = [("CANCELLED", time.monotonic() - rec.created + self.cancel_delay)]
            rec.next_step = 0
        else:
            rec.next_step = len(rec.steps)
            _set_state(rec.execution, "CANCELLED", "The execution was cancelled.")
        op = operations_pb2.Operation(name=f"{request.name}/operations/{uuid.uuid4().hex}")
        op.metadata.Pack(rec.execution)
        return op


def _copy(message: Any) -> Any:
    out = type(message)()
    out.CopyFrom(message)
    return out


def _set_state(execution: Any, state: str, message: str | None) -> None:
    """Show ``state`` as Cloud Run does: counters, times and the ``Completed`` condition."""
    state = state.upper()
    if state not in STATES:
        raise ValueError(f"unknown execution state {state!r}; one of {', '.join(STATES)}")
    now = dt.datetime.now(dt.UTC)
    for counter in ("running_count", "succeeded_count", "failed_count", "cancelled_count"):
        setattr(execution, counter, 0)
    del execution.conditions[:]
    done = _Condition(type_="Completed", state=_CondState.CONDITION_PENDING)
    if state != "PENDING" and not execution.HasField("start_time"):
        execution.start_time.FromDatetime(now)
    if state == "RUNNING":
        execution.running_count = 1
    elif state == "SUCCEEDED":
        execution.succeeded_count = 1
        done.state = _CondState.CONDITION_SUCCEEDED
    elif state == "FAILED":
        execution.failed_count = 1
        done.state = _CondState.CONDITION_FAILED
        done.execution_reason = _Reason.NON_ZERO_EXIT_CODE
    elif state == "CANCELLED":
        execution.cancelled_count = 1
        done.state = _CondState.CONDITION_FAILED
        done.execution_reason = _Reason.CANCELLED
    if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
        execution.completion_time.FromDatetime(now)
        done.message = message or f"Execution {state.lower()}."
    execution.conditions.append(done)
    execution.update_time.FromDatetime(now)


def _state_of(execution: Any) -> str:
    if execution.cancelled_count:
        return "CANCELLED"
    if execution.succeeded_count:
        return "SUCCEEDED"
    if execution.failed_count:
        return "FAILED"
    return "RUNNING" if execution.running_count else "PENDING"
