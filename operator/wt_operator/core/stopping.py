"""Why a run's reconciler is asked to stop: the one vocabulary every invoker's loop shares.

A module of its own because Local, Batch and Cloud Run loops all act on it (kill the
tree, delete the job, cancel the execution, or leave the work to the next operator),
and the shell's stop signal carries it; it belongs to no one invoker.
"""

from __future__ import annotations

import enum

__all__ = ["Stopping", "stopping_for"]


class Stopping(enum.Enum):
    """Why a reconciler was asked to stop."""

    DELETED = "deleted"
    """The run was deleted: cancel it."""
    OPERATOR = "operator"
    """This operator is exiting or standing down: its runs are lost to it."""
    CANCELLED = "cancelled"
    """spec.cancel was set: cancel it as a deletion would, but the run and its record stay."""

    @property
    def cancels(self) -> bool:
        """Whether the run's process tree or Batch job must go (deleted or cancelled)."""
        return self is not Stopping.OPERATOR

    @property
    def verb(self) -> str:
        """How the run's message says what happened to it."""
        return "cancelled (spec.cancel)" if self is Stopping.CANCELLED else "deleted"


def stopping_for(*, stopped: bool, deleted: bool, cancelled: bool) -> Stopping | None:
    """Why the reconciler stops, from its daemon's flags and the run's spec.cancel.

    ``stopped``: the daemon was told to stop; ``deleted``: the reason is the resource's
    deletion (anything else — the operator exiting or pausing, a filter mismatch — leaves
    the run to the next operator); ``cancelled``: spec.cancel was seen. None: keep going.
    """
    if stopped:
        return Stopping.DELETED if deleted else Stopping.OPERATOR
    return Stopping.CANCELLED if cancelled else None
