"""In-memory doubles of the runtime's collaborators, for the unit tier.

They stand in for the Kubernetes API, the invokers and the clock only where the
runtime's *decisions* are under test; the integration and chaos tiers run the
same runtime against a real API server, real processes and the real Batch
client. Each double records what it was asked, so tests assert what a user
would see: the statuses written, the Events posted, what was started or deleted.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from wt_invokers import InvocationTimeoutError
from wt_invokers.cloud_batch import BatchJobInfo, BatchJobOptions
from wt_invokers.invocation import Invocation
from wt_invokers.local import LineCallback
from wt_operator.api import RunStatus
from wt_operator.config import OperatorConfig
from wt_operator.core.errors import ReferenceResolutionError, RunGoneError
from wt_operator.core.spec import KeyRef, RunRequest
from wt_operator.metrics import Metrics
from wt_operator.shell.reconciler import Reconciler
from wt_operator.shell.refs import LogRecord, LogTarget, RunRef
from wt_operator.shell.stop import StopFlag

UID = "0b5f3c4e-9f7a-4c1d-8a53-6f1e2d3c4b5a"
REF = RunRef(namespace="team-a", name="nightly", uid=UID, generation=1)


class FakeClock:
    """Epoch time that moves only when slept on (or advanced by hand)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


@dataclasses.dataclass
class FakeKube:
    """The Kubernetes API as the runtime sees it: statuses, Events, references, logs."""

    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    patches: list[RunStatus] = dataclasses.field(default_factory=list)
    events: list[tuple[str, str, bool]] = dataclasses.field(default_factory=list)
    values: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)
    """(kind, name, key) → value of Secrets and ConfigMaps in the run's namespace."""
    logs: list[tuple[LogRecord, bool]] = dataclasses.field(default_factory=list)
    deleted: list[RunRef] = dataclasses.field(default_factory=list)
    gone: bool = False
    on_patch: Callable[[RunStatus], None] | None = None
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def patch_status(self, ref: RunRef, status: RunStatus) -> None:
        if self.gone:
            raise RunGoneError(str(ref))
        self.patches.append(status)
        self.status.update(status)
        self.changed.set()
        if self.on_patch is not None:
            self.on_patch(status)

    async def post_event(self, ref: RunRef, *, reason: str, message: str, warning: bool) -> None:
        self.events.append((reason, message, warning))

    async def read_key(self, namespace: str, ref: KeyRef) -> str | None:
        value = self.values.get((ref.kind, ref.name, ref.key))
        if value is None and not ref.optional:
            raise ReferenceResolutionError(f"{ref} not found in namespace {namespace!r}")
        return value

    async def write_log(
        self, ref: RunRef, record: LogRecord, *, target: LogTarget | None, writer: str
    ) -> LogTarget:
        self.logs.append((record, target is None))
        return target or LogTarget(f"wt-log-{ref.uid}", "log-uid")

    async def delete_run(self, ref: RunRef) -> bool:
        self.deleted.append(ref)
        return True

    async def peering_exists(self, namespace: str | None, name: str) -> bool:
        return False

    async def reached(self, phase: str) -> None:
        """Return once a status with ``phase`` has been written."""
        while phase not in self.phases:
            self.changed.clear()
            await self.changed.wait()

    @property
    def phases(self) -> list[str]:
        # Transitions only: the log's location is a patch of its own (status.log).
        return [str(p.get("phase")) for p in self.patches if "phase" in p]

    @property
    def reasons(self) -> list[str]:
        return [str(p.get("reason")) for p in self.patches if "phase" in p]


@dataclasses.dataclass
class FakeLocal:
    """A local workflow that exits with ``exit_code`` after ``seconds`` (real, keep tiny)."""

    installed: bool = True
    exit_code: int = 0
    seconds: float = 0.0
    output: tuple[str, ...] = ()
    start_error: BaseException | None = None
    started: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    invocation: Invocation | None = None
    phase_at_start: str | None = None
    cancelled: int = 0
    callback: LineCallback | None = None
    status_view: dict[str, Any] | None = None
    """The run's status as the API server has it (FakeKube.status)."""

    async def is_installed(self) -> bool:
        return self.installed

    async def start(self, invocation: Invocation) -> None:
        if self.start_error is not None:
            raise self.start_error
        self.invocation = invocation
        if self.status_view is not None:
            self.phase_at_start = self.status_view.get("phase")
        for line in self.output:
            if self.callback is not None:
                self.callback("stdout", line)
        self.started.set()

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        if timeout is not None and timeout < self.seconds:
            await asyncio.sleep(timeout)
            raise InvocationTimeoutError(error_msg or "timed out")
        await asyncio.sleep(self.seconds)
        return self.exit_code

    async def cancel(self) -> int | None:
        self.cancelled += 1
        return None


@dataclasses.dataclass
class FakeBatch:
    """Cloud Batch as the runtime sees it: submit/adopt, states polled in turn, delete."""

    submit_error: BaseException | None = None
    submit_state: str = "QUEUED"
    states: list[str] = dataclasses.field(default_factory=lambda: ["SUCCEEDED"])
    get_error: BaseException | None = None
    delete_errors: list[BaseException] = dataclasses.field(default_factory=list)
    submitted: list[tuple[Invocation, BatchJobOptions, str | None, Mapping[str, str]]] = (
        dataclasses.field(default_factory=list)
    )
    polls: int = 0
    cancelled: list[str | None] = dataclasses.field(default_factory=list)
    deleted: list[str | None] = dataclasses.field(default_factory=list)
    delete_policies: list[Any] = dataclasses.field(default_factory=list)
    submit_started: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    hold_submit: bool = False

    def job_name_for(self, key: str, readable: str | None = None) -> str:
        return f"projects/p/locations/us-central1/jobs/wt-{readable}-{key[:8]}"

    async def submit(
        self,
        invocation: Invocation,
        options: BatchJobOptions,
        *,
        job_id: str | None = None,
        secret_env: Mapping[str, str] | None = None,
    ) -> BatchJobInfo:
        self.submit_started.set()
        if self.hold_submit:
            await asyncio.Event().wait()
        if self.submit_error is not None:
            raise self.submit_error
        self.submitted.append((invocation, options, job_id, dict(secret_env or {})))
        return BatchJobInfo(
            f"projects/p/locations/us-central1/jobs/{job_id}", "job-uid-1", self.submit_state
        )

    async def get_job(self, job_name: str | None = None) -> BatchJobInfo:
        self.polls += 1
        if self.get_error is not None:
            raise self.get_error
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return BatchJobInfo(job_name or "", "job-uid-1", state, "exit code 0")

    async def cancel_job(self, job_name: str | None = None) -> None:
        self.cancelled.append(job_name)

    async def delete_job(self, job_name: str | None = None, *, retry: Any = None) -> None:
        self.deleted.append(job_name)
        self.delete_policies.append(retry)
        if self.delete_errors:
            raise self.delete_errors.pop(0)


@dataclasses.dataclass
class FakeInvokers:
    """The invoker factory: hands out the scripted doubles, remembers stale-process kills."""

    local_invoker: FakeLocal = dataclasses.field(default_factory=FakeLocal)
    batch_invoker: FakeBatch = dataclasses.field(default_factory=FakeBatch)
    stale: dict[str, int] = dataclasses.field(default_factory=dict)
    """marker → processes a kill finds."""
    survivors: dict[str, int] = dataclasses.field(default_factory=dict)
    """marker → how many more times leftovers() still reports processes."""
    killed: list[str] = dataclasses.field(default_factory=list)

    @property
    def workspace(self) -> str:
        return "/workspace"

    def local(self, req: RunRequest, *, line_callback: LineCallback) -> FakeLocal:
        self.local_invoker.callback = line_callback
        return self.local_invoker

    def batch(self, req: RunRequest) -> FakeBatch:
        return self.batch_invoker

    def cloud_run(self, req: RunRequest) -> Any:
        raise NotImplementedError("CloudRunJob runs are tested against the Cloud Run stand-in")

    async def kill_stale(self, marker: str) -> int:
        self.killed.append(marker)
        return self.stale.pop(marker, 0)

    async def attach(
        self, marker: str, req: RunRequest, *, line_callback: LineCallback
    ) -> FakeLocal | None:
        return None

    async def leftovers(self, marker: str) -> set[int]:
        left = self.survivors.get(marker, 0)
        if left:
            self.survivors[marker] = left - 1
            return {4242}
        return set()


def make_runtime(
    kube: FakeKube | None = None,
    invokers: FakeInvokers | None = None,
    clock: FakeClock | None = None,
    **settings: Any,
) -> tuple[Reconciler, FakeKube, FakeInvokers, FakeClock]:
    kube = kube or FakeKube()
    invokers = invokers or FakeInvokers()
    clock = clock or FakeClock()
    invokers.local_invoker.status_view = kube.status
    config = dataclasses.replace(OperatorConfig.from_env({}), **settings)
    runtime = Reconciler(config, kube, invokers, clock=clock, metrics=Metrics())
    return runtime, kube, invokers, clock


async def reconcile(
    runtime: Reconciler,
    spec: Mapping[str, Any],
    status: Mapping[str, Any] | None = None,
    stop: StopFlag | None = None,
    ref: RunRef = REF,
) -> None:
    """One daemon's life, awaited to the end (with a safety timeout)."""
    await asyncio.wait_for(runtime.reconcile(ref, spec, status or {}, stop or StopFlag()), 10)
