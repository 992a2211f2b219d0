"""Reading a workflow's stdout and stderr as lines, without ever blocking it.

Exists because a child whose pipe is full stops, and one whose reader waits for
a newline that never comes holds memory without bound: the pipes are read in
chunks, lines are cut at a fixed length, and every line goes to a callback (the
operator masks and stores it), a logger, and a short tail kept for error
reports.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["MAX_LINE_BYTES", "LineCallback", "OutputReader"]

logger = logging.getLogger("wt_invokers.local")
# Workflow output gets its own logger so a caller that forwards lines itself (the
# operator masks secrets first) can silence this unfiltered copy.
output_logger = logging.getLogger("wt_invokers.local.output")

LineCallback = Callable[[str, str], None]
"""``callback(stream_name, line)`` with ``stream_name`` ``"stdout"`` or ``"stderr"``."""

_CHUNK = 64 * 1024
MAX_LINE_BYTES = 64 * 1024
"""A "line" longer than this is cut: one runaway write must not hold megabytes in memory.
Each piece but the last is cut at a character boundary at most 3 bytes before the limit, so
a caller can tell a piece that may continue (a masker joins it with the next one)."""


def _cut(pending: bytes) -> int:
    """Where to cut an over-long line: the limit, moved back off a UTF-8 continuation byte."""
    at = MAX_LINE_BYTES
    while at > MAX_LINE_BYTES - 3 and 0x80 <= pending[at] <= 0xBF:
        at -= 1
    return at


class OutputReader:
    """Drains the two read ends of a workflow's output pipes until both are closed."""

    def __init__(
        self,
        out_fd: int,
        err_fd: int,
        *,
        label: str,
        tail_lines: int,
        callback: LineCallback | None,
    ) -> None:
        self.label = label
        self.callback = callback
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._pipes: list[BinaryIO] = [
            os.fdopen(out_fd, "rb", buffering=0),
            os.fdopen(err_fd, "rb", buffering=0),
        ]
        self._tasks = [
            asyncio.create_task(self._drain(self._pipes[0], "stdout")),
            asyncio.create_task(self._drain(self._pipes[1], "stderr")),
        ]

    async def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` for end-of-file on both pipes, then stop reading.

        A process that outlived the workflow may hold the pipes open; its output
        after ``timeout`` is not read.
        """
        try:
            done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    logger.warning("reading workflow output failed: %r", task.exception())
        finally:
            for pipe in self._pipes:  # a reader cancelled before it started left its pipe
                pipe.close()

    async def _drain(self, pipe: BinaryIO, name: str) -> None:
        # Read chunks, not readline(): a long line without "\n" must neither raise
        # (readline's limit) nor stall the pipe and so deadlock the child.
        level = logging.DEBUG if name == "stdout" else logging.INFO
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader(limit=_CHUNK, loop=loop)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream, loop=loop), pipe
        )
        try:
            pending = b""
            while True:
                chunk = await stream.read(_CHUNK)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                while len(pending) > MAX_LINE_BYTES:
                    at = _cut(pending)
                    lines.append(pending[:at])
                    pending = pending[at:]
                self._emit(name, level, lines)
            if pending:
                self._emit(name, level, [pending])
        finally:
            transport.close()

    def _emit(self, name: str, level: int, lines: list[bytes]) -> None:
        log = output_logger.isEnabledFor(level)
        callback = self.callback
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            self.tail.append(line)
            if log:
                output_logger.log(level, "[%s %s] %s", self.label, name, line)
            if callback is not None:
                try:
                    callback(name, line)
                except Exception:  # a broken callback must not stop draining (deadlock)
                    logger.exception("line_callback failed; it will not be called again")
                    self.callback = callback = None
