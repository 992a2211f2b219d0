"""An in-process Google Cloud Batch (``google.cloud.batch.v1.BatchService``) for tests.

Exists because GCP itself cannot run in a test, yet the code under test should
talk to Batch through the *real* ``google-cloud-batch`` async client over real
gRPC: this server speaks the same wire protocol with the proto messages shipped
in ``google-cloud-batch``, validates like the real service (job-id pattern,
``ALREADY_EXISTS``, ``NOT_FOUND``, one task group, label syntax), and adds the
knobs a test needs — job states on demand, an automatic lifecycle, injected
latency and faults, and counters to assert on.

In-process use (sync or async tests; the server runs its own event loop in a
thread, so the client can live on the test's loop)::

    with InProcessBatchServer(latency=0.02) as server:
        os.environ["BATCH_EMULATOR_HOST"] = server.address  # '127.0.0.1:PORT'
        ...
        server.set_job_state("wt-run-1-0123456789ab", "SUCCEEDED")
        server.fail_next("CreateJob", grpc.StatusCode.UNAVAILABLE, times=3)
        assert server.created_jobs == 1

Implemented RPCs: CreateJob, GetJob, ListJobs, DeleteJob and CancelJob (the two
long-running ones return an already-finished ``Operation``). DeleteJob removes the
job at once; CancelJob moves a non-terminal job to ``CANCELLED``. ListJobs ignores
``filter`` and ``order_by`` (jobs come in creation order).

Lifecycle: ``lifecycle=[("SCHEDULED", 0.1), ("RUNNING", 0.2), ("SUCCEEDED", None)]``
moves each new job into each state that many seconds after its creation. ``None``
keeps the rhythm: as long after the previous step as that one came after its own
predecessor (so the example reaches SUCCEEDED at 0.3 s). ``lifecycle`` may also
be a callable ``(job: batch_v1.Job) -> steps``, evaluated once per job at
creation. A job takes the lifecycle in force when it is created; with none, it
stays ``QUEUED`` until :meth:`InProcessBatchServer.set_job_state` moves it (which
also stops its lifecycle).

Command line (for tests that run the server as a separate process)::

    python -m wt_invokers.testing.batch_server --port 0 --latency 0.02 \\
        --lifecycle "SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED" [--deny-create PERMISSION_DENIED] \\
        [--control-port 0] [--host 127.0.0.1]

prints the gRPC address (``127.0.0.1:PORT``) on the first stdout line and the
HTTP control URL (``http://127.0.0.1:PORT``) on the second, flushes, and serves
until SIGTERM or SIGINT. The control endpoint speaks JSON:

* ``GET /jobs`` → ``{"jobs": {name: {"state": ..., "job": {...}}}}`` (``job`` is
  the Job message as a dict with proto field names)
* ``GET /jobs/<id or name>`` → ``{"state": ..., "job": {...}}`` or 404
* ``GET /stats`` → ``{"calls": {method: n}, "create_calls": n, "created_jobs": n,
  "create_counts": {name: n}}``
* ``POST /jobs/<id or name>/state`` with ``{"state": "SUCCEEDED", "description": "..."}``
* ``POST /faults`` with any of ``{"reset": true, "latency": 0.05,
  "fail_next": {"method": "CreateJob", "code": "UNAVAILABLE", "times": 3},
  "lose_reply_after_commit": {"method": "CreateJob", "times": 1, "code": "UNAVAILABLE"},
  "deny": {"method": "CreateJob", "code": "PERMISSION_DENIED"}}``
* ``POST /lifecycle`` with ``{"lifecycle": [["RUNNING", 0.2], ["SUCCEEDED", null]]}``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import http.server
import json
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlparse

import grpc
from google.cloud import batch_v1
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, json_format

__all__ = [
    "METHODS",
    "SERVICE",
    "InProcessBatchServer",
    "Lifecycle",
    "LifecycleStep",
    "main",
    "parse_lifecycle",
]

SERVICE = "google.cloud.batch.v1.BatchService"
"""The fully qualified gRPC service name the real client calls."""

METHODS = ("CreateJob", "GetJob", "ListJobs", "DeleteJob", "CancelJob")
"""The RPCs this server implements (fault injection accepts these names)."""

LifecycleStep = tuple[str, float | None]
"""``(state name, seconds after creation)``; ``None`` keeps the previous rhythm."""

Lifecycle = Sequence[LifecycleStep] | Callable[[Any], Sequence[LifecycleStep]]
"""Steps for every new job, or a callable giving the steps of one ``batch_v1.Job``."""

_JOB_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_PARENT = re.compile(r"^projects/[^/]+/locations/[^/]+$")
_JOB_NAME = re.compile(r"^(projects/[^/]+/locations/[^/]+)/jobs/([^/]+)$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_DEFAULT_PAGE_SIZE = 100

# Raw protobuf classes: the server works on them directly (cheaper than proto-plus).
_Job = batch_v1.Job.pb()
_CreateJobRequest = batch_v1.CreateJobRequest.pb()
_GetJobRequest = batch_v1.GetJobRequest.pb()
_ListJobsRequest = batch_v1.ListJobsRequest.pb()
_ListJobsResponse = batch_v1.ListJobsResponse.pb()
_DeleteJobRequest = batch_v1.DeleteJobRequest.pb()
_CancelJobRequest = batch_v1.CancelJobRequest.pb()
_CancelJobResponse = batch_v1.CancelJobResponse.pb()
_OperationMetadata = batch_v1.OperationMetadata.pb()
_States: Any = batch_v1.JobStatus.State  # an IntEnum; typed loosely upstream


def _state_value(state: str) -> int:
    try:
        return int(_States[state.strip().upper()].value)
    except KeyError:
        names = ", ".join(s.name for s in _States)
        raise ValueError(f"unknown Batch job state {state!r}; one of {names}") from None


def _state_name(value: int) -> str:
    return str(_States(value).name)


def _status_code(code: grpc.StatusCode | str) -> grpc.StatusCode:
    if isinstance(code, grpc.StatusCode):
        return code
    try:
        return grpc.StatusCode[str(code).upper()]
    except KeyError:
        raise ValueError(f"unknown gRPC status code {code!r}") from None


def _check_method(method: str | None) -> None:
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown BatchService method {method!r}; one of {', '.join(METHODS)}")


def parse_lifecycle(text: str) -> list[LifecycleStep]:
    """Parse the CLI form ``"SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED"`` into lifecycle steps."""
    steps: list[LifecycleStep] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        state, _, delay = part.partition(":")
        _state_value(state)
        steps.append((state.strip().upper(), float(delay) if delay.strip() else None))
    return steps


def _resolve_steps(steps: Sequence[LifecycleStep]) -> list[tuple[int, float]]:
    """Absolute delays for each step, filling ``None`` with the previous rhythm."""
    out: list[tuple[int, float]] = []
    prev, gap = 0.0, 0.0
    for state, delay in steps:
        at = prev + gap if delay is None else float(delay)
        if delay is None and not out:
            at = 0.0
        gap, prev = max(at - prev, 0.0), at
        out.append((_state_value(state), at))
    return out


class _Abort(Exception):
    """An RPC error a handler wants to return (converted to ``context.abort``)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass
class _Record:
    job: Any  # raw job_pb2.Job, owned by the server
    created: float  # time.monotonic() at creation
    created_wall: dt.datetime
    steps: list[tuple[int, float]]
    next_step: int = 0


class _Faults:
    """Injected failures; every access happens under the server's lock."""

    def __init__(self) -> None:
        self.fail_next: dict[str, collections.deque[tuple[grpc.StatusCode, str]]] = (
            collections.defaultdict(collections.deque)
        )
        self.lose_reply: dict[str, collections.deque[grpc.StatusCode]] = collections.defaultdict(
            collections.deque
        )
        self.deny: dict[str | None, tuple[grpc.StatusCode, str]] = {}


class InProcessBatchServer:
    """A real gRPC ``BatchService`` on loopback, with state control and fault injection.

    Args:
        host: interface to bind (loopback by default: nothing outside the machine sees it).
        port: TCP port; 0 picks a free one (read it back from :attr:`address`).
        latency: seconds every call waits before it is handled (settable later).
        lifecycle: states new jobs pass through automatically (see the module docstring).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        lifecycle: Lifecycle = (),
    ) -> None:
        self.host = host
        self._port = port
        self.latency = latency
        """Seconds each call sleeps before it is handled (never blocks other calls)."""
        self.lifecycle: Lifecycle = lifecycle
        """Lifecycle given to jobs created from now on; assign to change it."""
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._calls: collections.Counter[str] = collections.Counter()
        self._create_counts: collections.Counter[str] = collections.Counter()
        self._created = 0
        self._faults = _Faults()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._bound_port: int | None = None
        self._startup_error: BaseException | None = None
        self._grace = 0.5
        self._control: http.server.ThreadingHTTPServer | None = None
        self._control_thread: threading.Thread | None = None

    # -- lifecycle of the server ------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC endpoint (what ``BATCH_EMULATOR_HOST`` takes)."""
        if self._bound_port is None:
            raise RuntimeError("the server is not started")
        return f"{self.host}:{self._bound_port}"

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        if self._bound_port is None:
            raise RuntimeError("the server is not started")
        return self._bound_port

    def start(self) -> InProcessBatchServer:
        """Bind and serve in a background thread; returns once the port accepts calls."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="batch-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the Batch server did not start within 30 s")
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("the Batch server failed to start") from self._startup_error
        return self

    def stop(self, grace: float = 0.5) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds) and the control endpoint."""
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
            self._control = None
            if self._control_thread is not None:
                self._control_thread.join(5)
                self._control_thread = None
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            self._grace = grace
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(grace + 10)
        self._thread = None
        self._bound_port = None if self._port == 0 else self._bound_port

    def __enter__(self) -> InProcessBatchServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:  # surfaced to start() instead of dying silently
            self._startup_error = exc
            ready.set()
        finally:
            loop.close()
            self._loop = None

    async def _main(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((self._generic_handler(),))
        port = server.add_insecure_port(f"{self.host}:{self._port}")
        if port == 0:
            raise RuntimeError(f"cannot bind {self.host}:{self._port}")
        await server.start()
        self._bound_port = port
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await server.stop(self._grace)

    def _generic_handler(self) -> Any:
        def handler(method: str, impl: Callable[[Any], Any], request_cls: Any) -> Any:
            async def behaviour(request: Any, context: Any) -> Any:
                return await self._dispatch(method, impl, request, context)

            return grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=request_cls.FromString,
                response_serializer=lambda msg: msg.SerializeToString(),
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateJob": handler("CreateJob", self._create_job, _CreateJobRequest),
                "GetJob": handler("GetJob", self._get_job, _GetJobRequest),
                "ListJobs": handler("ListJobs", self._list_jobs, _ListJobsRequest),
                "DeleteJob": handler("DeleteJob", self._delete_job, _DeleteJobRequest),
                "CancelJob": handler("CancelJob", self._cancel_job, _CancelJobRequest),
            },
        )

    async def _dispatch(
        self, method: str, impl: Callable[[Any], Any], request: Any, context: Any
    ) -> Any:
        with self._lock:
            self._calls[method] += 1
        latency = self.latency
        if latency > 0:
            await asyncio.sleep(latency)
        with self._lock:
            fault = self._take_fault(method)
            lost = self._take_lost_reply(method) if fault is None else None
            try:
                response = impl(request) if fault is None else None
            except _Abort as exc:
                fault = (exc.code, exc.message)
        if fault is not None:
            await context.abort(fault[0], fault[1])
        if lost is not None:
            await context.abort(lost, f"{method} reply lost after commit (injected)")
        return response

    # -- fault injection --------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        code: grpc.StatusCode | str,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Fail the next ``times`` calls of ``method`` with ``code``, before doing anything."""
        _check_method(method)
        status = _status_code(code)
        text = message or f"{method} failed with {status.name} (injected)"
        with self._lock:
            self._faults.fail_next[method].extend([(status, text)] * times)

    def lose_reply_after_commit(
        self,
        method: str = "CreateJob",
        times: int = 1,
        code: grpc.StatusCode | str = grpc.StatusCode.UNAVAILABLE,
    ) -> None:
        """Do the next ``times`` calls of ``method``, then answer ``code`` instead of the result.

        Models a reply lost on the way back: the server stored the job, the
        client saw an error and cannot know whether it was stored.
        """
        _check_method(method)
        status = _status_code(code)
        with self._lock:
            self._faults.lose_reply[method].extend([status] * times)

    def deny(
        self,
        code: grpc.StatusCode | str = grpc.StatusCode.PERMISSION_DENIED,
        method: str | None = None,
        message: str | None = None,
    ) -> None:
        """Refuse every call of ``method`` (all methods when None) until cleared."""
        _check_method(method)
        status = _status_code(code)
        text = message or f"{method or 'call'} denied with {status.name} (injected)"
        with self._lock:
            self._faults.deny[method] = (status, text)

    def allow(self, method: str | None = None) -> None:
        """Lift a :meth:`deny` for ``method`` (None: the all-methods denial)."""
        with self._lock:
            self._faults.deny.pop(method, None)

    def reset_faults(self) -> None:
        """Clear every injected failure and denial (``latency`` stays as set)."""
        with self._lock:
            self._faults = _Faults()

    def _take_fault(self, method: str) -> tuple[grpc.StatusCode, str] | None:
        faults = self._faults
        denied = faults.deny.get(method) or faults.deny.get(None)
        if denied is not None:
            return denied
        queue = faults.fail_next.get(method)
        if queue:
            return queue.popleft()
        return None

    def _take_lost_reply(self, method: str) -> grpc.StatusCode | None:
        queue = self._faults.lose_reply.get(method)
        return queue.popleft() if queue else None

    # -- job state control and observation ---------------------------------------------

    def set_job_state(self, name_or_id: str, state: str, description: str | None = None) -> None:
        """Move a job to ``state`` now (e.g. ``"RUNNING"``); its automatic lifecycle stops."""
        value = _state_value(state)
        with self._lock:
            rec = self._record(name_or_id)
            if rec is None:
                raise KeyError(f"no Batch job {name_or_id!r}")
            self._advance(rec, time.monotonic())
            rec.next_step = len(rec.steps)
            self._transition(rec, value, dt.datetime.now(dt.UTC), description)

    def job_state(self, name_or_id: str) -> str | None:
        """The job's state name (lifecycle applied), or None when no such job exists."""
        with self._lock:
            rec = self._record(name_or_id)
            if rec is None:
                return None
            self._advance(rec, time.monotonic())
            return _state_name(rec.job.status.state)

    @property
    def jobs(self) -> dict[str, Any]:
        """A snapshot of the stored jobs: full name → ``batch_v1.Job`` (copies)."""
        now = time.monotonic()
        with self._lock:
            out = {}
            for name, rec in self._records.items():
                self._advance(rec, now)
                copy = _Job()
                copy.CopyFrom(rec.job)
                out[name] = batch_v1.Job.wrap(copy)
            return out

    @property
    def calls(self) -> dict[str, int]:
        """RPCs received per method (counted on arrival, faults and errors included)."""
        with self._lock:
            return dict(self._calls)

    @property
    def create_calls(self) -> int:
        """CreateJob RPCs received, whatever their outcome."""
        with self._lock:
            return self._calls["CreateJob"]

    @property
    def created_jobs(self) -> int:
        """Jobs actually stored by CreateJob (a duplicate submission would show here)."""
        with self._lock:
            return self._created

    def create_counts(self) -> dict[str, int]:
        """How many times a job was stored under each name (>1 means it was created twice)."""
        with self._lock:
            return dict(self._create_counts)

    def clear(self) -> None:
        """Forget every job and counter (faults and lifecycle stay)."""
        with self._lock:
            self._records.clear()
            self._calls.clear()
            self._create_counts.clear()
            self._created = 0

    def plant_job(
        self,
        job_id: str,
        *,
        labels: dict[str, str] | None = None,
        parent: str = "projects/wt-test-project/locations/us-central1",
    ) -> str:
        """Create a job as someone else would have (not counted in ``created_jobs``);
        its name. For tests of what a client does when an id is already taken."""
        request = batch_v1.CreateJobRequest(
            parent=parent,
            job_id=job_id,
            job=batch_v1.Job(
                task_groups=[
                    batch_v1.TaskGroup(
                        task_spec=batch_v1.TaskSpec(
                            runnables=[
                                batch_v1.Runnable(
                                    container=batch_v1.Runnable.Container(image_uri="other")
                                )
                            ]
                        )
                    )
                ],
                labels=labels or {},
            ),
        )
        with self._lock:
            job = self._create_job(batch_v1.CreateJobRequest.pb(request))
            self._created -= 1
            self._create_counts.pop(job.name, None)
        return str(job.name)

    def _record(self, name_or_id: str) -> _Record | None:
        if "/" in name_or_id:
            return self._records.get(name_or_id)
        suffix = f"/jobs/{name_or_id}"
        for name, rec in self._records.items():
            if name.endswith(suffix):
                return rec
        return None

    def _advance(self, rec: _Record, now: float) -> None:
        elapsed = now - rec.created
        while rec.next_step < len(rec.steps) and rec.steps[rec.next_step][1] <= elapsed:
            value, at = rec.steps[rec.next_step]
            rec.next_step += 1
            self._transition(rec, value, rec.created_wall + dt.timedelta(seconds=at), None)

    @staticmethod
    def _transition(rec: _Record, value: int, when: dt.datetime, description: str | None) -> None:
        job = rec.job
        old = _state_name(job.status.state)
        new = _state_name(value)
        job.status.state = value
        event = job.status.status_events.add()
        event.type_ = "STATUS_CHANGED"
        event.description = (
            description or f"Job state is set from {old} to {new} for job {job.name}."
        )
        event.event_time.FromDatetime(when)
        job.update_time.FromDatetime(when)

    # -- the RPCs (called under the lock) ------------------------------------------------

    def _create_job(self, request: Any) -> Any:
        parent = request.parent
        if not _PARENT.match(parent):
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"parent {parent!r} must be projects/{{project}}/locations/{{location}}",
            )
        job_id = request.job_id or f"job-{uuid.uuid4().hex[:20]}"
        if not _JOB_ID.match(job_id):
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"job_id {job_id!r} must match {_JOB_ID.pattern}",
            )
        self._validate_job(request.job)
        name = f"{parent}/jobs/{job_id}"
        if name in self._records:
            raise _Abort(grpc.StatusCode.ALREADY_EXISTS, f"Job {name} already exists")
        now_wall = dt.datetime.now(dt.UTC)
        job = _Job()
        job.CopyFrom(request.job)
        job.name = name
        job.uid = f"{job_id[:40]}-{uuid.uuid4().hex[:12]}"
        job.create_time.FromDatetime(now_wall)
        job.update_time.FromDatetime(now_wall)
        job.status.Clear()
        job.status.state = _state_value("QUEUED")
        for i, group in enumerate(job.task_groups):
            group.name = f"{name}/taskGroups/group{i}"
            group.task_count = group.task_count or 1  # the service's default
        lifecycle = self.lifecycle
        raw_steps = lifecycle(batch_v1.Job.wrap(job)) if callable(lifecycle) else lifecycle
        rec = _Record(job, time.monotonic(), now_wall, _resolve_steps(raw_steps))
        self._records[name] = rec
        self._created += 1
        self._create_counts[name] += 1
        self._advance(rec, rec.created)  # steps due at 0 s apply at once
        reply = _Job()
        reply.CopyFrom(job)
        return reply

    @staticmethod
    def _validate_job(job: Any) -> None:
        if len(job.task_groups) != 1:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a job needs exactly one task group, got {len(job.task_groups)}",
            )
        if not job.task_groups[0].task_spec.runnables:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "the task spec has no runnables")
        for where, labels in (
            ("job", job.labels),
            ("allocation_policy", job.allocation_policy.labels),
        ):
            for key, value in labels.items():
                if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                    raise _Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"invalid {where} label {key!r}={value!r}",
                    )

    def _job_for(self, name: str) -> _Record:
        if not _JOB_NAME.match(name):
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"name {name!r} must be projects/{{project}}/locations/{{location}}/jobs/{{job}}",
            )
        rec = self._records.get(name)
        if rec is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Job {name} not found")
        self._advance(rec, time.monotonic())
        return rec

    def _get_job(self, request: Any) -> Any:
        rec = self._job_for(request.name)
        reply = _Job()
        reply.CopyFrom(rec.job)
        return reply

    def _list_jobs(self, request: Any) -> Any:
        parent = request.parent
        if not _PARENT.match(parent):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {parent!r}")
        prefix = parent + "/jobs/"
        names = [n for n in self._records if n.startswith(prefix)]
        try:
            start = int(request.page_token or 0)
        except ValueError:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token") from None
        size = request.page_size if request.page_size > 0 else _DEFAULT_PAGE_SIZE
        reply = _ListJobsResponse()
        now = time.monotonic()
        for name in names[start : start + size]:
            rec = self._records[name]
            self._advance(rec, now)
            reply.jobs.add().CopyFrom(rec.job)
        if start + size < len(names):
            reply.next_page_token = str(start + size)
        return reply

    def _operation(self, target: str, verb: str, response: Any) -> Any:
        now = dt.datetime.now(dt.UTC)
        meta = _OperationMetadata()
        meta.create_time.FromDatetime(now)
        meta.end_time.FromDatetime(now)
        meta.target = target
        meta.verb = verb
        parent = _JOB_NAME.match(target)
        prefix = parent.group(1) if parent else "operations"
        op = operations_pb2.Operation(name=f"{prefix}/operations/{uuid.uuid4().hex}", done=True)
        op.metadata.Pack(meta)
        op.response.Pack(response)
        return op

    def _delete_job(self, request: Any) -> Any:
        self._job_for(request.name)
        del self._records[request.name]
        return self._operation(request.name, "delete", empty_pb2.Empty())

    def _cancel_job(self, request: Any) -> Any:
        rec = self._job_for(request.name)
        if _state_name(rec.job.status.state) not in _TERMINAL:
            rec.next_step = len(rec.steps)
            self._transition(rec, _state_value("CANCELLED"), dt.datetime.now(dt.UTC), None)
        return self._operation(request.name, "cancel", _CancelJobResponse())

    # -- HTTP control endpoint --------------------------------------------------------------

    def start_control(self, port: int = 0) -> str:
        """Serve the JSON control endpoint (see the module docstring); returns its URL."""
        if self._control is not None:
            raise RuntimeError("the control endpoint is already running")
        handler = _control_handler(self)
        self._control = http.server.ThreadingHTTPServer((self.host, port), handler)
        self._control.daemon_threads = True
        self._control_thread = threading.Thread(
            target=self._control.serve_forever, name="batch-server-control", daemon=True
        )
        self._control_thread.start()
        return f"http://{self.host}:{self._control.server_address[1]}"

    def _job_json(self, name_or_id: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._record(name_or_id)
            if rec is None:
                return None
            self._advance(rec, time.monotonic())
            return {
                "state": _state_name(rec.job.status.state),
                "job": json_format.MessageToDict(rec.job, preserving_proto_field_name=True),
            }

    def _jobs_json(self) -> dict[str, Any]:
        with self._lock:
            names = list(self._records)
        return {"jobs": {n: j for n in names if (j := self._job_json(n)) is not None}}

    def _stats_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self._calls),
                "create_calls": self._calls["CreateJob"],
                "created_jobs": self._created,
                "create_counts": dict(self._create_counts),
            }

    def _apply_faults_json(self, body: dict[str, Any]) -> None:
        if body.get("reset"):
            self.reset_faults()
        if "latency" in body:
            self.latency = float(body["latency"])
        if (spec := body.get("fail_next")) is not None:
            self.fail_next(
                spec["method"],
                spec.get("code", "UNAVAILABLE"),
                int(spec.get("times", 1)),
                spec.get("message"),
            )
        if (spec := body.get("lose_reply_after_commit")) is not None:
            self.lose_reply_after_commit(
                spec.get("method", "CreateJob"),
                int(spec.get("times", 1)),
                spec.get("code", "UNAVAILABLE"),
            )
        if (spec := body.get("deny")) is not None:
            self.deny(
                spec.get("code", "PERMISSION_DENIED"), spec.get("method"), spec.get("message")
            )
        if (spec := body.get("allow")) is not None:
            self.allow(spec.get("method"))


def _control_handler(server: InProcessBatchServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read stdout for addresses; keep it clean

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            value = json.loads(raw or b"{}")
            if not isinstance(value, dict):
                raise ValueError("the body must be a JSON object")
            return value

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path == "/jobs":
                self._reply(200, server._jobs_json())
            elif path == "/stats":
                self._reply(200, server._stats_json())
            elif path.startswith("/jobs/"):
                job = server._job_json(unquote(path[len("/jobs/") :]))
                self._reply(404 if job is None else 200, job or {"error": "no such job"})
            else:
                self._reply(404, {"error": f"no route {path}"})

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            try:
                body = self._body()
                if path.startswith("/jobs/") and path.endswith("/state"):
                    ident = unquote(path[len("/jobs/") : -len("/state")])
                    server.set_job_state(ident, str(body["state"]), body.get("description"))
                    self._reply(200, server._job_json(ident))
                elif path == "/faults":
                    server._apply_faults_json(body)
                    self._reply(200, {"ok": True})
                elif path == "/lifecycle":
                    steps = [
                        (str(s), None if d is None else float(d)) for s, d in body["lifecycle"]
                    ]
                    _resolve_steps(steps)  # validate before installing
                    server.lifecycle = steps
                    self._reply(200, {"ok": True})
                else:
                    self._reply(404, {"error": f"no route {path}"})
            except KeyError as exc:
                self._reply(404, {"error": str(exc)})
            except (ValueError, TypeError) as exc:
                self._reply(400, {"error": str(exc)})

    return Handler


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wt_invokers.testing.batch_server",
        description="Serve an in-process Google Cloud Batch stand-in (gRPC) plus a JSON "
        "control endpoint. Prints the gRPC address, then the control URL.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="gRPC port (0: a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="HTTP control port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    parser.add_argument(
        "--lifecycle", default="", help='e.g. "SCHEDULED:0.1,RUNNING:0.2,SUCCEEDED"'
    )
    parser.add_argument(
        "--deny-create",
        metavar="CODE",
        default=None,
        help="refuse every CreateJob with this gRPC status (e.g. PERMISSION_DENIED)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m wt_invokers.testing.batch_server``."""
    args = _parse_args(argv)
    server = InProcessBatchServer(
        host=args.host,
        port=args.port,
        latency=args.latency,
        lifecycle=parse_lifecycle(args.lifecycle),
    )
    if args.deny_create:
        server.deny(args.deny_create, method="CreateJob")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with server:
        control = server.start_control(args.control_port)
        sys.stdout.write(f"{server.address}\n{control}\n")
        sys.stdout.flush()
        while not done.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
