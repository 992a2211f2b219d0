"""Hooks that add work before and after a run: fetch an environment, ship the results.

Exists so an invoker is composed, not rewritten, to run from a pixi-pack archive and
hand its results back (see :class:`~wt_invokers.sandbox.SandboxInvoker`). Both mixins
hook :class:`~wt_invokers.abstract.AbstractInvoker`'s lifecycle and read their inputs
from :attr:`~wt_invokers.abstract.AbstractInvoker.run_args` (``run()``'s keywords).
Each hook calls ``super()`` first, so several mixins stack in MRO order.

Upstream's names and keywords; beyond upstream, the archive is unpacked in-process
with py-rattler (no ``pixi-unpack`` binary), every package is checked against the
sha256 in the archive's metadata, and the environment is cached by archive digest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wt_invokers import _pixi_pack, _transfer
from wt_invokers._transfer import UnsafeResultsError, archive_results
from wt_invokers.exceptions import EnvironmentDigestError, InvokerConfigurationError
from wt_invokers.retry import RetryPolicy

__all__ = [
    "ENVIRONMENT_CACHE_ENV_VAR",
    "PixiUnpackMixin",
    "TransferSettings",
    "UnsafeResultsError",
    "UploadResultsArchiveMixin",
    "archive_results",
]

logger = logging.getLogger(__name__)

ENVIRONMENT_CACHE_ENV_VAR = "WT_INVOKERS__ENVIRONMENT_CACHE_DIR"
"""Where unpacked environments are kept, one directory per archive digest."""


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclasses.dataclass(frozen=True)
class TransferSettings:
    """How archives are moved; :meth:`from_env` reads upstream's variables once."""

    max_attempts: int = 5
    """Attempts per transfer (``WT_INVOKERS__TRANSFER_MAX_ATTEMPTS``); failures that
    may pass (connection errors, 5xx, 408, 429) are retried, others fail at once."""
    retry_wait_initial: float = 1.0
    """First backoff bound in seconds (``WT_INVOKERS__TRANSFER_RETRY_WAIT_INITIAL``)."""
    retry_wait_max: float = 60.0
    """Backoff cap in seconds (``WT_INVOKERS__TRANSFER_RETRY_WAIT_MAX``)."""
    timeout: float = 1800.0
    """Socket timeout of one attempt in seconds (``WT_INVOKERS__TRANSFER_TIMEOUT``)."""

    @classmethod
    def from_env(cls) -> TransferSettings:
        return cls(
            max_attempts=int(os.environ.get("WT_INVOKERS__TRANSFER_MAX_ATTEMPTS", 5)),
            retry_wait_initial=_env_float("WT_INVOKERS__TRANSFER_RETRY_WAIT_INITIAL", 1.0),
            retry_wait_max=_env_float("WT_INVOKERS__TRANSFER_RETRY_WAIT_MAX", 60.0),
            timeout=_env_float("WT_INVOKERS__TRANSFER_TIMEOUT", 1800.0),
        )

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_wait_initial, self.retry_wait_max)


def _settings(obj: object) -> TransferSettings:
    found = getattr(obj, "transfer", None)
    return found if isinstance(found, TransferSettings) else TransferSettings.from_env()


class PixiUnpackMixin:
    """``_pre_run``: fetch the pixi-pack archive ``environment_tar_url`` and unpack it.

    Reads ``environment_tar_url`` (``file://``, ``http(s)://``; required) and
    ``environment_tar_digest`` (``sha256:<hex>``; optional, upstream v0.5's pin) from
    ``run_args``. Leaves in ``run_state``: ``activate_path`` (a bash activation
    script, as upstream), ``prefix`` (the environment) and ``environment_digest``.
    With a pinned digest already in the cache, nothing is downloaded at all.
    """

    if TYPE_CHECKING:
        run_args: MappingProxyType[str, Any]
        run_state: dict[str, Any]
        work_dir: str

    def _environment_cache_dir(self) -> Path:
        configured = getattr(self, "environment_cache_dir", None) or os.environ.get(
            ENVIRONMENT_CACHE_ENV_VAR
        )
        return Path(configured) if configured else Path(self.work_dir) / "environments"

    async def _pre_run(self) -> None:
        await super()._pre_run()  # type: ignore[misc]  # the invoker's, in the MRO
        url = self.run_args.get("environment_tar_url")
        if not url:
            raise InvokerConfigurationError(
                "environment_tar_url is required -- pass it as a kwarg to run()"
            )
        pinned = self.run_args.get("environment_tar_digest")
        expected = _pixi_pack.validate_digest(pinned) if pinned else None
        scheme = urlsplit(url).scheme
        if scheme not in ("file", "http", "https"):
            raise InvokerConfigurationError(f"Unsupported scheme for environment_tar_url: {scheme}")
        cache = self._environment_cache_dir()
        entry = _pixi_pack.cached(cache, expected) if expected else None
        if entry is None:
            entry = await self._fetch_and_unpack(url, expected, cache)
        self.run_state["activate_path"] = str(entry.activate_path)
        self.run_state["prefix"] = str(entry.prefix)
        self.run_state["environment_digest"] = f"sha256:{entry.root.name}"

    async def _fetch_and_unpack(
        self, url: str, expected: str | None, cache: Path
    ) -> _pixi_pack.UnpackedEnvironment:
        work = Path(self.work_dir)
        await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
        # A name of its own: runs sharing a work_dir (the operator's) download side by side.
        fd, name = await asyncio.to_thread(
            tempfile.mkstemp, prefix="environment-", suffix=".tar", dir=work
        )
        os.close(fd)
        tar_path = Path(name)
        settings = _settings(self)
        await _transfer.download(url, tar_path, policy=settings.policy, timeout=settings.timeout)
        try:
            digest = await asyncio.to_thread(_pixi_pack.file_digest, tar_path)
            if expected is not None and digest != expected:
                raise EnvironmentDigestError(
                    f"environment.tar integrity check failed: expected {expected}, got {digest}"
                )
            return await asyncio.to_thread(_pixi_pack.unpack_cached, tar_path, digest, cache)
        finally:
            await asyncio.to_thread(_pixi_pack.remove_path, tar_path)


class UploadResultsArchiveMixin:
    """``_post_run``: tar the results directory and send it to ``results_upload_url``.

    Reads ``results_url`` (the local ``file://`` directory the workflow wrote) and
    ``results_upload_url`` (a signed ``http(s)://`` URL: PUT with ``Content-Length``;
    or ``file://``: a copy) from ``run_args``; ``skip_results_archive_upload=True``
    skips it (upstream v0.4). Runs after a failed workflow too: its results say why.
    Entries that must not leave the sandbox (links escaping the directory, hard
    links, absolute paths, devices, setuid/setgid bits) abort the archive.
    """

    if TYPE_CHECKING:
        run_args: MappingProxyType[str, Any]
        run_state: dict[str, Any]

    async def _post_run(self) -> None:
        await super()._post_run()  # type: ignore[misc]  # the invoker's, in the MRO
        if self.run_args.get("skip_results_archive_upload"):
            return
        results_url = self.run_args.get("results_url")
        if not results_url:
            raise InvokerConfigurationError("results_url is required -- pass it as an arg to run()")
        upload_url = self.run_args.get("results_upload_url")
        if not upload_url:
            raise InvokerConfigurationError(
                "results_upload_url is required -- pass it as a kwarg to run()"
            )
        if urlsplit(results_url).scheme not in ("file", ""):
            raise InvokerConfigurationError(
                f"results_url must be a file:// URL for sandbox invoker, got: {results_url}"
            )
        results_dir = _transfer.local_path(results_url)
        if not await asyncio.to_thread(results_dir.is_dir):
            raise RuntimeError(f"Results directory does not exist: {results_dir}")
        fd, name = tempfile.mkstemp(suffix=".tar.gz")
        os.close(fd)
        tar_path = Path(name)
        try:
            await asyncio.to_thread(archive_results, results_dir, tar_path)
            settings = _settings(self)
            await _transfer.upload(
                tar_path, upload_url, policy=settings.policy, timeout=settings.timeout
            )
            logger.info("uploaded the results archive of %s", self.run_args.get("workflow_run_id"))
        finally:
            await asyncio.to_thread(tar_path.unlink, missing_ok=True)
