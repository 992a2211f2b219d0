"""When a finished run is deleted (``ttlSecondsAfterFinished``), as pure functions.

Exists because GitOps and cron create runs by the thousand: as for Jobs, a run
may ask to be deleted some time after it finished, and the admin may set a
default. The default never applies to runs a GitOps tool manages — the tool
would create the deleted run again, and it would run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wt_operator.api import ARGO_TRACKING_LABEL, GITOPS_MARKERS, HELM_RELEASE_ANNOTATION
from wt_operator.core.status import parse_time

__all__ = ["expiry", "gitops_manager", "ttl_for"]


def gitops_manager(metadata: Mapping[str, Any]) -> str | None:
    """The GitOps tool managing the object (by its tracking label/annotation), or None."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    for where, key, tool in GITOPS_MARKERS:
        if key in (annotations if where == "annotation" else labels):
            return tool
    if ARGO_TRACKING_LABEL in labels and HELM_RELEASE_ANNOTATION not in annotations:
        return "Argo CD"
    return None


def ttl_for(
    spec: Mapping[str, Any], metadata: Mapping[str, Any], default: int | None
) -> int | None:
    """Seconds after completion the run is deleted, or None to keep it.

    ``spec.ttlSecondsAfterFinished`` wins; else the operator default, unless a
    GitOps tool manages the run.
    """
    explicit = spec.get("ttlSecondsAfterFinished")
    if explicit is not None:
        return int(explicit)
    if default is None or gitops_manager(metadata) is not None:
        return None
    return default


def expiry(status: Mapping[str, Any], ttl: int) -> float | None:
    """Epoch seconds when the run expires: ``completionTime + ttl`` (None: not finished)."""
    completed = parse_time(status.get("completionTime"))
    return None if completed is None else completed + ttl
