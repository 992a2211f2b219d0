"""A Local run's output: masked, bounded, logged, and stored where its author can read it.

Exists so ``kubectl wt logs`` has something to show after the run, without the
operator's log as the only copy (interleaved with every other run, gone with the
pod, readable only by admins). Each line is masked first (Secret values) — in a
worker thread when the run has Secrets, so one run's long lines never hold up the
event loop every other run is reconciled on — then goes to the operator's log (with
the run's namespace and name as fields) and into a buffer bounded in bytes that
keeps the start and the end of the output — the middle of a chatty run is cut, the
error at its end is not. While the run is active the buffer is written to a
ConfigMap in the run's namespace every few seconds (only when something changed),
and once more when it ends; the ConfigMap is owned by the run, so it lives exactly
as long as the run does. Memory per run is bounded by ``max_bytes``; with the slot
limit that bounds the operator's total.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import secrets
from typing import Any

from wt_invokers.local import MAX_LINE_BYTES
from wt_operator.core.errors import KubeApiError, RunGoneError
from wt_operator.core.masking import Masker, StreamMasker
from wt_operator.shell.kube import Kube
from wt_operator.shell.refs import LogRecord, LogTarget, RunRef

__all__ = ["RunLog"]

_HEAD_SHARE = 8
"""1/8 of the budget keeps the start of the output (how the run began)."""
_PENDING_MAX = 4 * 1024 * 1024
"""Most characters of output waiting to be masked. A workflow can print faster than its
lines are masked; past this its further lines are dropped (counted as omitted) rather
than held in the operator's memory."""


class RunLog:
    """Collects one run's output lines; see the module docstring."""

    def __init__(
        self,
        ref: RunRef,
        *,
        kube: Kube,
        masker: Masker,
        max_bytes: int,
        flush_seconds: float,
        tail_lines: int,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        target: LogTarget | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        self.ref = ref
        self.kube = kube
        self.masker = masker
        self.max_bytes = max_bytes
        self.flush_seconds = flush_seconds
        self.logger = logger
        self._head: list[str] = []
        self._head_bytes = 0
        self._tail: collections.deque[tuple[str, int]] = collections.deque()
        self._tail_bytes = 0
        self._last: collections.deque[str] = collections.deque(maxlen=max(tail_lines, 1))
        self.total_bytes = 0
        self.dropped_bytes = 0
        self._dirty = False
        self._target: LogTarget | None = target
        """The object written so far (a run picked up after a restart: its status.log)."""
        # Tags the object this writer creates: a create retried after a lost reply adopts
        # its own object, never one someone else made under the same name.
        self._writer = secrets.token_hex(16)
        self._writes_failed = False
        self._flusher: asyncio.Task[None] | None = None
        self.executor = executor
        self._pending: list[tuple[str, str | None]] = []
        self._pending_chars = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._masking: asyncio.Task[None] | None = None
        self._streams: dict[str, StreamMasker] = {}
        """Touched only by the masking worker (one batch at a time)."""

    # -- collecting (called by the invoker for every line, on the event loop) -------------

    def line(self, stream: str, line: str) -> None:
        if not self.masker:  # nothing to mask: no reason to leave the event loop
            self._store(stream, line)
            return
        if self._pending_chars + len(line) > _PENDING_MAX:
            size = len(line.encode("utf-8", "replace")) + 1
            self.total_bytes += size
            self.dropped_bytes += size
            self._pending.append((stream, None))  # the masker must know a piece is missing
        else:
            self._pending.append((stream, line))
            self._pending_chars += len(line)
        if self._masking is None:
            self._masking = asyncio.create_task(self._mask_pending())
        self._wake.set()

    async def _mask_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending, self._pending_chars = self._pending, [], 0
                masked, lost = await loop.run_in_executor(self.executor, self._mask_batch, batch)
                self.dropped_bytes += lost
                for stream, text in masked:
                    self._store(stream, text)
            if self._closing:
                ends = await loop.run_in_executor(self.executor, self._mask_ends)
                for stream, text in ends:
                    self._store(stream, text)
                return

    def _mask_batch(self, batch: list[tuple[str, str | None]]) -> tuple[list[tuple[str, str]], int]:
        """Runs in the executor: the masked lines, and the bytes of held pieces dropped."""
        out: list[tuple[str, str]] = []
        lost = 0
        for stream, line in batch:
            masker = self._streams.get(stream)
            if masker is None:
                masker = self._streams[stream] = StreamMasker(self.masker, cut_bytes=MAX_LINE_BYTES)
            if line is None:  # a held piece whose continuation was dropped: never shown
                lost += masker.gap()
            else:
                out.extend((stream, text) for text in masker.feed(line))
        return out, lost

    def _mask_ends(self) -> list[tuple[str, str]]:
        return [(name, text) for name, m in self._streams.items() for text in m.flush()]

    def _store(self, stream: str, masked: str) -> None:
        self.logger.info("[%s] %s", stream, masked)
        self._last.append(masked)
        size = len(masked.encode("utf-8", "replace")) + 1
        self.total_bytes += size
        self._dirty = True
        if self.max_bytes <= 0:
            self.dropped_bytes += size
            return
        if self._head_bytes + size <= self.max_bytes // _HEAD_SHARE and not self._tail:
            self._head.append(masked)
            self._head_bytes += size
            return
        self._tail.append((masked, size))
        self._tail_bytes += size
        budget = self.max_bytes - self._head_bytes
        while self._tail and self._tail_bytes > budget:
            _, gone = self._tail.popleft()
            self._tail_bytes -= gone
            self.dropped_bytes += gone

    def tail(self) -> list[str]:
        """The last (masked) lines, for ``status.message``."""
        return list(self._last)

    def text(self) -> str:
        parts = list(self._head)
        if self.dropped_bytes:
            parts.append(f"… [{self.dropped_bytes} bytes of output omitted] …")
        parts.extend(line for line, _ in self._tail)
        return "\n".join(parts) + ("\n" if parts else "")

    # -- storing ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start writing the log while the run is active."""
        if self.max_bytes > 0 and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_periodically())

    async def close(self) -> None:
        """The run ended: mask what is left, write the complete log once more (if any)."""
        if self._masking is not None:
            self._closing = True
            self._wake.set()
            try:
                await self._masking
            except Exception:  # a masking bug loses output, never the run's outcome
                self.logger.exception("masking the run's output failed")
            self._masking = None
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self.max_bytes > 0 and self.total_bytes:
            await self._write(complete=True)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            if self._dirty:
                await self._write(complete=False)

    async def _write(self, *, complete: bool) -> None:
        if self._writes_failed:
            return
        self._dirty = False
        record = LogRecord(
            text=self.text(),
            total_bytes=self.total_bytes,
            truncated=self.dropped_bytes > 0,
            complete=complete,
        )
        try:
            target = await self.kube.write_log(
                self.ref, record, target=self._target, writer=self._writer
            )
            if target != self._target:
                await self._record_target(target)
        except (KubeApiError, RunGoneError) as exc:
            # The run goes on without a stored log (e.g. RBAC lacks configmaps create);
            # say so once, not on every flush.
            self._writes_failed = True
            self.logger.warning("the run's output is not stored: %s", exc)

    async def _record_target(self, target: LogTarget) -> None:
        """Name the log object in status.log (only the operator writes status): the one
        place ``kubectl wt logs`` trusts, since anyone who may create ConfigMaps in the
        namespace may create one under the run's log name, owner reference included."""
        self._target = target
        await self.kube.patch_status(
            self.ref, {"log": {"configMap": target.name, "uid": target.uid}}
        )
        if target.displaced is not None:
            await self.kube.post_event(
                self.ref,
                reason="LogNameTaken",
                message=f"ConfigMap {target.displaced} was not written by the operator for "
                f"this run; the run's output is stored in ConfigMap {target.name} "
                "(status.log)",
                warning=True,
            )
