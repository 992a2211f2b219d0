"""wt_invokers: run compiled wt workflows locally (pixi) or on Google Cloud Batch.

``CloudBatchInvoker`` is importable without the ``gcp`` extra; constructing it
without ``google-cloud-batch`` installed raises ``ImportError`` naming the fix.
"""

from __future__ import annotations

from wt_invokers.abstract import AbstractInvoker
from wt_invokers.cloud_batch import CloudBatchInvoker
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
