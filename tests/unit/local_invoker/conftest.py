"""LocalSubprocessInvoker against real process trees in a real (offline-built) conda env.

The only stand-in is the ``pixi`` binary (``write_pixi_standin``): the real one
cannot be installed here. The workspace path contains a space on purpose.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from tests.unit.local_invoker.support import LAUNCHERS
from wt_invokers import LocalSubprocessInvoker
from wt_invokers.local import Launcher
from wt_testkit.workflows import SAMPLE_WORKFLOW, make_workspace, write_pixi_standin


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace (path with a space) whose default env holds wt-sample-workflow 1.2.0."""
    return make_workspace(tmp_path_factory.mktemp("inv") / "my workspace")


@pytest.fixture
def pixi_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STAND-IN for the real pixi binary, first on PATH for this test."""
    pixi = write_pixi_standin(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{pixi.parent}{os.pathsep}{os.environ['PATH']}")
    return pixi


@pytest.fixture(params=LAUNCHERS)
def launcher(request: pytest.FixtureRequest, pixi_standin: Path) -> Launcher:
    return cast(Launcher, request.param)


@pytest.fixture
async def invoker(workspace: Path, launcher: Launcher) -> AsyncIterator[LocalSubprocessInvoker]:
    inv = LocalSubprocessInvoker(
        SAMPLE_WORKFLOW, cwd=workspace, launcher=launcher, kill_grace_seconds=0.5
    )
    yield inv
    if inv.is_running:  # a failed test must not leave its tree behind
        await inv.cancel()
