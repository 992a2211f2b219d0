"""Starting a workflow process: its files, its results directory, its exec.

Exists so the invoker (:mod:`wt_invokers.local`) reads as the run's lifecycle,
while the details of getting a process going — private 0600 files for
configurations, the results directory a ``file://`` URL names, pipes of our own,
and what each way an exec can fail means to a caller — live in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from wt_invokers.exceptions import (
    InstallationError,
    InvocationStartError,
    InvokerConfigurationError,
)

__all__ = [
    "make_results_dir",
    "prepare_files",
    "remove_all",
    "results_dir_of",
    "spawn",
    "start_error",
    "write_private",
]


def results_dir_of(results_url: str) -> Path | None:
    """The local directory a results URL names, or None for remote URLs (gs://, s3://…)."""
    if results_url.startswith("file:"):
        parsed = urlparse(results_url)
        if parsed.netloc not in ("", "localhost"):
            raise InvokerConfigurationError(
                f"results URL {results_url!r} names a remote host; only local file URLs work here"
            )
        return Path(unquote(parsed.path))
    if os.path.isabs(results_url):
        return Path(results_url)
    return None


def prepare_files(
    results_dir: Path | None, config_text: str, lithops_text: str | None
) -> list[Path]:
    """Create the results directory and write the private config files (blocking).

    Returns ``[config]`` or ``[config, lithops config]``; nothing is left behind on error.
    """
    if results_dir is not None:
        make_results_dir(results_dir)
    files = [write_private(config_text, "wt-config-", ".yaml")]
    try:
        if lithops_text is not None:
            files.append(write_private(lithops_text, "wt-lithops-", ".yaml"))
    except BaseException:
        remove_all(files)
        raise
    return files


def make_results_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvokerConfigurationError(
            f"the results directory {path} cannot be created: {exc.strerror or exc}"
        ) from exc


def write_private(text: str, prefix: str, suffix: str) -> Path:
    # mkstemp creates the file 0600: configurations may carry credentials.
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(name)


def remove_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def spawn(
    argv: list[str], env: dict[str, str], *, cwd: Path, launcher: str
) -> tuple[asyncio.subprocess.Process, int, int]:
    """Start ``argv`` in its own session with its stdout/stderr on fresh pipes.

    Returns the process and the read ends. Exec failures become the library's errors.
    """
    # Our own pipes, not asyncio's PIPE: asyncio's Process.wait() only returns once
    # every pipe is closed, so a background grandchild keeping stdout open would
    # make wait() hang although the workflow itself has exited.
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            cwd=cwd,
            env=env,
            # Own session and process group: the whole tree can be signalled at once.
            start_new_session=True,
        )
    except BaseException as exc:
        os.close(out_r)
        os.close(err_r)
        raise start_error(argv[0], exc, launcher) from exc
    finally:
        os.close(out_w)
        os.close(err_w)
    return proc, out_r, err_r


def start_error(program: str, exc: BaseException, launcher: str) -> BaseException:
    """The library error for an exec that failed (other exceptions pass through)."""
    if isinstance(exc, FileNotFoundError):
        hint = (
            "is pixi installed and on PATH? (or use launcher='prefix')"
            if launcher == "pixi"
            else "is the workflow installed?"
        )
        return InstallationError(f"cannot start {program!r}: {exc.strerror}; {hint}")
    if isinstance(exc, PermissionError):
        return InstallationError(f"cannot execute {program!r}: {exc.strerror}")
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        if exc.errno == errno.E2BIG:
            detail += (
                " (an environment value or argument is over Linux's 128 KiB limit; "
                "pass large data through the config or a file)"
            )
        return InvocationStartError(f"cannot start {program!r}: {detail}")
    if isinstance(exc, ValueError):  # e.g. an embedded NUL byte
        return InvokerConfigurationError(f"cannot start {program!r}: {exc}")
    return exc
