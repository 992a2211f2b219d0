"""The Batch stand-in's job store: the five RPCs over jobs held in memory, validated like GCP.

Exists so that what the service *does* (store, validate, page, cancel, delete) is
plain synchronous code apart from how it is served: the gRPC server calls these
methods with raw request protos, tests call the control and observation methods.
Validation mirrors the real service: the job-id pattern, ``ALREADY_EXISTS``,
``NOT_FOUND``, exactly one task group with runnables, label syntax. ListJobs
ignores ``filter`` and ``order_by`` (jobs come in creation order).
"""

from __future__ import annotations

import collections
import datetime as dt
import re
import threading
import time
import uuid
from typing import Any

import grpc
from google.cloud import batch_v1
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from wt_testkit.batch.faults import RpcError
from wt_testkit.batch.lifecycle import (
    TERMINAL_STATES,
    JobRecord,
    Lifecycle,
    resolve_steps,
    state_name,
    state_value,
)

__all__ = ["JobStore"]

_JOB_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_PARENT = re.compile(r"^projects/[^/]+/locations/[^/]+$")
_JOB_NAME = re.compile(r"^(projects/[^/]+/locations/[^/]+)/jobs/([^/]+)$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_DEFAULT_PAGE_SIZE = 100

# Raw protobuf classes: the store works on them directly (cheaper than proto-plus).
_Job = batch_v1.Job.pb()
_ListJobsResponse = batch_v1.ListJobsResponse.pb()
_CancelJobResponse = batch_v1.CancelJobResponse.pb()
_OperationMetadata = batch_v1.OperationMetadata.pb()


def _copy(job: Any) -> Any:
    out = _Job()
    out.CopyFrom(job)
    return out


class JobStore:
    """Jobs by full name, call counters, and the lifecycle new jobs get; thread-safe.

    Args:
        lifecycle: states new jobs pass through automatically (see :mod:`wt_testkit.batch`).
    """

    def __init__(self, lifecycle: Lifecycle = ()) -> None:
        self.lifecycle: Lifecycle = lifecycle
        """Lifecycle given to jobs created from now on; assign to change it."""
        self._jobs_lock = threading.Lock()
        self._records: dict[str, JobRecord] = {}
        self._calls: collections.Counter[str] = collections.Counter()
        self._create_counts: collections.Counter[str] = collections.Counter()
        self._created = 0

    # -- control and observation ---------------------------------------------------------

    def set_job_state(self, name_or_id: str, state: str, description: str | None = None) -> None:
        """Move a job to ``state`` now (e.g. ``"RUNNING"``); its automatic lifecycle stops."""
        value = state_value(state)
        with self._jobs_lock:
            rec = self._find(name_or_id)
            if rec is None:
                raise KeyError(f"no Batch job {name_or_id!r}")
            rec.advance(time.monotonic())
            rec.stop_lifecycle()
            rec.transition(value, dt.datetime.now(dt.UTC), description)

    def job(self, name_or_id: str) -> batch_v1.Job | None:
        """A copy of one job (lifecycle applied), by full name or job id; None when absent."""
        with self._jobs_lock:
            rec = self._find(name_or_id)
            if rec is None:
                return None
            rec.advance(time.monotonic())
            job: batch_v1.Job = batch_v1.Job.wrap(_copy(rec.job))
            return job

    def job_state(self, name_or_id: str) -> str | None:
        """The job's state name (lifecycle applied), or None when no such job exists."""
        job = self.job(name_or_id)
        return None if job is None else state_name(batch_v1.Job.pb(job).status.state)

    @property
    def jobs(self) -> dict[str, Any]:
        """A snapshot of the stored jobs: full name → ``batch_v1.Job`` (copies)."""
        now = time.monotonic()
        with self._jobs_lock:
            out = {}
            for name, rec in self._records.items():
                rec.advance(now)
                out[name] = batch_v1.Job.wrap(_copy(rec.job))
            return out

    def count_call(self, method: str) -> None:
        """Count one arriving RPC (before latency, faults or errors)."""
        with self._jobs_lock:
            self._calls[method] += 1

    @property
    def calls(self) -> dict[str, int]:
        """RPCs received per method (counted on arrival, faults and errors included)."""
        with self._jobs_lock:
            return dict(self._calls)

    @property
    def create_calls(self) -> int:
        """CreateJob RPCs received, whatever their outcome."""
        with self._jobs_lock:
            return self._calls["CreateJob"]

    @property
    def created_jobs(self) -> int:
        """Jobs actually stored by CreateJob (a duplicate submission would show here)."""
        with self._jobs_lock:
            return self._created

    def create_counts(self) -> dict[str, int]:
        """How many times a job was stored under each name (>1 means it was created twice)."""
        with self._jobs_lock:
            return dict(self._create_counts)

    def plant_job(
        self,
        job_id: str,
        *,
        labels: dict[str, str] | None = None,
        parent: str = "projects/wt-test-project/locations/us-central1",
    ) -> str:
        """Store a job as someone else would have (not counted in ``created_jobs``); its name.

        For tests of what a client does when the id it wants is already taken.
        """
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
        with self._jobs_lock:
            job = self._create_job(batch_v1.CreateJobRequest.pb(request))
            self._created -= 1
            self._create_counts.pop(job.name, None)
        return str(job.name)

    def clear(self) -> None:
        """Forget every job and counter (faults and lifecycle stay)."""
        with self._jobs_lock:
            self._records.clear()
            self._calls.clear()
            self._create_counts.clear()
            self._created = 0

    def _find(self, name_or_id: str) -> JobRecord | None:
        if "/" in name_or_id:
            return self._records.get(name_or_id)
        suffix = f"/jobs/{name_or_id}"
        for name, rec in self._records.items():
            if name.endswith(suffix):
                return rec
        return None

    # -- the RPCs: raw request proto in, raw reply proto out, RpcError for a status --------

    def handle(self, method: str, request: Any) -> Any:
        """Answer one RPC of :data:`~wt_testkit.batch.faults.METHODS`."""
        rpcs = {
            "CreateJob": self._create_job,
            "GetJob": self._get_job,
            "ListJobs": self._list_jobs,
            "DeleteJob": self._delete_job,
            "CancelJob": self._cancel_job,
        }
        with self._jobs_lock:
            return rpcs[method](request)

    def _create_job(self, request: Any) -> Any:
        parent = request.parent
        if not _PARENT.match(parent):
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"parent {parent!r} must be projects/{{project}}/locations/{{location}}",
            )
        job_id = request.job_id or f"job-{uuid.uuid4().hex[:20]}"
        if not _JOB_ID.match(job_id):
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT, f"job_id {job_id!r} must match {_JOB_ID.pattern}"
            )
        _validate_job(request.job)
        name = f"{parent}/jobs/{job_id}"
        if name in self._records:
            raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"Job {name} already exists")
        now_wall = dt.datetime.now(dt.UTC)
        job = _copy(request.job)
        job.name = name
        job.uid = f"{job_id[:40]}-{uuid.uuid4().hex[:12]}"
        job.create_time.FromDatetime(now_wall)
        job.update_time.FromDatetime(now_wall)
        job.status.Clear()
        job.status.state = state_value("QUEUED")
        for i, group in enumerate(job.task_groups):
            group.name = f"{name}/taskGroups/group{i}"
            group.task_count = group.task_count or 1  # the service's default
        lifecycle = self.lifecycle
        raw_steps = lifecycle(batch_v1.Job.wrap(job)) if callable(lifecycle) else lifecycle
        rec = JobRecord(job, time.monotonic(), now_wall, resolve_steps(raw_steps))
        self._records[name] = rec
        self._created += 1
        self._create_counts[name] += 1
        rec.advance(rec.created)  # steps due at 0 s apply at once
        return _copy(job)

    def _job_for(self, name: str) -> JobRecord:
        if not _JOB_NAME.match(name):
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"name {name!r} must be projects/{{project}}/locations/{{location}}/jobs/{{job}}",
            )
        rec = self._records.get(name)
        if rec is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Job {name} not found")
        rec.advance(time.monotonic())
        return rec

    def _get_job(self, request: Any) -> Any:
        return _copy(self._job_for(request.name).job)

    def _list_jobs(self, request: Any) -> Any:
        parent = request.parent
        if not _PARENT.match(parent):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {parent!r}")
        prefix = parent + "/jobs/"
        names = [n for n in self._records if n.startswith(prefix)]
        try:
            start = int(request.page_token or 0)
        except ValueError:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token") from None
        size = request.page_size if request.page_size > 0 else _DEFAULT_PAGE_SIZE
        reply = _ListJobsResponse()
        now = time.monotonic()
        for name in names[start : start + size]:
            rec = self._records[name]
            rec.advance(now)
            reply.jobs.add().CopyFrom(rec.job)
        if start + size < len(names):
            reply.next_page_token = str(start + size)
        return reply

    def _delete_job(self, request: Any) -> Any:
        self._job_for(request.name)
        del self._records[request.name]
        return _operation(request.name, "delete", empty_pb2.Empty())

    def _cancel_job(self, request: Any) -> Any:
        rec = self._job_for(request.name)
        if state_name(rec.job.status.state) not in TERMINAL_STATES:
            rec.stop_lifecycle()
            rec.transition(state_value("CANCELLED"), dt.datetime.now(dt.UTC))
        return _operation(request.name, "cancel", _CancelJobResponse())


def _validate_job(job: Any) -> None:
    if len(job.task_groups) != 1:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"a job needs exactly one task group, got {len(job.task_groups)}",
        )
    if not job.task_groups[0].task_spec.runnables:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "the task spec has no runnables")
    for where, labels in (("job", job.labels), ("allocation_policy", job.allocation_policy.labels)):
        for key, value in labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"invalid {where} label {key!r}={value!r}"
                )


def _operation(target: str, verb: str, response: Any) -> Any:
    """An already-finished long-running ``Operation`` (DeleteJob and CancelJob return one)."""
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
