"""Coordinating replicas (kopf peering) without ever killing a run, and saying when stuck.

Exists for two failure modes of peering. First, kopf pauses every replica but
the one with the highest priority — and pausing stops its daemons, which for a
Local run means killing the workflow. With random priorities, a restarted
standby out-ranks the active replica half the time. So the priority is derived
from the start time: the oldest live replica keeps the lead, a newcomer stands
by, and the lead only changes when the leader dies. Second, kopf waits silently
forever for a peering object that does not exist; :func:`warn_while_missing`
says so, with what to do, at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
import random

from wt_operator.api import PEERING_NAME
from wt_operator.shell.kube import Kube

__all__ = ["oldest_first_priority", "warn_while_missing"]

log = logging.getLogger(__name__)


_EPOCH_MS_CEILING = 2**42  # about the year 2109 in milliseconds


def oldest_first_priority(started_at: float) -> int:
    """A kopf peering priority that is higher the earlier the process started.

    Milliseconds before a far ceiling, times 1024 plus a random tie-breaker: two
    replicas starting in the same millisecond still differ (equal priorities make
    kopf pause both).
    """
    return (_EPOCH_MS_CEILING - int(started_at * 1000)) * 1024 + random.randrange(1024)


async def warn_while_missing(
    kube: Kube, namespaces: list[str] | None, *, interval: float = 60.0
) -> None:
    """Log a WARNING every ``interval`` seconds while a peering object is missing.

    ``namespaces`` None means cluster-wide (a ClusterKopfPeering). Returns once all exist.
    """
    scopes: list[str | None] = [None] if namespaces is None else list(namespaces)
    while True:
        missing: list[str] = []
        for ns in scopes:
            try:
                if not await kube.peering_exists(ns, PEERING_NAME):
                    missing.append(
                        f"ClusterKopfPeering {PEERING_NAME}"
                        if ns is None
                        else f"KopfPeering {PEERING_NAME} in namespace {ns}"
                    )
            except Exception as exc:  # the CRD itself is missing, RBAC, …
                missing.append(f"the peering object for {ns or 'the cluster'} ({exc})")
        if not missing:
            return
        log.warning(
            "waiting for %s: nothing is reconciled until it exists. Install it (the Helm "
            "chart creates it when replicaCount > 1) or run with --standalone (one replica).",
            "; ".join(missing),
        )
        await asyncio.sleep(interval)
