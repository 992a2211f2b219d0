"""A per-process local conda channel and workspaces installed from it with py-rattler.

Exists so a test gets what ``pixi install`` would leave behind — a real conda
environment under ``<workspace>/.pixi/envs/<env>`` — without pixi and without a
network channel: packages are built once per process into a temporary channel,
indexed, solved and linked with py-rattler.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from wt_testkit.workflows.package import SAMPLE_WORKFLOW, WorkflowPackage, build_workflow_package

__all__ = [
    "environment_prefix",
    "install_packages",
    "local_channel",
    "make_workspace",
    "make_workspace_async",
    "workflow_executable",
]

_T = TypeVar("_T")

_lock = threading.Lock()
_channel_root: Path | None = None
_built: set[WorkflowPackage] = set()


def _root() -> Path:
    global _channel_root
    if _channel_root is None:
        _channel_root = Path(tempfile.mkdtemp(prefix="wt-sample-channel-"))
        atexit.register(shutil.rmtree, _channel_root, True)
    return _channel_root


def _run_coroutine(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, even if this thread runs an event loop."""
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="wt-sample-workflows")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def local_channel(packages: Iterable[WorkflowPackage | str] = (WorkflowPackage(),)) -> Path:
    """The directory of this process's local channel, holding at least ``packages``.

    Built once per process (in a temp dir removed at exit) and extended on demand;
    each package is built only once. Thread-safe; blocking.
    """
    wanted = {WorkflowPackage.parse(p) for p in packages}
    with _lock:
        channel = _root() / "channel"
        missing = sorted(wanted - _built)
        if missing:
            for pkg in missing:
                build_workflow_package(channel / "noarch", pkg)
            from rattler.index import index_fs

            _run_coroutine(index_fs(channel, force=True))
            _built.update(missing)
    return channel


async def install_packages(
    prefix: str | os.PathLike[str], packages: Sequence[WorkflowPackage | str]
) -> list[str]:
    """Create (or update) the conda environment ``prefix`` with exactly ``packages``.

    Solves against the local channel only (no virtual packages, no network) and
    links with a package cache private to this process, so a package rebuilt
    with the same name and version never comes from a stale global cache.
    Returns the installed ``name-version-build`` strings.
    """
    import rattler

    pkgs = [WorkflowPackage.parse(p) for p in packages]
    channel = await asyncio.to_thread(local_channel, pkgs)
    gateway = rattler.Gateway(cache_dir=_root() / "repodata-cache")
    records = await rattler.solve(
        [rattler.Channel(channel.as_uri())],
        [f"{p.name} =={p.version}" for p in pkgs],
        gateway=gateway,
        platforms=[rattler.Subdir.current(), rattler.Subdir("noarch")],
        virtual_packages=[],
        channel_relations="disabled",
    )
    await rattler.install(
        records,
        target_prefix=Path(prefix),
        cache_dir=_root() / "pkgs",
        show_progress=False,
        execute_link_scripts=False,
    )
    return sorted(f"{r.name.normalized}-{r.version}-{r.build}" for r in records)


async def make_workspace_async(
    path: str | os.PathLike[str],
    *,
    packages: Sequence[WorkflowPackage | str] = (WorkflowPackage(),),
    environment: str = "default",
) -> Path:
    """Make ``path`` a workspace whose ``.pixi/envs/<environment>`` holds ``packages``.

    What ``pixi install`` would leave behind, minus the manifest: the real pixi
    cannot run here, and the invokers only need the installed environment.
    Returns the absolute workspace path.
    """
    ws = await asyncio.to_thread(Path(path).absolute)
    await install_packages(environment_prefix(ws, environment), packages)
    return ws


def environment_prefix(ws: Path, environment: str = "default") -> Path:
    """Where pixi installs (and :func:`make_workspace` installs) an environment of ``ws``."""
    return ws / ".pixi" / "envs" / environment


def workflow_executable(
    ws: Path, name: str = SAMPLE_WORKFLOW, environment: str = "default"
) -> Path:
    """The workflow's own entry point in ``ws`` (for running it without an invoker)."""
    return environment_prefix(ws, environment) / "bin" / name


def make_workspace(
    path: str | os.PathLike[str],
    *,
    packages: Sequence[WorkflowPackage | str] = (WorkflowPackage(),),
    environment: str = "default",
) -> Path:
    """Blocking :func:`make_workspace_async`, usable from sync code and sync fixtures."""
    return _run_coroutine(make_workspace_async(path, packages=packages, environment=environment))
