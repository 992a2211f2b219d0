"""The one error hierarchy of wt_invokers.

A workflow that ran and failed is a *result* (its exit code), never an
exception. Exceptions mean the invoker could not do what was asked::

    InvokerError                     base: anything the invoker could not do
    ├── InvocationTimeoutError       wait() ran out of time; the process tree was killed
    ├── InstallationError            the workflow is not (or cannot be) installed
    │   └── PixiUnpackError              a pixi-pack environment archive could not be unpacked
    │       └── EnvironmentDigestError       …because it is not the archive that was pinned
    ├── InvokerConfigurationError    bad input caught before anything ran (also a ValueError)
    ├── InvocationStartError         starting the workflow failed (exec refused: too large, …)
    ├── InvocationStateError         run()/wait() called in the wrong order (a RuntimeError)
    ├── CommandError                 check_output()'s command exited non-zero (a RuntimeError)
    ├── TransferError                downloading an environment / uploading results failed
    └── SubmissionError              a remote backend (Cloud Batch) refused or failed a call
        ├── TransientSubmissionError     worth retrying later (UNAVAILABLE, …); retries exhausted
        └── PermanentSubmissionError     retrying cannot help (PERMISSION_DENIED, …)

Where upstream wt-invokers raises a built-in type for the same failure
(``RuntimeError`` for ``wait()`` before ``run()`` and for a failing
``check_output()``), ours subclasses it, so callers written for upstream catch ours.
"""

from __future__ import annotations

__all__ = [
    "CommandError",
    "EnvironmentDigestError",
    "InstallationError",
    "InvocationStartError",
    "InvocationStateError",
    "InvocationTimeoutError",
    "InvokerConfigurationError",
    "InvokerError",
    "PermanentSubmissionError",
    "PixiUnpackError",
    "SubmissionError",
    "TransferError",
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


class InvocationStateError(InvokerError, RuntimeError):
    """``run()`` while a run is still in flight, or ``wait()`` with nothing started.

    Also a ``RuntimeError``: what upstream raises there, and what its callers catch.
    """


class CommandError(InvokerError, RuntimeError):
    """A one-off command (``check_output``) exited non-zero; carries its stderr.

    Also a ``RuntimeError``, as upstream's ``check_output`` raises.
    """

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


class PixiUnpackError(InstallationError):
    """A pixi-pack environment archive could not be unpacked into an environment.

    Upstream's name and attributes (it wraps the ``pixi-unpack`` binary's failure);
    here unpacking is done in-process, so ``returncode`` is 1 unless a subprocess
    failed, ``stdout`` is empty and ``stderr`` says what was wrong.
    """

    def __init__(
        self,
        message: str,
        *,
        returncode: int = 1,
        stdout: bytes | str | None = None,
        stderr: bytes | str | None = None,
    ) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr if stderr is not None else message


class EnvironmentDigestError(PixiUnpackError):
    """The archive (or a package inside it) does not have the sha256 it was pinned to.

    Raised before anything of it is installed: a tampered or truncated environment never runs.
    """


class TransferError(InvokerError):
    """Downloading an environment archive or uploading a results archive failed
    (after retries, for failures that may pass); ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
