"""core.stopping: why a reconciler stops, from its daemon's flags and spec.cancel."""

from __future__ import annotations

import pytest

from wt_operator.core.stopping import Stopping, stopping_for


@pytest.mark.parametrize(
    ("stopped", "deleted", "cancelled", "expected"),
    [
        (False, False, False, None),
        (False, False, True, Stopping.CANCELLED),
        (True, True, False, Stopping.DELETED),
        (True, True, True, Stopping.DELETED),
        # the operator exiting or standing down leaves the run to the next one, even
        # when a cancel was asked: the next operator sees spec.cancel and acts on it
        (True, False, False, Stopping.OPERATOR),
        (True, False, True, Stopping.OPERATOR),
    ],
)
def test_why_a_reconciler_stops(
    stopped: bool, deleted: bool, cancelled: bool, expected: Stopping | None
) -> None:
    assert stopping_for(stopped=stopped, deleted=deleted, cancelled=cancelled) is expected


def test_only_the_operators_own_stop_leaves_the_work_running() -> None:
    assert [s for s in Stopping if not s.cancels] == [Stopping.OPERATOR]
