"""Fixtures for the node tier: its own control plane, controllers and a real node
(containerd + kubelet, :mod:`wt_envtest.node`), started once for the session.

Its own, not the integration tier's ``control_plane``: this one listens where pods reach
it, admits ServiceAccounts and runs every controller, which would change what the other
tiers' tests see. Images come from the image tier's fixtures (the image ``make test``
builds, used read-only: exported with ``buildah push`` and imported with ``ctr``).
Stand-ins, named as such: the pixi in the image (the image tier's) and, for CloudBatch
runs, the Google Batch gRPC stand-in (:mod:`wt_testkit.batch`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.image import build
from tests.image.conftest import operator_image, workflow_image  # noqa: F401 - shared fixtures
from wt_envtest.node import Node, NodeControllers, find_node_dir, run_node

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def node_and_controllers(
    bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Node, NodeControllers]]:
    """A control plane + kube-controller-manager + kube-scheduler + a Ready node."""
    tools = find_node_dir(REPO / "hack" / "node.sh")
    with run_node(bin_dir, tools) as running:
        yield running


@pytest.fixture(scope="session")
def node(node_and_controllers: tuple[Node, NodeControllers]) -> Node:
    return node_and_controllers[0]


@pytest.fixture(scope="session")
def node_image(
    node: Node,
    workflow_image: build.Built,  # noqa: F811 - the image tier's fixture
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The workflow image (the operator image plus a workspace), imported into the node."""
    archive = tmp_path_factory.mktemp("node-image") / "image.tar"
    ref = workflow_image.ref
    build.buildah("push", "--quiet", workflow_image.id, f"docker-archive:{archive}:{ref}")
    node.import_image(archive)
    archive.unlink()
    return ref


def wait_for(what: str, check: object, timeout: float = 120.0, node: Node | None = None) -> None:
    """Poll ``check()`` until truthy; fail with ``what`` (and the kubelet's log tail)."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    hint = (
        ""
        if node is None
        else subprocess.run(
            ["tail", "-n", "40", str(node.logs["kubelet"])], capture_output=True, text=True
        ).stdout
    )
    pytest.fail(f"timed out waiting for {what}\n{hint}")
