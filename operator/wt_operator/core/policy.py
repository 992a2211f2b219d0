"""The cluster admin's say over runs: what may run, where, and as whom.

Exists because a run author is a tenant, not an admin: by default they may
start the admin-installed workflows with their parameters, nothing more. The
admin decides whether Local runs are allowed at all (they share the operator
pod's identity), which GCP projects, service accounts and images CloudBatch
runs may use, and whether Kubernetes Secret values may be copied into a Batch
job definition (where anyone with ``batch.jobs.get`` reads them). Checked
before anything runs; a refused run ends ``Failed`` with reason ``PolicyDenied``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import PurePath
from urllib.parse import unquote, urlparse

from wt_invokers.cloud_batch import DEFAULT_REGION
from wt_operator.api import Reason
from wt_operator.core.errors import Terminal
from wt_operator.core.globs import glob_match, glob_regex
from wt_operator.core.spec import RunRequest

__all__ = [
    "BatchDefaults",
    "BatchPlacement",
    "BatchPolicy",
    "admit",
    "glob_regex",
    "placement",
    "results_denied",
]


@dataclasses.dataclass(frozen=True)
class BatchPolicy:
    """What CloudBatch runs may use; an empty list means unrestricted (the default)."""

    allowed_projects: tuple[str, ...] = ()
    allowed_service_accounts: tuple[str, ...] = ()
    allowed_images: tuple[str, ...] = ()
    allowed_results_buckets: tuple[str, ...] = ()
    """Buckets a ``gs://`` resultsUrl may name (of Local runs too: they upload with the
    operator pod's Google identity)."""
    allow_plaintext_secrets: bool = False
    """Whether Kubernetes Secret values (``secretKeyRef``) may be copied into the job."""


@dataclasses.dataclass(frozen=True)
class BatchDefaults:
    """The operator's defaults for what a run's ``spec.cloudBatch`` leaves unset."""

    project: str | None = None
    region: str = DEFAULT_REGION
    service_account: str | None = None


@dataclasses.dataclass(frozen=True)
class BatchPlacement:
    """Where a Batch job goes and as whom, defaults applied."""

    project: str | None
    region: str
    service_account: str | None


def placement(req: RunRequest, defaults: BatchDefaults) -> BatchPlacement:
    """The run's project, region and service account, falling back to the operator's."""
    batch = req.batch
    return BatchPlacement(
        project=(batch.project if batch else None) or defaults.project,
        region=(batch.region if batch else None) or defaults.region,
        service_account=(batch.service_account if batch else None) or defaults.service_account,
    )


def _deny(message: str) -> Terminal:
    return Terminal(Reason.POLICY_DENIED, message + "; the workflow was not started")


def _local_path(url: str) -> str | None:
    """The local path a results URL names (``file:`` or absolute), normalised; else None."""
    if url.startswith("file:"):
        return os.path.normpath(unquote(urlparse(url).path) or "/")
    if url.startswith("/"):
        return os.path.normpath(url)
    return None


def results_denied(
    url: str, *, local_root: PurePath | None, buckets: tuple[str, ...]
) -> Terminal | None:
    """Whether the admin's results restrictions refuse ``url`` (``PolicyDenied``), else None.

    The path is normalised first, so ``file:///results/../etc`` is judged as ``/etc``.
    """
    if (local_root is not None or buckets) and any(ord(c) < 32 or ord(c) == 127 for c in url):
        # urlparse drops tabs and newlines; the workflow's own parser may not.
        return _deny("resultsUrl holds control characters")
    path = _local_path(url)
    if path is not None and local_root is not None:
        root = os.path.normpath(str(local_root))
        if path != root and not path.startswith(root.rstrip("/") + "/"):
            return _deny(
                f"resultsUrl must be under {root} on this cluster (the operator's "
                "WT_OPERATOR_LOCAL_RESULTS_ROOT, chart value operator.localResultsRoot)"
            )
    if url.startswith("gs://") and buckets:
        bucket = url.removeprefix("gs://").split("/", 1)[0]
        if not glob_match(bucket, buckets):
            return _deny(
                f"results bucket {bucket[:80]!r} is not allowed here (allowed: "
                f"{', '.join(buckets)}; chart value batch.allowedResultsBuckets)"
            )
    return None


def admit(
    req: RunRequest,
    *,
    local_enabled: bool,
    policy: BatchPolicy,
    defaults: BatchDefaults,
    local_results_root: PurePath | None = None,
) -> Terminal | None:
    """None when the run may start, else the ``PolicyDenied`` outcome saying why and what to do."""
    denied = results_denied(
        req.results_url, local_root=local_results_root, buckets=policy.allowed_results_buckets
    )
    if denied is not None:
        return denied
    if req.invoker == "Local":
        if not local_enabled:
            return _deny(
                "Local runs are disabled on this cluster (the operator's "
                "WT_OPERATOR_LOCAL_ENABLED=false, chart value operator.localEnabled); "
                "use invoker CloudBatch"
            )
        return None
    where = placement(req, defaults)
    image = req.batch.options.docker_image_uri if req.batch else None
    checks = (
        ("project", where.project, policy.allowed_projects, "spec.cloudBatch.project"),
        (
            "service account",
            where.service_account,
            policy.allowed_service_accounts,
            "spec.cloudBatch.serviceAccount",
        ),
        ("image", image, policy.allowed_images, "spec.cloudBatch.image"),
    )
    for what, value, allowed, field in checks:
        if not allowed:
            continue
        listed = ", ".join(allowed)
        if not value:
            return _deny(f"the admin restricts the Batch {what} to {listed}; set {field}")
        if not glob_match(value, allowed):
            return _deny(f"Batch {what} {value!r} is not allowed here (allowed: {listed})")
    if req.uses_kubernetes_secrets and not policy.allow_plaintext_secrets:
        return _deny(
            "spec.env takes values from Kubernetes Secrets (secretKeyRef), which a CloudBatch "
            "run would copy into the job definition in plain text, readable by anyone who may "
            "read Batch jobs in the project. Use valueFrom.gcpSecretVersion "
            "(projects/P/secrets/S/versions/V, resolved by Batch itself) instead, or ask the "
            "cluster admin to allow it (WT_OPERATOR_BATCH_ALLOW_PLAINTEXT_SECRETS=true, chart "
            "value batch.allowPlaintextSecrets)"
        )
    return None
