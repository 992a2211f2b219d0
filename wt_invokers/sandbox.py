"""The sandbox invoker: environment archive in, workflow run, results archive out.

Exists for deployments that isolate a workflow (a container with egress limited to
two URLs): :class:`SandboxInvoker` composes :class:`~wt_invokers.mixins.PixiUnpackMixin`
(fetch and unpack the pixi-pack environment) and
:class:`~wt_invokers.mixins.UploadResultsArchiveMixin` (ship the results) around a
local run of the workflow from the unpacked environment, supervised as a process
tree as :class:`~wt_invokers.local.LocalSubprocessInvoker` does. It is not a sandbox
itself; its narrow interface makes one easy to build around it.

The console entry point ``wt-invokers.sandbox`` (:func:`main`, upstream's flags) is
what a sandbox image runs as its ENTRYPOINT.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

from wt_invokers._pixi_pack import validate_digest
from wt_invokers.abstract import AbstractInvoker, as_matchspec
from wt_invokers.exceptions import (
    InvocationStateError,
    InvokerConfigurationError,
    InvokerError,
)
from wt_invokers.invocation import Invocation, warn_unknown_options
from wt_invokers.local import LocalSubprocessInvoker
from wt_invokers.mixins import PixiUnpackMixin, TransferSettings, UploadResultsArchiveMixin

__all__ = ["WORK_DIR_ENV_VAR", "LocalArchiveInvoker", "SandboxInvoker", "main"]

logger = logging.getLogger(__name__)

WORK_DIR_ENV_VAR = "WT_INVOKERS__SANDBOX_INVOKER__WORK_DIR"
"""Default :attr:`SandboxInvoker.work_dir` (else ``/work``, as upstream)."""

# run() keywords the mixins read; not "unknown options" to the workflow launch.
_HOOK_OPTIONS = frozenset(
    {
        "environment_tar_url",
        "environment_tar_digest",
        "results_upload_url",
        "skip_results_archive_upload",
    }
)


class _PrefixRunner(LocalSubprocessInvoker):
    """The local invoker, pointed at an environment prefix outside any pixi workspace."""

    unpacked_prefix: Path = Path()

    @property
    def prefix(self) -> Path:
        return self.unpacked_prefix


@dataclasses.dataclass(eq=False)
class SandboxInvoker(PixiUnpackMixin, UploadResultsArchiveMixin, AbstractInvoker):
    """Runs a workflow from a pixi-pack archive and uploads its results archive.

    ``run()`` keywords (beside the usual arguments): ``environment_tar_url`` (required),
    ``environment_tar_digest`` (``sha256:…``, optional), ``results_upload_url`` (required
    unless ``skip_results_archive_upload=True``). ``results_url`` must be ``file://``.
    """

    work_dir: str = dataclasses.field(
        default_factory=lambda: os.environ.get(WORK_DIR_ENV_VAR, "/work")
    )
    """Where the archive is downloaded and the workflow runs (its working directory)."""
    _: dataclasses.KW_ONLY
    environment_cache_dir: str | None = None
    """Unpacked environments, one per archive digest; default
    ``$WT_INVOKERS__ENVIRONMENT_CACHE_DIR``, else ``<work_dir>/environments``."""
    transfer: TransferSettings = dataclasses.field(default_factory=TransferSettings.from_env)
    """Retries and timeouts of the download and the upload."""
    kill_grace_seconds: float = 10.0
    """Between SIGTERM and SIGKILL when the run is timed out or cancelled."""

    async def is_installed(self) -> bool:
        """Always True: the workflow ships inside the environment archive."""
        return True

    async def install(self) -> None:
        raise NotImplementedError(
            "Dynamic installation of workflows is not yet supported; SandboxInvoker runs "
            "the workflow bundled in the pixi-pack environment archive"
        )

    @property
    def is_waitable(self) -> bool:
        return True

    async def _run(
        self,
        workflow_run_id: str,
        config_text: str,
        results_url: str,
        execution_mode: str,
        mock_io: bool,
        otel_exporter: str | None = None,
        otel_console_exporter_dst: str | None = None,
        extra_env: dict[str, str] | None = None,
        lithops_config_text: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the workflow from the environment ``_pre_run`` unpacked."""
        prefix = self.run_state.get("prefix")
        if not prefix:
            raise InvocationStateError("no unpacked environment: PixiUnpackMixin._pre_run must run")
        options = {k: v for k, v in kwargs.items() if k not in _HOOK_OPTIONS}
        invocation = Invocation.from_seed(
            workflow_run_id,
            config_text,
            results_url,
            execution_mode,
            mock_io,
            otel_exporter,
            otel_console_exporter_dst,
            extra_env,
            lithops_config_text,
            options,
        )
        warn_unknown_options(type(self).__name__, options)
        runner = _PrefixRunner(
            self.matchspec,
            self.results_env_var,
            self.work_dir,
            launcher="prefix",
            kill_grace_seconds=self.kill_grace_seconds,
        )
        runner.unpacked_prefix = Path(prefix)
        await runner.start(invocation)
        self.run_state["runner"] = runner

    async def _wait(self, timeout: float | None = None, error_msg: str | None = None) -> int:
        runner = self.run_state.get("runner")
        if not isinstance(runner, _PrefixRunner):
            raise InvocationStateError("wait() called but no run was started")
        return await runner.wait(timeout=timeout, error_msg=error_msg)

    async def cancel(self) -> int | None:
        """Kill the running workflow's process tree (no results upload); its exit code."""
        runner = self.run_state.get("runner")
        return await runner.cancel() if isinstance(runner, _PrefixRunner) else None

    async def check_output(self, command: list[str], stdin: str | None = None) -> str:
        """Not supported, as upstream: the environment exists only during a run."""
        raise NotImplementedError(
            "SandboxInvoker does not support check_output; the workflow's environment "
            "exists only inside a run"
        )


@dataclasses.dataclass(eq=False)
class LocalArchiveInvoker(PixiUnpackMixin, LocalSubprocessInvoker):
    """The local invoker, running the workflow from a digest-pinned pixi-pack archive.

    Exists so a new workflow version needs neither a new image nor a pixi workspace:
    ``run()``/``start()`` fetch ``environment_tar_url`` (verified against
    ``environment_tar_digest``, required here), unpack it once per digest into
    ``environment_cache_dir`` and start ``<prefix>/bin/<name>`` from it (``launcher``
    is always ``"prefix"``). ``work_dir`` receives the downloads and is the working
    directory of the run (``cwd``, when unset). Everything else is the local invoker's.
    """

    _: dataclasses.KW_ONLY
    environment_tar_url: str = ""
    """Where the archive is: ``file://``, ``http://`` or ``https://``."""
    environment_tar_digest: str = ""
    """``sha256:<64 hex>`` of the archive: anything else is refused before unpacking."""
    work_dir: str = ""
    """Downloads go here (default: ``cwd``, else the current directory)."""
    environment_cache_dir: str | None = None
    """Unpacked environments by digest; default ``$WT_INVOKERS__ENVIRONMENT_CACHE_DIR``,
    else ``<work_dir>/environments``."""
    transfer: TransferSettings = dataclasses.field(default_factory=TransferSettings.from_env)
    """Retries and timeouts of the download."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.launcher = "prefix"
        self.work_dir = self.work_dir or os.fspath(self.workdir)
        if not self.environment_tar_url:
            raise InvokerConfigurationError("environment_tar_url is required")
        try:
            self.environment_tar_digest = validate_digest(self.environment_tar_digest)
        except ValueError as exc:
            raise InvokerConfigurationError(str(exc)) from exc

    @property
    def prefix(self) -> Path:
        unpacked = self.run_state.get("prefix")
        return Path(unpacked) if unpacked else super().prefix

    async def is_installed(self) -> bool:
        """True: whether the archive holds the workflow is known once it is unpacked
        (starting then raises InstallationError if it does not)."""
        return True

    async def run(
        self,
        workflow_run_id: str,
        config_text: str,
        results_url: str,
        execution_mode: str,
        mock_io: bool,
        otel_exporter: str | None = None,
        otel_console_exporter_dst: str | None = None,
        extra_env: dict[str, str] | None = None,
        lithops_config_text: str | None = None,
        **kwargs: Any,
    ) -> None:
        """``run()`` with this invoker's archive as ``environment_tar_url``/``_digest``."""
        kwargs["environment_tar_url"] = self.environment_tar_url
        kwargs["environment_tar_digest"] = self.environment_tar_digest
        await super().run(
            workflow_run_id,
            config_text,
            results_url,
            execution_mode,
            mock_io,
            otel_exporter,
            otel_console_exporter_dst,
            extra_env,
            lithops_config_text,
            **kwargs,
        )

    async def _run(self, *args: Any, **kwargs: Any) -> None:
        for name in _HOOK_OPTIONS:  # the mixin's, not the workflow's
            kwargs.pop(name, None)
        await super()._run(*args, **kwargs)


# -- the console entry point ----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wt-invokers.sandbox",
        description="Download a pixi-pack environment archive, run the workflow in it, "
        "and upload the results archive.",
    )
    p.add_argument("--matchspec", required=True, help="the workflow package's MatchSpec")
    p.add_argument("--workflow-run-id", required=True)
    p.add_argument("--environment-tar-url", required=True, help="file://, http:// or https://")
    p.add_argument(
        "--environment-tar-digest",
        default=None,
        help="sha256:<64 hex>: refuse any other archive (and reuse its cached environment)",
    )
    p.add_argument("--results-upload-url", default=None, help="signed URL the archive is PUT to")
    p.add_argument(
        "--results-url",
        default="file:///results",
        help="local directory URL (file://) the workflow writes its results to",
    )
    p.add_argument(
        "--dangerously-skip-results-archive-upload",
        action="store_true",
        help="do not upload a results archive (the workflow writes its results elsewhere)",
    )
    p.add_argument("--config-json", required=True, help="the workflow's configuration")
    p.add_argument(
        "--execution-mode", default="sequential", choices=["sequential", "parallel", "async"]
    )
    p.add_argument("--mock-io", dest="mock_io", action="store_true")
    p.add_argument("--no-mock-io", dest="mock_io", action="store_false")
    p.set_defaults(mock_io=False)
    p.add_argument("--otel-exporter", default=None)
    p.add_argument("--otel-console-exporter-dst", default=None)
    return p


async def _amain(args: argparse.Namespace) -> int:
    from wt_invokers._transfer import local_path

    if args.results_url.startswith("file:") or "://" not in args.results_url:
        await asyncio.to_thread(local_path(args.results_url).mkdir, parents=True, exist_ok=True)
    invoker = SandboxInvoker(as_matchspec(args.matchspec))
    options: dict[str, Any] = {"environment_tar_url": args.environment_tar_url}
    if args.environment_tar_digest:
        options["environment_tar_digest"] = args.environment_tar_digest
    if args.dangerously_skip_results_archive_upload:
        options["skip_results_archive_upload"] = True
    else:
        options["results_upload_url"] = args.results_upload_url
    await invoker.run(
        args.workflow_run_id,
        args.config_json,
        args.results_url,
        args.execution_mode,
        args.mock_io,
        args.otel_exporter,
        args.otel_console_exporter_dst,
        **options,
    )
    return await invoker.wait()


def main(argv: list[str] | None = None) -> int:
    """Parse upstream's flags, run the sandbox invoker, return the workflow's exit code.

    A failure of the invoker itself (download, digest, upload) prints one line and
    returns 1; a workflow killed by signal N returns 128+N, as a shell would.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.dangerously_skip_results_archive_upload and args.results_upload_url:
        parser.error(
            "--dangerously-skip-results-archive-upload and --results-upload-url "
            "are mutually exclusive"
        )
    if not args.dangerously_skip_results_archive_upload and not args.results_upload_url:
        parser.error(
            "--results-upload-url is required unless --dangerously-skip-results-archive-upload"
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = asyncio.run(_amain(args))
    except (InvokerError, ValueError, RuntimeError) as exc:
        print(f"wt-invokers.sandbox: {exc}", file=sys.stderr)
        return 1
    return 128 - code if code < 0 else code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
