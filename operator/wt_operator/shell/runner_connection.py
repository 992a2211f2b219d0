"""One conversation with the runner over its unix socket, and the runner's refusals as errors.

Exists apart from :mod:`wt_operator.shell.runner_client` (which drives runs through it)
so that the wire — connecting while the runner starts, one JSON line per message, a
request with one answer — is read and tested on its own.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from wt_invokers.exceptions import (
    InstallationError,
    InvocationStartError,
    InvokerConfigurationError,
)
from wt_operator.runner import protocol

__all__ = ["RETRY_SECONDS", "Connection", "RunnerUnavailableError", "request", "runner_error"]

RETRY_SECONDS = 0.2
"""Pause between tries while the runner is not up (yet)."""


class RunnerUnavailableError(InvocationStartError):
    """The runner did not accept or answer a request in time."""


class Connection:
    """One connection to the runner (one conversation)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, path: Path, timeout: float) -> Connection:
        """Connect, retrying while the socket is absent or refuses (the runner is starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(os.fspath(path), limit=protocol.MAX_MESSAGE_BYTES),
                    max(deadline - time.monotonic(), 0.01),
                )
                return cls(reader, writer)
            except (OSError, TimeoutError) as exc:  # absent, refused, reset: not up (yet)
                if time.monotonic() >= deadline:
                    raise RunnerUnavailableError(
                        f"the runner at {path} is not reachable ({type(exc).__name__}) "
                        f"after {timeout:g} s"
                    ) from None
                await asyncio.sleep(RETRY_SECONDS)

    async def send(self, msg_type: str, **fields: Any) -> None:
        self.writer.write(protocol.encode(msg_type, **fields))
        await self.writer.drain()

    async def receive(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message; None at end of stream."""
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            return None
        msg = protocol.decode(line)
        if msg["type"] == "error":
            raise runner_error(str(msg.get("kind")), str(msg.get("message")))
        return msg

    def close(self) -> None:
        self.writer.close()


def runner_error(kind: str, message: str) -> Exception:
    match kind:
        case "installation":
            return InstallationError(message)
        case "config":
            return InvokerConfigurationError(message)
        case "start":
            return InvocationStartError(message)
        case _:
            return RunnerUnavailableError(f"the runner refused the request ({kind}): {message}")


async def request(path: Path, timeout: float, msg_type: str, **fields: Any) -> dict[str, Any]:
    """A one-answer request (kill, leftovers)."""
    conn = await Connection.open(path, timeout)
    try:
        await conn.send(msg_type, **fields)
        try:
            answer = await conn.receive(timeout)
        except TimeoutError:
            raise RunnerUnavailableError(f"the runner did not answer {msg_type} in time") from None
        if answer is None:
            raise RunnerUnavailableError(f"the runner closed the connection on {msg_type}")
        return answer
    finally:
        conn.close()
