"""Pure decisions of the plugin: no I/O, no clock, no cluster.

What a command does is mostly a function of a WorkflowRun dict and the user's
flags: which exit code a finished run maps to, what a submitted or re-run
object looks like, which part of a stored log is new. Keeping those here lets
the unit tests cover every branch while the integration tests prove the shell.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from wt_kubectl.errors import UsageError
from wt_operator.api import (
    ANNOTATION_RERUN_OF,
    API_VERSION,
    ARGO_TRACKING_LABEL,
    GITOPS_MARKERS,
    GROUP,
    KIND,
    TERMINAL_PHASES,
    Phase,
    human_duration,
)

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_TIMEOUT",
    "exit_code_for",
    "generate_name_from",
    "human_duration",
    "new_log_text",
    "parse_duration",
    "parse_time",
    "rerun_manifest",
    "run_duration",
    "run_name",
    "submit_manifest",
]

EXIT_TIMEOUT = 124
"""``wait`` ran out of time (as coreutils' ``timeout``)."""
EXIT_CANCELLED = 130
"""The run was cancelled (deleted), or the user pressed Ctrl-C (128 + SIGINT)."""

# ---------------------------------------------------------------- durations and times

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``5m``, ``1h30m``, ``250ms`` (Go/kubectl style) or a bare ``90``."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(value):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(value) or not value:
            raise UsageError(
                f'invalid duration "{text}": use a number with a unit, e.g. 30s, 5m, 1h30m'
            ) from None
    if seconds < 0 or seconds != seconds:  # negative or NaN
        raise UsageError(f'invalid duration "{text}": it must not be negative')
    return seconds


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp from the API (``…Z`` or with micro-seconds), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def run_duration(status: Mapping[str, Any], now: dt.datetime) -> str | None:
    """``status.duration`` if the operator wrote it; else computed (older operators).

    A finished run: completion minus start; an active one: how long it has run so far.
    """
    if isinstance(status.get("duration"), str) and status["duration"]:
        return str(status["duration"])
    start = parse_time(status.get("startTime"))
    if start is None:
        return None
    end = parse_time(status.get("completionTime"))
    return human_duration(((end or now) - start).total_seconds())


def run_reason(status: Mapping[str, Any]) -> str:
    """The reason of the run's last transition: the ``Succeeded`` condition's, else ``reason``.

    The condition is rewritten on every transition by every operator version, while
    ``status.reason`` keeps the CRD's default (``Pending``) under operators older than it.
    """
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Succeeded" and cond.get("reason"):
            return str(cond["reason"])
    return str(status.get("reason") or "")


# ---------------------------------------------------------------- exit codes


def exit_code_for(status: Mapping[str, Any] | None) -> int | None:
    """The process exit code a finished run maps to; None while it is active.

    Succeeded: 0. Failed: the workflow's own exit code when it has one (a death by
    signal N, recorded as -N, becomes 128+N as in shells), else 1. Cancelled: 130.
    """
    phase = (status or {}).get("phase")
    if phase not in TERMINAL_PHASES:
        return None
    if phase == Phase.SUCCEEDED:
        return 0
    if phase == Phase.CANCELLED:
        return EXIT_CANCELLED
    code = (status or {}).get("exitCode")
    if isinstance(code, bool) or not isinstance(code, int):
        return 1
    if code < 0:
        code = 128 - code
    return code if 0 < code <= 255 else 1


# ---------------------------------------------------------------- names

_RESOURCE_PREFIXES = ("wfr/", "workflowrun/", "workflowruns/", f"workflowruns.{GROUP}/")
_NAME_PREFIX_MAX = 57
"""generateName prefixes are cut so the generated name (prefix + 5 characters) fits in 63:
the operator copies run names into label values, which allow no more."""


def run_name(text: str) -> str:
    """A run's name from ``NAME`` or kubectl's ``wfr/NAME`` / ``workflowrun/NAME`` forms."""
    for prefix in _RESOURCE_PREFIXES:
        if text.lower().startswith(prefix):
            return text[len(prefix) :]
    return text


def _name_prefix(base: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", base.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-")[:_NAME_PREFIX_MAX].rstrip("-")
    return f"{slug or 'workflowrun'}-"


def generate_name_from(source: str | None) -> str:
    """``generateName`` for a manifest without a name: the file's stem, made a valid name.

    ``runs/Patrol_North.yaml`` → ``patrol-north-``; stdin (None or ``-``) → ``workflowrun-``.
    """
    if source is None or source == "-":
        return "workflowrun-"
    stem = re.split(r"[\\/]", source)[-1]
    stem = re.sub(r"\.(ya?ml|json)$", "", stem, flags=re.IGNORECASE)
    return _name_prefix(stem)


# ---------------------------------------------------------------- manifests

_SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
)
"""Metadata the API server fills in: dropped so an exported run (``-o yaml``) submits."""


def submit_manifest(
    docs: list[Any],
    *,
    source: str | None,
    name: str | None,
    namespace_flag: str | None,
    default_namespace: str,
) -> tuple[dict[str, Any], str]:
    """The WorkflowRun to create from a file's YAML documents, and its namespace.

    Refuses anything but exactly one WorkflowRun. The name: ``--name``, else the
    manifest's name or generateName, else ``generateName`` from the file's name.
    The namespace follows kubectl: ``-n`` must agree with the manifest's, which wins
    over the context's.
    """
    objects = [d for d in docs if d is not None]
    what = "stdin" if source in (None, "-") else source
    if len(objects) != 1 or not isinstance(objects[0], dict):
        raise UsageError(
            f"{what} must hold exactly one WorkflowRun (found {len(objects)} documents); "
            "submit one file per run"
        )
    body = copy.deepcopy(objects[0])
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind, api_version) != (KIND, API_VERSION):
        raise UsageError(
            f"{what} holds a {kind or 'document without kind'} ({api_version or 'no apiVersion'})"
            f", not a {KIND} ({API_VERSION})"
        )
    meta = body.get("metadata") or {}
    if not isinstance(meta, dict):
        raise UsageError(f"{what}: metadata must be a mapping")
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    body.pop("status", None)
    manifest_ns = meta.get("namespace")
    if namespace_flag and manifest_ns and manifest_ns != namespace_flag:
        raise UsageError(
            f'the namespace in {what} ("{manifest_ns}") does not match --namespace '
            f'"{namespace_flag}": pass --namespace={manifest_ns} or remove it from the file'
        )
    namespace = str(namespace_flag or manifest_ns or default_namespace)
    meta["namespace"] = namespace
    if name:
        meta["name"] = name
        meta.pop("generateName", None)
    elif not meta.get("name") and not meta.get("generateName"):
        meta["generateName"] = generate_name_from(source)
    body["metadata"] = meta
    return body, namespace


# Labels/annotations that mark an object as another tool's (GitOps tracking, Helm
# ownership, kubectl apply's diff base, the operator's own bookkeeping). A re-run copying
# them would be adopted — and pruned or never cleaned up — by that tool.
_TOOL_DOMAINS = ("argoproj.io", "fluxcd.io", "helm.sh", "kopf.zalando.org", GROUP)
_TOOL_KEYS = frozenset(
    {
        *(key for _, key, _ in GITOPS_MARKERS),  # what the operator's TTL treats as GitOps
        ARGO_TRACKING_LABEL,  # Argo CD's tracking label (Helm sets it too)
        "app.kubernetes.io/managed-by",
        "kubectl.kubernetes.io/last-applied-configuration",
    }
)


def _user_keys(values: Any) -> dict[str, str]:
    kept: dict[str, str] = {}
    for key, value in (values or {}).items():
        domain = key.partition("/")[0] if "/" in key else ""
        if key in _TOOL_KEYS or any(domain == d or domain.endswith("." + d) for d in _TOOL_DOMAINS):
            continue
        kept[str(key)] = str(value)
    return kept


def rerun_manifest(
    old: Mapping[str, Any], *, name: str | None, keep_workflow_run_id: bool = False
) -> dict[str, Any]:
    """A new, independent WorkflowRun with ``old``'s spec.

    New identity: no uid, status or tool bookkeeping is copied, and
    ``spec.workflowRunId`` is dropped (the workflow is told the new run's uid, so it
    never mistakes the re-run for the original, e.g. overwriting its results) unless
    ``keep_workflow_run_id``. The user's own labels and annotations stay;
    ``wt.dev/rerun-of`` names the original.
    """
    old_meta = old.get("metadata") or {}
    spec = copy.deepcopy(dict(old.get("spec") or {}))
    if not keep_workflow_run_id:
        spec.pop("workflowRunId", None)
    meta: dict[str, Any] = {"namespace": old_meta.get("namespace")}
    if name:
        meta["name"] = name
    else:
        # A run made from generateName re-runs under the same prefix, so names do not
        # grow with every re-run of a re-run.
        prefix = old_meta.get("generateName")
        meta["generateName"] = prefix or _name_prefix(str(old_meta.get("name") or ""))
    labels = _user_keys(old_meta.get("labels"))
    annotations = _user_keys(old_meta.get("annotations"))
    annotations[ANNOTATION_RERUN_OF] = str(old_meta.get("name") or "")
    if labels:
        meta["labels"] = labels
    meta["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


# ---------------------------------------------------------------- following a stored log

_ANCHOR = 1024
"""Characters of the last text printed that must reappear to line up a rewritten log."""


def new_log_text(previous: str, stored: str) -> tuple[str, bool]:
    """What to print when a run's stored log changes from ``previous`` to ``stored``.

    Returns (text, skipped). While the log is whole, ``stored`` extends ``previous``
    and the new part is its suffix. Once the operator cuts the middle to stay within
    its bound, the head stays and the tail moves: the end of what was printed is
    found again in the new text and what follows it is new. When it cannot be found
    (more was written between two reads than the tail holds), everything stored is
    returned and ``skipped`` says output was lost in between.
    """
    if stored.startswith(previous):
        return stored[len(previous) :], False
    anchor = previous[-_ANCHOR:]
    at = stored.rfind(anchor)
    if at >= 0:
        return stored[at + len(anchor) :], False
    return stored, True
