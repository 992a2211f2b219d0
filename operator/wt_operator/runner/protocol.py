"""The operator ↔ runner protocol: versioned JSON lines over a unix socket.

Exists so both sides agree on one small, typed vocabulary. One connection carries
one conversation: a request (``start``, ``attach``, ``kill``, ``leftovers``) and
its answers. After ``start``/``attach`` the runner streams ``line`` messages and
ends with ``exited``; the operator may send ``cancel`` on the same connection.
Closing a run's connection never stops the run: a restarted operator ``attach``es
to it again by its marker, and the runner answers ``unknown`` for a marker it does
not hold (it restarted, so the run is lost).

Every message is one JSON object on one line with ``"v": VERSION`` and ``"type"``;
a peer speaking another version gets an ``error`` and is disconnected, never a
guess.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "FILE_PLACEHOLDER_PREFIX",
    "MAX_MESSAGE_BYTES",
    "VERSION",
    "ErrorKind",
    "ProtocolError",
    "Start",
    "decode",
    "encode",
]

VERSION = 1
"""Bumped on any incompatible change; both containers ship in one image, so a mismatch
means a half-upgraded pod and is refused loudly."""

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Longest line either side reads: a start carries the config text and the environment
(each value up to Linux's 128 KiB exec limit)."""

FILE_PLACEHOLDER_PREFIX = "@wt-runner-file:"
"""An argv element or environment value exactly ``@wt-runner-file:<name>`` is replaced by
the path of a private (0600) file the runner writes with ``files[<name>]``: the
configuration travels as a file the workflow reads, never through argv (``ps`` shows it)."""

ErrorKind = Literal["protocol", "denied", "installation", "start", "config", "busy"]
"""Why the runner refused a request: ``installation``/``start``/``config`` map onto the
library's errors of the same meaning, so a run fails the same way in-process or not."""


class ProtocolError(ValueError):
    """A message that is not valid JSON, not an object, or of another version."""


@dataclasses.dataclass(frozen=True)
class Start:
    """Start one workflow process tree, exactly as given: the runner adds nothing of its own."""

    marker: str
    """The run's process marker (its uid): how its processes are found and how a restarted
    operator attaches to it again."""
    argv: tuple[str, ...]
    env: Mapping[str, str]
    """The workflow's whole environment (the runner's own variables never reach it)."""
    cwd: str
    files: Mapping[str, str]
    """Placeholder name → text of a private file (see :data:`FILE_PLACEHOLDER_PREFIX`)."""
    results_dir: str | None
    """A local results directory to create before the start (``file://`` results)."""
    kill_grace_seconds: float
    """Between SIGTERM and SIGKILL when the run is cancelled or its leftovers killed."""

    def fields(self) -> dict[str, Any]:
        """The message's fields (``encode("start", **start.fields())``)."""
        return {
            "marker": self.marker,
            "argv": list(self.argv),
            "env": dict(self.env),
            "cwd": self.cwd,
            "files": dict(self.files),
            "results_dir": self.results_dir,
            "kill_grace_seconds": self.kill_grace_seconds,
        }

    @classmethod
    def from_message(cls, msg: Mapping[str, Any]) -> Start:
        try:
            start = cls(
                marker=_str(msg["marker"]),
                argv=tuple(_str(a) for a in msg["argv"]),
                env={_str(k): _str(v) for k, v in dict(msg["env"]).items()},
                cwd=_str(msg["cwd"]),
                files={_str(k): _str(v) for k, v in dict(msg["files"]).items()},
                results_dir=None if msg.get("results_dir") is None else _str(msg["results_dir"]),
                kill_grace_seconds=float(msg["kill_grace_seconds"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed start: {exc!r}") from None
        if not start.marker or not start.argv:
            raise ProtocolError("malformed start: empty marker or argv")
        return start


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def encode(msg_type: str, **fields: Any) -> bytes:
    """One message as a line of JSON (``type`` and ``v`` set here, once)."""
    body = {"v": VERSION, "type": msg_type, **fields}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The message on ``line``; :class:`ProtocolError` for anything but this version's."""
    try:
        msg = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("not a message object")
    if msg.get("v") != VERSION:
        raise ProtocolError(f"protocol version {msg.get('v')!r}; this side speaks {VERSION}")
    return msg
