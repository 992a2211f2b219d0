"""`core/local.py`: how a Local run's process ended becomes its status."""

from __future__ import annotations

import pytest

from tests.unit.samples import LOCAL
from wt_operator.api import Phase
from wt_operator.core import local
from wt_operator.core.spec import parse_spec


@pytest.mark.parametrize(
    ("code", "message", "recorded"),
    [
        (3, "the workflow exited with 3", 3),
        (-15, "the workflow was killed by signal 15 (SIGTERM)", 143),
        (-9, "the workflow was killed by signal 9 (SIGKILL)", 137),
    ],
)
def test_a_signal_killed_workflow_says_so_and_records_128_plus_n(
    code: int, message: str, recorded: int
) -> None:
    # The library returns -N for death by signal N (upstream's convention); status.exitCode
    # stays a shell's 128+N, never negative, and the message names the signal.
    req = parse_spec(LOCAL, uid="u-1")
    t = local.outcome(local.Exited(code), req, tail="")
    assert (t.phase, t.message, t.exit_code, t.result) == (
        Phase.FAILED,
        message,
        recorded,
        str(recorded),
    )
