"""What one watch event of a WorkflowRun needs: decided once, for the filter and the handler.

kopf calls the ``when=`` filter for every event and the handler only when it says so;
most events need nothing, and invoking a handler costs kopf far more than this test.
Both read the same :class:`WatchAction`, so the filter can never admit an event the
handler then ignores (or the reverse).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from wt_operator.api import FINALIZER
from wt_operator.core.retention import expiry, ttl_for
from wt_operator.core.status import is_active

__all__ = ["WatchAction", "on_watch_event"]


@dataclasses.dataclass(frozen=True)
class WatchAction:
    """What the operator does with one watch event of a WorkflowRun."""

    gone: bool = False
    """The object is deleted: drop its cancel request and its TTL entry."""
    finalizer_present: bool = False
    """kopf's finalizer is on it: wake its daemon, which waits for it before acting."""
    cancel: bool = False
    """An active run with spec.cancel: tell its reconciler."""
    finalize_unowned: bool = False
    """An active run deleted while our finalizer holds it: clean it up before kopf
    releases the finalizer (kopf starts no daemon for an object being deleted)."""
    reap: bool = False
    """A finished run the TTL reaper must (re)consider: schedule it at ``reap_at``, or
    forget it when that is None."""
    reap_at: float | None = None
    """Epoch seconds the finished run is deleted at; None: keep it."""

    handle: bool = False
    """The filter's answer: whether kopf must call the event handler at all (the cheap
    parts above, waking a daemon and a cancel, are done in the filter itself)."""


def on_watch_event(
    type: str | None,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    *,
    reaping: bool,
    default_ttl: int | None,
) -> WatchAction:
    """Decide what an event needs. ``reaping``: the reaper holds the run now;
    ``default_ttl``: the operator's ttlSecondsAfterFinished default."""
    if type == "DELETED":
        return WatchAction(gone=True, handle=reaping)
    finalized = FINALIZER in (meta.get("finalizers") or ())
    if is_active(status):
        unowned = bool(meta.get("deletionTimestamp")) and finalized
        return WatchAction(
            finalizer_present=finalized,
            cancel=bool(spec.get("cancel")),
            finalize_unowned=unowned,
            handle=unowned,
        )
    ttl = ttl_for(spec, meta, default_ttl)
    at = expiry(status or {}, ttl) if ttl is not None else None
    reap = reaping or ttl is not None
    return WatchAction(finalizer_present=finalized, reap=reap, reap_at=at, handle=reap)
