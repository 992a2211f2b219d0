"""``kubectl wt wait``: follow one run until it ends, exit with the workflow's code.

A watch on the single object (field selector on its name) shows each phase
change as it happens, with no polling load on the API server. Watches can be
forbidden by RBAC (a user with only ``get``), cut by proxies, or expire: then
the run is polled instead, so ``wait`` still works, only less promptly.

Progress goes to stderr, so ``run=$(kubectl wt submit -f x.yaml --wait)``
captures just the name: on a terminal one line redrawn with a spinner, else
one plain line per transition (CI logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from wt_kubectl.core import (
    EXIT_CANCELLED,
    EXIT_TIMEOUT,
    exit_code_for,
    human_duration,
    run_duration,
    run_reason,
)
from wt_kubectl.kube import Cluster

__all__ = ["POLL_SECONDS", "Progress", "follow", "transition_line"]

POLL_SECONDS = 2.0
"""Between two GETs once the watch is unavailable (a Local run's phases last longer)."""
_WATCH_SECONDS = 120
"""Server-side length of one watch; then the run is read again and a new watch starts."""
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _headline(name: str, status: Mapping[str, Any]) -> str:
    """``NAME: Failed (DeadlineExceeded)``; the reason only where it adds to the phase."""
    phase = str(status.get("phase") or "Pending")
    reason = run_reason(status)
    return f"{name}: {phase} ({reason})" if reason and reason != phase else f"{name}: {phase}"


def transition_line(name: str, status: Mapping[str, Any]) -> str:
    """``NAME: Failed (DeadlineExceeded): first line of the message`` for one status."""
    line = _headline(name, status)
    message = str(status.get("message") or "").strip()
    if message:
        line += f": {message.splitlines()[0]}"
    return line


def final_lines(
    name: str, status: Mapping[str, Any], code: int, now: dt.datetime | None = None
) -> list[str]:
    """What stays on screen when the run ended: the outcome, and why it failed."""
    phase = str(status.get("phase") or "")
    head = _headline(name, status)
    duration = run_duration(status, now or dt.datetime.now(dt.UTC))
    if duration:
        head += f" after {duration}"
    if phase != "Succeeded":
        head += f", exit code {code}"
    lines = [head]
    message = str(status.get("message") or "").strip()
    if message and phase != "Succeeded":
        lines += ["  " + line for line in message.splitlines()]
    return lines


class Progress:
    """Shows a run's phase changes on a terminal (redrawn line) or as plain lines."""

    def __init__(
        self,
        name: str,
        stream: TextIO,
        *,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.stream = stream
        self.tty = tty
        self.clock = clock
        self.started = clock()
        self.frame = 0
        self.status: Mapping[str, Any] = {}
        self._shown: tuple[str, str] | None = None

    def update(self, status: Mapping[str, Any]) -> None:
        """Record the run's latest status; print a line when phase or reason changed."""
        self.status = status
        key = (str(status.get("phase") or "Pending"), run_reason(status))
        if key == self._shown:
            return
        self._shown = key
        if self.tty:
            self.redraw()
        else:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            self._write(f"{stamp} {transition_line(self.name, status)}\n")

    def redraw(self) -> None:
        """Spinner, phase and elapsed time on one line (terminals only)."""
        if not self.tty:
            return
        self.frame += 1
        spin = _SPINNER[self.frame % len(_SPINNER)]
        elapsed = human_duration(self.clock() - self.started)
        line = f"{spin} {transition_line(self.name, self.status)}  [{elapsed}]"
        self._write(f"\r\x1b[2K{line[:200]}")

    def finish(self, lines: list[str]) -> None:
        """Replace the spinner line with the final lines."""
        if self.tty:
            self._write("\r\x1b[2K")
        self._write("".join(line + "\n" for line in lines))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


async def _spin(progress: Progress) -> None:
    while True:
        await asyncio.sleep(0.1)
        progress.redraw()


def _record(progress: Progress, name: str, obj: Mapping[str, Any]) -> int | None:
    """Show the run's status; its exit code (final lines shown) once it has ended."""
    status = obj.get("status") or {}
    progress.update(status)
    code = exit_code_for(status)
    if code is not None:
        progress.finish(final_lines(name, status, code))
    return code


async def _until_done(cluster: Cluster, name: str, obj: dict[str, Any], progress: Progress) -> int:
    uid = obj["metadata"]["uid"]
    use_watch = True
    while True:
        if (code := _record(progress, name, obj)) is not None:
            return code
        if use_watch:
            try:
                rv = obj["metadata"]["resourceVersion"]
                async for kind, event_obj in cluster.watch_run(
                    name, rv, timeout_seconds=_WATCH_SECONDS
                ):
                    if kind not in ("ADDED", "MODIFIED", "DELETED"):
                        continue
                    if (code := _record(progress, name, event_obj)) is not None:
                        return code
                    if kind == "DELETED":
                        return _deleted(progress, name)
            except (TimeoutError, ApiException, aiohttp.ClientError, OSError, ValueError):
                # Forbidden, expired (410) or cut: polling still answers.
                use_watch = False
        else:
            await asyncio.sleep(POLL_SECONDS)
        found = await cluster.find_run(name)
        if found is None or found["metadata"]["uid"] != uid:  # or created again, same name
            return _deleted(progress, name)
        obj = found


def _deleted(progress: Progress, name: str) -> int:
    progress.finish([f"{name}: deleted before it finished (cancelled), exit code 130"])
    return EXIT_CANCELLED


async def follow(
    cluster: Cluster, name: str, *, timeout: float | None, progress: Progress, err: TextIO
) -> int:
    """Follow ``name`` until it ends (its exit code) or ``timeout`` passes (124).

    The run is read once before the clock starts, so ``--timeout 0`` checks it once.
    """
    obj = await cluster.get_run(name)
    spinner = asyncio.create_task(_spin(progress)) if progress.tty else None
    try:
        async with asyncio.timeout(timeout):
            return await _until_done(cluster, name, obj, progress)
    except TimeoutError:
        phase = progress.status.get("phase") or "Pending"
        progress.finish([])
        err.write(
            f"kubectl wt: timed out after {human_duration(timeout or 0)} waiting for {name} "
            f"(still {phase}); the run goes on: wait again, or delete it to cancel\n"
        )
        return EXIT_TIMEOUT
    finally:
        if spinner is not None:
            spinner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await spinner
