"""What a Local run promises, each failing by assertion (never by a timeout) when broken.

A run that should end but waits forever is stopped by a watchdog after a bounded
number of event-loop rounds (not a wall-clock time, so load cannot make it flaky),
and the test then says which promise was broken. Several runs share one runtime here,
as they share one operator, to see the concurrency limit itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.fakes import REF, FakeInvokers, FakeKube, FakeLocal, make_runtime
from wt_invokers.local import LineCallback
from wt_operator.api import Phase, Reason, RunStatus
from wt_operator.core import local
from wt_operator.core.errors import Terminal
from wt_operator.core.local import Exited, Stopped, TimedOut
from wt_operator.core.spec import RunRequest, parse_spec
from wt_operator.core.status import now_iso
from wt_operator.core.stopping import Stopping
from wt_operator.shell.refs import RunRef
from wt_operator.shell.stop import StopFlag

SPEC: dict[str, Any] = {
    "workflow": "wt-sample-workflow >=1.2",
    "invoker": "Local",
    "resultsUrl": "file:///tmp/results/",
}
ROUNDS = 500


async def settle(done: Callable[[], bool], rounds: int = ROUNDS) -> bool:
    """Let the event loop run until ``done()`` or ``rounds`` iterations passed.

    Each round also gives worker threads a moment (a run builds its masker in one), so a
    bound in rounds holds on a loaded machine too; still a bound, never a timing check.
    """
    for i in range(rounds):
        if done():
            return True
        await asyncio.sleep(0 if i % 2 else 0.001)
    return done()


async def stop_after(stop: StopFlag, rounds: int = ROUNDS) -> None:
    """The watchdog: stop a run as an exiting operator would, if it is still going."""
    for _ in range(rounds):
        await asyncio.sleep(0)
    stop.set(Stopping.OPERATOR)


@dataclasses.dataclass
class GatedLocal(FakeLocal):
    """A workflow that runs until the test opens its gate; counts how many run at once."""

    gate: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    board: dict[str, int] = dataclasses.field(default_factory=dict)

    async def start(self, invocation: Any) -> None:
        await super().start(invocation)
        self.board["now"] = self.board.get("now", 0) + 1
        self.board["max"] = max(self.board.get("max", 0), self.board["now"])

    async def wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        try:
            await self.gate.wait()
        finally:
            self.board["now"] -= 1
        return 0


@dataclasses.dataclass
class ManyLocals(FakeInvokers):
    """One gated workflow per run, all behind the same gate."""

    gate: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    board: dict[str, int] = dataclasses.field(default_factory=dict)
    made: list[GatedLocal] = dataclasses.field(default_factory=list)

    def local(self, req: RunRequest, *, line_callback: LineCallback) -> GatedLocal:
        inv = GatedLocal(gate=self.gate, board=self.board, callback=line_callback)
        self.made.append(inv)
        return inv


@dataclasses.dataclass
class RunsKube(FakeKube):
    """Keeps each run's phases apart (one operator, many runs)."""

    by_run: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    async def patch_status(self, ref: RunRef, status: RunStatus) -> None:
        await super().patch_status(ref, status)
        self.by_run.setdefault(ref.name, []).append(str(status.get("phase")))


def ref(name: str) -> RunRef:
    return dataclasses.replace(REF, name=name, uid=f"uid-{name}")


async def test_no_more_local_runs_than_the_limit_run_at_once_and_the_rest_queue() -> None:
    invokers = ManyLocals()
    runtime, kube, _, _ = make_runtime(RunsKube(), invokers, max_concurrent_local_runs=2)
    assert isinstance(kube, RunsKube)
    names = ["a", "b", "c"]
    tasks = []
    for n in names:  # one after the other, as their daemons start
        tasks.append(asyncio.create_task(runtime.reconcile(ref(n), SPEC, {}, StopFlag())))
        await settle(lambda n=n: bool(kube.by_run.get(n)))  # type: ignore[misc]
    queued_one = await settle(lambda: sum(p == ["Queued"] for p in kube.by_run.values()) == 1)
    assert queued_one, f"not exactly one run queued behind the limit: {kube.by_run}"
    assert await settle(lambda: invokers.board.get("max", 0) >= 2), "the free slots went unused"
    assert invokers.board["max"] == 2, "more Local runs ran at once than the limit"
    queued = [n for n in names if kube.by_run.get(n) == ["Queued"]]
    assert len(queued) == 1
    assert "limit 2" in next(p["message"] for p in kube.patches if p["phase"] == "Queued")
    invokers.gate.set()  # the two running ones end: the queued one takes a freed slot
    assert await settle(lambda: all(t.done() for t in tasks)), "the queued run never started"
    assert kube.by_run[queued[0]] == ["Queued", "Running", "Succeeded"]
    assert invokers.board["max"] == 2
    assert len(invokers.made) == 3


async def test_runs_arriving_at_once_beyond_the_limit_are_each_recorded_queued() -> None:
    # All three daemons start in one loop turn: the one that must wait still says so.
    invokers = ManyLocals()
    runtime, kube, _, _ = make_runtime(RunsKube(), invokers, max_concurrent_local_runs=2)
    assert isinstance(kube, RunsKube)
    tasks = [asyncio.create_task(runtime.reconcile(ref(n), SPEC, {}, StopFlag())) for n in "abc"]
    queued_one = await settle(lambda: sum(p == ["Queued"] for p in kube.by_run.values()) == 1)
    assert queued_one, f"the run waiting for a slot was not recorded Queued: {kube.by_run}"
    assert await settle(lambda: invokers.board.get("max", 0) >= 2), "the free slots went unused"
    assert invokers.board["max"] == 2
    invokers.gate.set()
    assert await settle(lambda: all(t.done() for t in tasks)), "the queued run never started"
    assert sorted(kube.by_run.values()) == [
        ["Queued", "Running", "Succeeded"],
        ["Running", "Succeeded"],
        ["Running", "Succeeded"],
    ]


async def test_a_queued_run_whose_deadline_passed_fails_without_starting() -> None:
    runtime, kube, invokers, clock = make_runtime(max_concurrent_local_runs=1)
    await runtime.local.slots.acquire()  # another run holds the only slot
    moment = dt.datetime.fromtimestamp(clock.now() - 30, dt.UTC)
    stop = StopFlag()
    watchdog = asyncio.create_task(stop_after(stop))
    await runtime.reconcile(
        REF, {**SPEC, "activeDeadlineSeconds": 30}, {"startTime": now_iso(moment)}, stop
    )
    watchdog.cancel()
    assert stop.why() is None, "the queued run ignored its deadline (the watchdog stopped it)"
    assert kube.reasons == ["Queued", "DeadlineExceeded"]
    assert invokers.local_invoker.invocation is None  # never started


async def test_not_installed_is_said_at_once_not_after_a_wait_in_the_queue() -> None:
    runtime, kube, _, _ = make_runtime(
        invokers=FakeInvokers(FakeLocal(installed=False)), max_concurrent_local_runs=1
    )
    await runtime.local.slots.acquire()
    stop = StopFlag()
    watchdog = asyncio.create_task(stop_after(stop))
    await runtime.reconcile(REF, SPEC, {}, stop)
    watchdog.cancel()
    assert stop.why() is None, "it waited in the queue (the watchdog stopped it)"
    assert kube.reasons == ["NotInstalled"]
    assert "wt-sample-workflow >=1.2" in kube.status["message"]


async def test_a_secret_is_read_when_the_run_starts_not_when_it_was_queued() -> None:
    kube = FakeKube(values={("Secret", "creds", "token"): "old-token-value"})
    runtime, _, invokers, _ = make_runtime(kube, max_concurrent_local_runs=1)
    await runtime.local.slots.acquire()
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    task = asyncio.create_task(runtime.reconcile(REF, {**SPEC, "env": env}, {}, StopFlag()))
    assert await settle(lambda: kube.phases == ["Queued"])
    kube.values[("Secret", "creds", "token")] = "rotated-token-value"
    runtime.local.slots.release()
    await asyncio.wait_for(task, 10)
    inv = invokers.local_invoker.invocation
    assert inv is not None and inv.extra_env["TOKEN"] == "rotated-token-value"


def _req() -> RunRequest:
    return parse_spec({**SPEC, "activeDeadlineSeconds": 90}, uid="u-1")


@pytest.mark.parametrize(
    ("result", "phase", "reason", "code"),
    [
        (Exited(0), Phase.SUCCEEDED, Reason.SUCCEEDED, 0),
        (Exited(3), Phase.FAILED, Reason.FAILED, 3),
        (Exited(137), Phase.FAILED, Reason.FAILED, 137),
        (TimedOut(), Phase.FAILED, Reason.DEADLINE_EXCEEDED, None),
        (Stopped(Stopping.DELETED), Phase.CANCELLED, Reason.CANCELLED, None),
        (Stopped(Stopping.OPERATOR), Phase.FAILED, Reason.INVOKER_LOST, None),
        (Terminal(Reason.START_FAILED, "E2BIG"), Phase.FAILED, Reason.START_FAILED, None),
    ],
)
def test_every_way_a_local_run_ends_has_its_phase_and_reason(
    result: local.LocalOutcome, phase: Phase, reason: Reason, code: int | None
) -> None:
    t = local.outcome(result, _req(), tail="line 1\nline 2")
    assert (t.phase, t.reason, t.exit_code, t.terminal) == (phase, reason, code, True)
    if code:
        assert t.message == f"the workflow exited with {code}\nlast output:\nline 1\nline 2"
        assert t.result == str(code)


def test_a_timed_out_run_names_its_deadline() -> None:
    assert "activeDeadlineSeconds=90 exceeded" in local.outcome(TimedOut(), _req(), tail="").message


@pytest.mark.parametrize(
    ("phase", "plan"),
    [
        ("Pending", local.Resume.START),
        ("Queued", local.Resume.START),
        ("Running", local.Resume.LOST),
    ],
)
def test_a_run_found_running_is_never_started_again(phase: str, plan: local.Resume) -> None:
    assert local.resume(phase) is plan


def test_leaving_a_queued_run_records_nothing_but_deleting_it_cancels_it() -> None:
    assert local.stopped_while_queued(Stopping.OPERATOR) is None
    cancelled = local.stopped_while_queued(Stopping.DELETED)
    assert cancelled is not None and cancelled.phase == Phase.CANCELLED


def test_a_lost_run_says_whether_its_orphan_was_killed() -> None:
    assert "has been killed" in local.lost(2).message
    assert "is gone" in local.lost(0).message
    assert local.lost(0).reason == Reason.INVOKER_LOST


async def test_processes_surviving_a_cancel_are_killed_again_with_capped_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each jittered pause at its upper bound, so the bounds themselves are seen.
    monkeypatch.setattr("wt_invokers.retry.random.uniform", lambda low, high: high)
    local = FakeLocal(seconds=30)
    invokers = FakeInvokers(local, survivors={REF.uid: 5})
    runtime, kube, _, clock = make_runtime(invokers=invokers, retry_backoff_max=2.0)
    stop = StopFlag()
    task = asyncio.create_task(runtime.reconcile(REF, SPEC, {}, stop))
    await local.started.wait()
    stop.set(Stopping.DELETED)
    await asyncio.wait_for(task, 10)
    assert kube.reasons == ["Running", "Cancelling", "Cancelled"]
    assert invokers.killed == [REF.uid] * 5
    # The one retry loop's pauses: 1 s doubling to the cap, taken on the run's clock (so
    # this test waits for none of them).
    assert clock.slept == [1.0, 2.0, 2.0, 2.0, 2.0]
    assert "survived SIGKILL" in kube.patches[1]["message"]


async def test_a_secret_printed_by_the_workflow_is_masked_in_the_operators_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = FakeKube(values={("Secret", "creds", "token"): "s3cr3t-value-x\n"})
    local = FakeLocal(output=("token is s3cr3t-value-x", "bye"), exit_code=1)
    runtime, _, _, _ = make_runtime(kube, FakeInvokers(local))
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    with caplog.at_level(logging.INFO):
        await asyncio.wait_for(runtime.reconcile(REF, {**SPEC, "env": env}, {}, StopFlag()), 10)
    assert "token is ***" in caplog.text  # the output is logged …
    assert "s3cr3t" not in caplog.text  # … masked
    assert "s3cr3t" not in str(kube.patches) + str(kube.events) + str(kube.logs)
