"""What a run's status promises to people, ``kubectl wait`` and GitOps tools, phase by phase.

The README promises conditions ``Succeeded`` (Unknown/True/False) plus kstatus's
``Reconciling``/``Ready``/``Stalled``: ``kubectl wait --for=condition=Ready`` must never
pass on a run that failed or was cancelled, and every ending that is not a success
must read as stalled. One table covers every phase, so a condition that lies for a
phase nobody thought of fails here by assertion. Masking is tested only through the
public :class:`Masker` API, so it holds for any correct implementation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from tests.unit.fakes import REF, FakeClock, FakeKube
from wt_operator.api import Phase, Reason
from wt_operator.core.masking import MASK, Masker
from wt_operator.core.status import Transition, is_active, status_patch
from wt_operator.metrics import Metrics
from wt_operator.shell.context import RunContext
from wt_operator.shell.stop import StopFlag

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)

# (phase, reason) → expected (Succeeded, Reconciling, Ready, Stalled)
IN_FLIGHT = ("Unknown", "True", "False", "False")
SUCCESS = ("True", "False", "True", "False")
NOT_A_SUCCESS = ("False", "False", "False", "True")
TABLE: list[tuple[Phase, Reason, tuple[str, str, str, str]]] = [
    (Phase.PENDING, Reason.PENDING, IN_FLIGHT),
    (Phase.QUEUED, Reason.QUEUED, IN_FLIGHT),
    (Phase.RUNNING, Reason.RUNNING, IN_FLIGHT),
    (Phase.RUNNING, Reason.CANCELLING, IN_FLIGHT),
    (Phase.SUBMITTED, Reason.SUBMITTED, IN_FLIGHT),
    (Phase.SUCCEEDED, Reason.SUCCEEDED, SUCCESS),
    (Phase.FAILED, Reason.FAILED, NOT_A_SUCCESS),
    (Phase.FAILED, Reason.DEADLINE_EXCEEDED, NOT_A_SUCCESS),
    (Phase.FAILED, Reason.INVOKER_LOST, NOT_A_SUCCESS),
    (Phase.FAILED, Reason.POLICY_DENIED, NOT_A_SUCCESS),
    (Phase.CANCELLED, Reason.CANCELLED, NOT_A_SUCCESS),
]


def _patch(t: Transition, previous: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    now = kw.pop("now", NOW)
    return dict(status_patch(t, previous=previous or {}, generation=7, now=now))


def _conditions(patch: dict[str, Any]) -> tuple[str, ...]:
    by_type = {c["type"]: c["status"] for c in patch["conditions"]}
    return tuple(by_type[t] for t in ("Succeeded", "Reconciling", "Ready", "Stalled"))


@pytest.mark.parametrize(("phase", "reason", "expected"), TABLE)
def test_every_phase_reads_the_same_to_kubectl_wait_and_to_gitops_tools(
    phase: Phase, reason: Reason, expected: tuple[str, str, str, str]
) -> None:
    patch = _patch(Transition(phase, reason, "why\nmore"))
    assert _conditions(patch) == expected
    assert patch["observedGeneration"] == 7
    assert all(c["observedGeneration"] == 7 for c in patch["conditions"])
    terminal = expected != IN_FLIGHT
    assert ("completionTime" in patch) is terminal
    assert ("duration" in patch) is terminal
    assert is_active(patch) is not terminal


@pytest.mark.parametrize(
    ("phase", "reason"),
    [(Phase.FAILED, Reason.FAILED), (Phase.CANCELLED, Reason.CANCELLED)],
)
def test_a_run_that_did_not_succeed_is_never_ready(phase: Phase, reason: Reason) -> None:
    running = _patch(Transition(Phase.RUNNING, Reason.RUNNING, "running"))
    ended = _patch(Transition(phase, reason, "over"), previous=running)
    ready = {c["type"]: c for c in ended["conditions"]}["Ready"]
    assert ready["status"] == "False"  # kubectl wait --for=condition=Ready must not pass


def test_a_stalled_run_says_why_and_an_in_flight_one_says_nothing() -> None:
    failed = _patch(Transition(Phase.FAILED, Reason.FAILED, "exited with 3"))
    stalled = {c["type"]: c for c in failed["conditions"]}["Stalled"]
    assert stalled["message"] == "exited with 3" and stalled["reason"] == "Failed"
    running = _patch(Transition(Phase.RUNNING, Reason.RUNNING, "running"))
    assert {c["type"]: c for c in running["conditions"]}["Stalled"]["message"] == ""


def test_start_time_is_the_first_transitions_and_duration_counts_from_it() -> None:
    queued = _patch(Transition(Phase.QUEUED, Reason.QUEUED, "waiting"))
    later = NOW + dt.timedelta(seconds=125)
    done = _patch(Transition(Phase.SUCCEEDED, Reason.SUCCEEDED, "ok"), previous=queued, now=later)
    assert done["startTime"] == "2026-11-28T12:00:00Z"
    assert done["completionTime"] == "2026-11-28T12:02:05Z"
    assert done["duration"] == "2m5s"


def test_condition_times_move_only_when_their_status_flips() -> None:
    running = _patch(Transition(Phase.RUNNING, Reason.RUNNING, "running"))
    later = NOW + dt.timedelta(seconds=30)
    failed = _patch(Transition(Phase.FAILED, Reason.FAILED, "no"), previous=running, now=later)
    times = {c["type"]: c["lastTransitionTime"] for c in failed["conditions"]}
    assert times["Ready"] == "2026-11-28T12:00:00Z"  # False → False: kept
    assert times["Stalled"] == "2026-11-28T12:00:30Z"  # False → True: moved


@pytest.mark.parametrize(
    ("reason", "warning"),
    [
        (Reason.RUNNING, False),
        (Reason.SUBMITTED, False),
        (Reason.SUCCEEDED, False),
        (Reason.QUEUED, False),
        (Reason.FAILED, True),
        (Reason.CANCELLED, True),
        (Reason.CANCELLING, True),
        (Reason.DEADLINE_EXCEEDED, True),
        (Reason.INVALID_SPEC, True),
    ],
)
def test_only_the_happy_path_posts_normal_events(reason: Reason, warning: bool) -> None:
    assert Transition(Phase.FAILED, reason, "x").warning is warning


def test_an_event_carries_the_first_line_of_a_multi_line_message() -> None:
    t = Transition(Phase.FAILED, Reason.FAILED, "the workflow exited with 3\nlast output:\nboom")
    assert t.summary == "the workflow exited with 3"


@pytest.mark.parametrize("order", [1, -1])
def test_a_secret_that_extends_another_is_masked_whole(order: int) -> None:
    short, long = "token-abc", "token-abc-extra-tail"
    masker = Masker([short, long][::order])
    masked = masker.mask(f"token={long} and {short}.")
    assert "extra-tail" not in masked  # no tail of the longer one leaks
    assert short not in masked and long not in masked
    assert masked.startswith(f"token={MASK}") and masked.endswith(f" and {MASK}.")


def test_a_secret_inside_a_longer_one_leaves_nothing_of_either() -> None:
    inner, outer = "SECRET", "xx-SECRET-yy"
    masked = Masker([inner, outer]).mask(f"a {outer} b {inner} c")
    assert "xx-" not in masked and "-yy" not in masked and "SECRET" not in masked
    assert masked.count(MASK) >= 2


def test_every_form_of_a_secret_is_masked() -> None:
    masker = Masker(["file-secret\n", "line-one-of-it\nline-two-of-it\n"])
    assert "file-secret" not in masker.mask("got file-secret!")
    assert "line-two-of-it" not in masker.mask("printed line-two-of-it alone")
    assert "line-one-of-it" not in masker.mask("line-one-of-it")


async def test_a_recorded_status_and_its_event_never_carry_a_secret() -> None:
    kube = FakeKube()
    spawned: list[Any] = []
    logger = _NullLogger()
    ctx = RunContext(
        REF,
        {},
        invoker="Local",
        stop=StopFlag(),
        logger=logger,  # type: ignore[arg-type]
        kube=kube,
        clock=FakeClock(),
        metrics=Metrics(),
        spawn=spawned.append,
    )
    ctx.masker = Masker(["hunter2-password"])
    await ctx.record(
        Transition(Phase.FAILED, Reason.FAILED, "printed hunter2-password\nthen hunter2-password")
    )
    for aw in spawned:
        await aw
    assert "hunter2" not in str(kube.patches)
    assert "hunter2" not in str(kube.events)
    assert "hunter2" not in str(logger.lines)  # the operator's own log
    assert kube.status["message"] == f"printed {MASK}\nthen {MASK}"


@dataclasses.dataclass
class _NullLogger:
    """Keeps the operator's log lines about the run, formatted."""

    lines: list[str] = dataclasses.field(default_factory=list)

    def log(self, level: int, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)

    def debug(self, msg: str, *args: Any) -> None:
        self.log(0, msg, *args)
