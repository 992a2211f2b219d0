"""wt_invokers: run compiled wt workflows locally (pixi) or on Google Cloud Batch.

``CloudBatchInvoker`` is importable without the ``gcp`` extra; constructing it
without ``google-cloud-batch`` installed raises ``ImportError`` naming the fix.

Beyond the invokers, two public modules serve hosts that start workflows themselves
(the operator's runner, a test kit): :mod:`wt_invokers.processes` (find, kill and launch
a workflow's process tree, read its output) and :mod:`wt_invokers.activation` (the
environment a conda prefix activates). Modules whose names start with ``_`` are private.
"""

from __future__ import annotations

from wt_invokers.abstract import AbstractInvoker
from wt_invokers.cloud_batch import CloudBatchInvoker
from wt_invokers.cloud_run_jobs import CloudRunJobsSandboxInvoker
from wt_invokers.exceptions import (
    CommandError,
    EnvironmentDigestError,
    InstallationError,
    InvocationStartError,
    InvocationStateError,
    InvocationTimeoutError,
    InvokerConfigurationError,
    InvokerError,
    PermanentSubmissionError,
    PixiUnpackError,
    SubmissionError,
    TransferError,
    TransientSubmissionError,
)
from wt_invokers.local import LocalSubprocessInvoker

__all__ = [
    "AbstractInvoker",
    "CloudBatchInvoker",
    "CloudRunJobsSandboxInvoker",
    "CommandError",
    "EnvironmentDigestError",
    "InstallationError",
    "InvocationStartError",
    "InvocationStateError",
    "InvocationTimeoutError",
    "InvokerConfigurationError",
    "InvokerError",
    "LocalSubprocessInvoker",
    "PermanentSubmissionError",
    "PixiUnpackError",
    "SubmissionError",
    "TransferError",
    "TransientSubmissionError",
]
