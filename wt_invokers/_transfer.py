"""Moving archives in and out of a sandbox: download, safe results archive, signed-URL PUT.

Exists for the sandbox mixins: an environment archive comes in over ``file://`` or
``http(s)://`` and a results archive goes out to a signed URL (or a ``file://`` path
in tests). HTTP failures that may pass (connection errors, 5xx, 408, 429) are
retried under one :class:`~wt_invokers.retry.RetryPolicy`; the rest fail at once.
The standard library's ``http.client`` does the HTTP: no extra dependency.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import stat
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from wt_invokers.exceptions import InvokerConfigurationError, TransferError
from wt_invokers.retry import RetryPolicy, retry_call

__all__ = ["UnsafeResultsError", "archive_results", "download", "local_path", "upload"]

_CHUNK = 1 << 20
_RETRYABLE_STATUS = frozenset({408, 429})
_MAX_REDIRECTS = 5


class UnsafeResultsError(tarfile.FilterError):
    """The results directory holds an entry that must not leave the sandbox."""


class _HTTPStatus(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status


def local_path(url: str) -> Path:
    """The path of a ``file://`` URL (or of a plain path)."""
    parts = urlsplit(url)
    return Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(url)


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return cls(parts.netloc, timeout=timeout), path


def _transient(exc: BaseException) -> str | None:
    if isinstance(exc, _HTTPStatus):
        return (
            f"HTTP {exc.status}" if exc.status >= 500 or exc.status in _RETRYABLE_STATUS else None
        )
    if isinstance(exc, OSError | http.client.HTTPException):
        return type(exc).__name__
    return None


def _give_up(what: str) -> Callable[[BaseException, str, int], BaseException]:
    def build(exc: BaseException, code: str, attempts: int) -> BaseException:
        return TransferError(
            f"{what} failed after {attempts} attempt(s): {exc}",
            status=exc.status if isinstance(exc, _HTTPStatus) else None,
        )

    return build


async def _retrying(what: str, call: Callable[[], Awaitable[None]], policy: RetryPolicy) -> None:
    try:
        await retry_call(what, call, policy=policy, transient=_transient, give_up=_give_up(what))
    except _HTTPStatus as exc:  # refused at once (4xx): retrying cannot help
        raise TransferError(f"{what} failed: {exc}", status=exc.status) from exc


def _get(url: str, dest: Path, timeout: float) -> None:
    for _ in range(_MAX_REDIRECTS + 1):
        conn, path = _connection(url, timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                url = resp.getheader("Location") or url
                continue
            if resp.status != 200:
                raise _HTTPStatus(resp.status, resp.reason)
            with dest.open("wb") as f:
                shutil.copyfileobj(resp, f, _CHUNK)
            return
        finally:
            conn.close()
    raise TransferError(f"too many redirects downloading {url}")


def _put(path: Path, url: str, timeout: float) -> None:
    conn, target = _connection(url, timeout)
    try:
        with path.open("rb") as f:
            # An explicit Content-Length: signed-URL uploads (GCS) refuse chunked bodies.
            headers = {
                "Content-Type": "application/gzip",
                "Content-Length": str(os.fstat(f.fileno()).st_size),
            }
            conn.request("PUT", target, body=f, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if not 200 <= resp.status < 300:
            raise _HTTPStatus(resp.status, resp.reason)
    finally:
        conn.close()


async def download(url: str, dest: Path, *, policy: RetryPolicy, timeout: float) -> None:
    """Fetch ``url`` (``file://``, ``http://``, ``https://``) into ``dest``."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        await asyncio.to_thread(shutil.copyfile, local_path(url), dest)
        return
    if scheme not in ("http", "https"):
        raise InvokerConfigurationError(f"Unsupported scheme for environment_tar_url: {scheme}")
    await _retrying(
        "downloading the environment archive",
        lambda: asyncio.to_thread(_get, url, dest, timeout),
        policy,
    )


async def upload(path: Path, url: str, *, policy: RetryPolicy, timeout: float) -> None:
    """Send the file at ``path`` to ``url``: a PUT for ``http(s)://``, a copy for ``file://``."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        dest = local_path(url)
        await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, path, dest)
        return
    if scheme not in ("http", "https"):
        raise InvokerConfigurationError(f"Unsupported scheme for results_upload_url: {scheme}")
    await _retrying(
        "uploading the results archive",
        lambda: asyncio.to_thread(_put, path, url, timeout),
        policy,
    )


def _refuse_unsafe(member: tarfile.TarInfo) -> tarfile.TarInfo:
    # Refused, not repaired: a results directory holding these was tampered with by the
    # (untrusted) workflow, and whatever opens the archive downstream must be safe.
    if member.islnk():
        raise UnsafeResultsError(f"{member.name} is a hard link", member)
    if member.isdev() or member.isfifo():
        raise UnsafeResultsError(f"{member.name} is a device or FIFO", member)
    if member.mode & (stat.S_ISUID | stat.S_ISGID):
        raise UnsafeResultsError(f"{member.name} has the setuid/setgid bit", member)
    try:
        checked = tarfile.data_filter(member, "")  # absolute paths, "..", escaping symlinks
    except tarfile.FilterError as exc:
        raise UnsafeResultsError(f"{member.name}: {exc}", member) from exc
    # data_filter blanks owner and (for dirs, links) mode, which the writer cannot store.
    checked.mode = member.mode & 0o755 if checked.mode is None else checked.mode
    checked.uid = checked.gid = 0
    checked.uname = checked.gname = ""
    return checked


def archive_results(results_dir: Path, dest: Path) -> None:
    """Tar+gzip the contents of ``results_dir`` into ``dest``; UnsafeResultsError on an
    entry that must not leave the sandbox (and no archive is left behind)."""
    try:
        with tarfile.open(dest, "w:gz") as tar:
            for item in sorted(results_dir.iterdir()):
                tar.add(item, arcname=item.name, filter=_refuse_unsafe)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
