"""core.watch: what each watch event of a WorkflowRun needs, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from wt_operator.api import FINALIZER
from wt_operator.core.watch import WatchAction, on_watch_event

HELD = {"finalizers": [FINALIZER]}
DELETING = {"finalizers": [FINALIZER], "deletionTimestamp": "2026-01-01T00:00:00Z"}
DONE = {"phase": "Succeeded", "completionTime": "2026-01-01T00:00:00Z"}
T0 = 1767225600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("type", "meta", "spec", "status", "reaping", "default_ttl", "expected"),
    [
        # gone: drop its cancel; the handler only when the reaper still holds it
        ("DELETED", HELD, {}, None, False, None, WatchAction(gone=True)),
        ("DELETED", HELD, {}, DONE, True, None, WatchAction(gone=True, handle=True)),
        # active, no finalizer yet: nothing (the daemon keeps waiting)
        (None, {}, {}, None, False, None, WatchAction()),
        # active, finalizer added: wake the daemon, no handler
        (
            "MODIFIED",
            HELD,
            {},
            {"phase": "Running"},
            False,
            60,
            WatchAction(finalizer_present=True),
        ),
        # active with spec.cancel: tell its reconciler, no handler
        (
            "MODIFIED",
            HELD,
            {"cancel": True},
            {"phase": "Running"},
            False,
            None,
            WatchAction(finalizer_present=True, cancel=True),
        ),
        # active, being deleted while our finalizer holds it: the handler cleans it up
        (
            "MODIFIED",
            DELETING,
            {},
            {"phase": "Submitted"},
            False,
            None,
            WatchAction(finalizer_present=True, finalize_unowned=True, handle=True),
        ),
        # being deleted but our finalizer is already gone: nothing left to hold
        ("MODIFIED", {"deletionTimestamp": "x"}, {}, None, False, None, WatchAction()),
        # finished, no TTL anywhere, not reaped: nothing
        ("MODIFIED", {}, {}, DONE, False, None, WatchAction()),
        # finished with the operator's default TTL: schedule it
        (
            "MODIFIED",
            {},
            {},
            DONE,
            False,
            60,
            WatchAction(reap=True, reap_at=T0 + 60, handle=True),
        ),
        # the run's own TTL wins over the default
        (
            "MODIFIED",
            {},
            {"ttlSecondsAfterFinished": 5},
            DONE,
            False,
            60,
            WatchAction(reap=True, reap_at=T0 + 5, handle=True),
        ),
        # reaped before, its TTL since removed: the handler must forget it
        ("MODIFIED", {}, {}, DONE, True, None, WatchAction(reap=True, handle=True)),
        # a scheduled run is kept by the default (its schedule's history limits decide)
        (
            "MODIFIED",
            {"labels": {"wt.dev/schedule": "nightly"}},
            {},
            DONE,
            False,
            60,
            WatchAction(),
        ),
    ],
)
def test_each_watch_event_is_decided_once_for_the_filter_and_the_handler(
    type: str | None,
    meta: dict[str, Any],
    spec: dict[str, Any],
    status: dict[str, Any] | None,
    reaping: bool,
    default_ttl: int | None,
    expected: WatchAction,
) -> None:
    got = on_watch_event(type, meta, spec, status, reaping=reaping, default_ttl=default_ttl)
    assert got == expected
