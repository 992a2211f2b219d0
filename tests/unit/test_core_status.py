"""`core/status.py`: a transition becomes the status a user reads in `kubectl get wfr -o yaml`."""

from __future__ import annotations

import datetime as dt

from tests.unit.samples import NOW
from wt_operator.api import Phase, Reason
from wt_operator.core.masking import Masker
from wt_operator.core.status import Transition, is_active, log_tail, remaining, status_patch


def _conds(status: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}  # type: ignore[attr-defined,index]


def _patch(
    phase: str,
    reason: Reason,
    message: str = "",
    previous: object = None,
    now: dt.datetime = NOW,
    **fields: object,
) -> dict[str, object]:
    t = Transition(Phase(phase), reason, message, **fields)  # type: ignore[arg-type]
    return dict(status_patch(t, previous=previous or {}, generation=1, now=now))  # type: ignore[arg-type]


def test_running_status_is_in_progress_for_people_and_kstatus() -> None:
    patch = _patch("Running", Reason.RUNNING, "running")
    assert patch["phase"] == "Running"
    assert patch["observedGeneration"] == 1
    assert patch["startTime"] == "2026-11-28T12:00:00Z"
    assert "completionTime" not in patch
    assert _conds(patch) == {
        "Succeeded": ("Unknown", "Running"),
        "Reconciling": ("True", "Running"),
        "Ready": ("False", "Running"),
        "Stalled": ("False", "Running"),
    }


def test_success_and_failure_are_terminal_with_kstatus_conditions() -> None:
    running = _patch("Running", Reason.RUNNING)
    later = NOW + dt.timedelta(seconds=90)
    ok = _patch("Succeeded", Reason.SUCCEEDED, previous=running, now=later, exit_code=0)
    assert ok["startTime"] == running["startTime"]  # kept from the first transition
    assert ok["completionTime"] == "2026-11-28T12:01:30Z"
    assert ok["duration"] == "90s"  # as kubectl prints a Job of 90 s
    assert (ok["exitCode"], ok["reason"]) == (0, "Succeeded")
    assert _conds(ok)["Succeeded"] == ("True", "Succeeded")
    assert _conds(ok)["Ready"] == ("True", "Succeeded")
    assert _conds(ok)["Reconciling"][0] == "False"
    bad = _patch("Failed", Reason.DEADLINE_EXCEEDED, "too slow", now=later)
    assert _conds(bad)["Succeeded"] == ("False", "DeadlineExceeded")
    assert _conds(bad)["Stalled"] == ("True", "DeadlineExceeded")
    assert not is_active(bad) and not is_active(ok) and is_active(running) and is_active(None)


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    queued = _patch("Queued", Reason.QUEUED)
    running = _patch("Running", Reason.RUNNING, previous=queued, now=NOW + dt.timedelta(seconds=5))
    succ = {c["type"]: c for c in running["conditions"]}  # type: ignore[attr-defined]
    assert succ["Succeeded"]["lastTransitionTime"] == "2026-11-28T12:00:00Z"  # Unknown → Unknown


def test_log_tail_is_bounded() -> None:
    lines = [f"line {i}" for i in range(1000)]
    assert log_tail(lines, max_lines=3) == "line 997\nline 998\nline 999"
    huge = log_tail(["x" * 10_000], max_lines=5, max_chars=100)
    assert len(huge) == 100 and huge.startswith("…")
    assert log_tail(lines, max_lines=0) == ""


def test_log_tail_is_cut_after_masking() -> None:
    secret = "x" * 50 + "SECRET-VALUE"
    masker = Masker([secret])
    lines = [masker.mask(secret)] + ["y" * 10] * 3
    tail = log_tail(lines, max_lines=5, max_chars=40)
    assert "SECRET" not in tail and "xxxx" not in tail


def test_deadline_counts_from_start_time() -> None:
    assert remaining({"startTime": "2026-11-28T12:00:00Z"}, 60, NOW.timestamp() + 45) == 15
    assert remaining({}, 60, NOW.timestamp()) == 60  # not started: the whole budget
    assert remaining({"startTime": "2026-11-28T12:00:00Z"}, None, 0) is None
