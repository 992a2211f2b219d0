"""core.entry: what a run meets when its reconciler picks it up, as tables."""

from __future__ import annotations

import pytest

from wt_operator.api import Phase, Reason
from wt_operator.core.entry import (
    admitted,
    cancelled_before_start,
    invoker_of,
    unowned_local_cleaned,
)
from wt_operator.core.stopping import Stopping


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"invoker": "CloudBatch", "workflow": "not a matchspec ((("}, "CloudBatch"),
        ({"invoker": "CloudRunJob"}, "CloudRunJob"),
        ({"invoker": "Local"}, "Local"),
        ({}, "Local"),
    ],
)
def test_the_invoker_is_read_without_parsing_the_rest(spec: dict[str, str], expected: str) -> None:
    assert invoker_of(spec) == expected


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (Phase.PENDING, False),
        (Phase.QUEUED, False),
        (Phase.SUBMITTED, True),
        (Phase.RUNNING, False),
    ],
)
def test_only_a_submitted_run_skips_the_policy_check(phase: str, expected: bool) -> None:
    assert admitted(phase) is expected


@pytest.mark.parametrize(
    ("why", "phase", "cancelled"),
    [
        (Stopping.CANCELLED, Phase.PENDING, True),
        (Stopping.CANCELLED, Phase.QUEUED, False),  # the Local loop says "while queued"
        (Stopping.CANCELLED, Phase.SUBMITTED, False),  # a job exists: it must be deleted
        (Stopping.DELETED, Phase.PENDING, False),
        (Stopping.OPERATOR, Phase.PENDING, False),
        (None, Phase.PENDING, False),
    ],
)
def test_a_cancel_before_anything_started_ends_the_run_at_once(
    why: Stopping | None, phase: str, cancelled: bool
) -> None:
    t = cancelled_before_start(why, phase)
    if not cancelled:
        assert t is None
        return
    assert t is not None
    assert (t.phase, t.reason) == (Phase.CANCELLED, Reason.CANCELLED)
    assert t.message == "cancelled (spec.cancel) before it started"


def test_an_unowned_deletion_says_what_was_cleaned_up() -> None:
    assert unowned_local_cleaned(2).message.endswith("its process tree was killed")
    assert unowned_local_cleaned(0).message.endswith("no process of it was left")
