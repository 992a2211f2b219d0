"""The one error hierarchy of wt_invokers.

A workflow that ran and failed is a *result* (its exit code), never an
exception. Exceptions mean the invoker could not do what was asked::

    InvokerError                     base: anything the invoker could not do
    ├── InvocationTimeoutError       wait() ran out of time; the process tree was killed
    ├── InstallationError            the workflow is not (or cannot be) installed
    ├── InvokerConfigurationError    bad input caught before anything ran (also a ValueError)
    ├── InvocationStartError         starting the workflow failed (exec refused: too large, …)
    ├── InvocationStateError         run()/wait() called in the wrong order
    ├── CommandError                 check_output()'s command exited non-zero
    └── SubmissionError              a remote backend (Cloud Batch) refused or failed a call
        ├── TransientSubmissionError     worth retrying later (UNAVAILABLE, …); retries exhausted
        └── PermanentSubmissionError     retrying cannot help (PERMISSION_DENIED, …)
"""

from __future__ import annotations

__all__ = [
    "CommandError",
    "InstallationError",
    "InvocationStartError",
    "InvocationStateError",
    "InvocationTimeoutError",
    "InvokerConfigurationError",
    "InvokerError",
    "PermanentSubmissionError",
    "SubmissionError",
    "TransientSubmissionError",
]


class InvokerError(Exception):
    """Base of every error raised by an invoker, so callers can catch one type."""


class InvocationTimeoutError(InvokerError):
    """The workflow outlived the timeout given to ``wait()``; its whole process tree was killed."""


class InstallationError(InvokerError):
    """The workflow package is not installed, or installing it failed."""


class InvokerConfigurationError(InvokerError, ValueError):
    """Input the invoker can reject before starting anything (missing project, invalid YAML, …).

    Also a ``ValueError`` so callers that validate arguments the usual way catch it.
    """


class InvocationStartError(InvokerError):
    """The workflow could not be started although its input was valid: the operating system
    refused to execute it (argument list or environment too large, exec format error, …)."""


class InvocationStateError(InvokerError):
    """``run()`` while a run is still in flight, or ``wait()`` with nothing started."""


class CommandError(InvokerError):
    """A one-off command (``check_output``) exited non-zero; carries its stderr."""

    def __init__(self, message: str, *, returncode: int, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class SubmissionError(InvokerError):
    """A remote backend call failed; ``code`` is its status name (e.g. ``"UNAVAILABLE"``)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class TransientSubmissionError(SubmissionError):
    """The backend failed in a way that may pass (retries inside the invoker were exhausted)."""


class PermanentSubmissionError(SubmissionError):
    """The backend refused the request (permission, invalid argument, …): retrying cannot help."""
