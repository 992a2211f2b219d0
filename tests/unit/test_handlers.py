"""handlers: kopf's daemon stop flag read as the runtime's stop signal.

Uses kopf's own flag objects (the ones it hands every daemon), not a stand-in, so a
change in how kopf reports its reasons shows here.
"""

from __future__ import annotations

import kopf
import pytest
from kopf._cogs.aiokits.aioenums import FlagSetter, FlagWaiter

from wt_operator.core.stopping import Stopping
from wt_operator.handlers import KopfStop
from wt_operator.shell.stop import CancelRequests

R = kopf.DaemonStoppingReason


def _stop(reason: kopf.DaemonStoppingReason | None, *, cancel: bool = False) -> KopfStop:
    setter: FlagSetter[kopf.DaemonStoppingReason] = FlagSetter()
    if reason is not None:
        setter.set(reason)
    cancels = CancelRequests()
    if cancel:
        cancels.request("uid", 3)
    return KopfStop(FlagWaiter(setter), cancels, "uid")


@pytest.mark.parametrize(
    ("reason", "cancel", "expected"),
    [
        (None, False, None),
        (None, True, Stopping.CANCELLED),
        (R.RESOURCE_DELETED, False, Stopping.DELETED),
        # kopf adds flags as more reasons arrive: a deletion during shutdown is a deletion
        (R.RESOURCE_DELETED | R.OPERATOR_EXITING, False, Stopping.DELETED),
        (R.OPERATOR_EXITING, False, Stopping.OPERATOR),
        (R.OPERATOR_PAUSING, True, Stopping.OPERATOR),
        (R.FILTERS_MISMATCH, False, Stopping.OPERATOR),
    ],
)
async def test_a_deletion_is_told_from_an_operator_stop_by_kopfs_flags(
    reason: kopf.DaemonStoppingReason | None, cancel: bool, expected: Stopping | None
) -> None:
    assert _stop(reason, cancel=cancel).why() is expected


async def test_a_cancel_carries_the_generation_it_was_seen_at() -> None:
    assert _stop(None, cancel=True).generation() == 3
    assert _stop(R.RESOURCE_DELETED).generation() is None
