"""What names a run and its stored output, as values the shell passes around.

Apart from the client (:mod:`wt_operator.shell.kube`) so that the runners, the log and
the tests can name a run without importing an HTTP client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from wt_operator.api import API_VERSION, KIND

__all__ = ["LogRecord", "LogTarget", "RunRef", "log_target"]


@dataclasses.dataclass(frozen=True)
class RunRef:
    """Identity of one WorkflowRun, as kopf hands it to handlers."""

    namespace: str
    name: str
    uid: str
    generation: int | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def owner_reference(self) -> dict[str, str]:
        """The run as the owner of an object in its namespace (garbage-collected with it)."""
        return {"apiVersion": API_VERSION, "kind": KIND, "name": self.name, "uid": self.uid}

    def object_reference(self) -> dict[str, str]:
        """The run as an Event's ``involvedObject`` (and kopf's log records) name it."""
        return {**self.owner_reference(), "namespace": self.namespace}


@dataclasses.dataclass(frozen=True)
class LogRecord:
    """The stored output of a Local run (what its log ConfigMap holds)."""

    text: str
    total_bytes: int
    truncated: bool
    complete: bool


@dataclasses.dataclass(frozen=True)
class LogTarget:
    """The log ConfigMap the operator created for a run (``uid``: that object, no other)."""

    name: str
    uid: str
    displaced: str | None = None
    """The name it could not use because someone else's object held it (None: none)."""


def log_target(recorded: Any) -> LogTarget | None:
    """The log object a status recorded (``status.log``), or None when there is none."""
    if not isinstance(recorded, Mapping):
        return None
    name, uid = recorded.get("configMap"), recorded.get("uid")
    return LogTarget(str(name), str(uid)) if name and uid else None
