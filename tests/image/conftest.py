"""Fixtures for the image tier: the image ``make image`` builds, a derived image holding a
workspace (as a user's would), and runc containers of it against the test API server.

Marked ``image`` (all but the lock check): they need buildah and runc, which ``make setup``
installs; ``make test`` deselects them only outside CI, saying so, when buildah is missing.
Stand-in, named as such: the pixi in the test image is the project's pixi STAND-IN (the
real binary cannot be fetched here). Everything else — base image, wheels, tini, the
operator, the API server, the workflow's conda environment and processes — is real.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.image import build
from tests.image.oci import Container, ImageConfig, runtime_spec
from tests.integration.conftest import runs  # noqa: F401 - a fixture shared with this tier
from wt_testkit.workflows import make_workspace

HERE = Path(__file__).resolve().parent
NEEDS_BUILDAH = {"test_image.py"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "image: needs buildah and runc (tests/image)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent == HERE and item.path.name in NEEDS_BUILDAH:
            item.add_marker(pytest.mark.image)


def _buildah(*args: str) -> str:
    return build.buildah(*args)


@pytest.fixture(scope="session")
def operator_image() -> build.Built:
    """``localhost/wt-operator:<version>``, built unless up to date (``make image``);
    ``WT_TEST_IMAGE_TAG`` builds and tests another tag (a branch's, beside the shared one)."""
    try:
        return build.ensure_image(tag=os.environ.get("WT_TEST_IMAGE_TAG") or None)
    except build.BuildError as exc:
        pytest.fail(f"the image did not build: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def workflow_image(
    operator_image: build.Built, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[build.Built]:
    """FROM the operator image, plus a workspace holding the sample workflow at /workspace.

    Built like a user's derived image (tests/image/workflows.Containerfile); the workspace
    is made offline with the test kit, where a user's image would run ``pixi install``.
    """
    context = tmp_path_factory.mktemp("workflow-image")
    make_workspace(context / "workspace")
    ref = f"localhost/wt-operator-workflows:{secrets.token_hex(4)}"
    subprocess.run(
        [
            str(build.BUILDAH),
            "build",
            "--isolation",
            "chroot",
            "--pull=never",
            "--quiet",
            "--file",
            str(HERE / "workflows.Containerfile"),
            "--build-arg",
            f"OPERATOR_IMAGE={operator_image.id}",
            "--tag",
            ref,
            str(context),
        ],
        check=True,
        capture_output=True,
    )
    built = build.Built(ref, build.image_id(ref) or "")
    yield built
    subprocess.run([str(build.BUILDAH), "rmi", ref], capture_output=True, check=False)


@pytest.fixture(scope="session")
def workflow_image_config(workflow_image: build.Built) -> ImageConfig:
    info = build.inspect(workflow_image.id)
    assert info is not None
    return ImageConfig.from_inspect(info)


@pytest.fixture(scope="session")
def rootfs(workflow_image: build.Built) -> Iterator[Path]:
    """The derived image's root filesystem: one buildah working container, mounted.

    Shared by the session's containers: runs that must not change it mount it read-only.
    """
    name = f"wt-smoke-{secrets.token_hex(4)}"
    _buildah("from", "--pull=never", "--name", name, workflow_image.id)
    try:
        yield Path(_buildah("mount", name))
    finally:
        subprocess.run([str(build.BUILDAH), "rm", name], capture_output=True, check=False)


@pytest.fixture
def container_kubeconfig(control_plane: Any, tmp_path: Path) -> Path:
    """The admin kubeconfig with its CA inlined, so it works from inside the container."""
    text = control_plane.kubectl("config", "view", "--flatten", "--minify", "--raw").stdout
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    path.chmod(0o644)  # readable by the container's non-root user
    return path


@pytest.fixture
def run_image(
    rootfs: Path,
    workflow_image_config: ImageConfig,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Container]]:
    """``run_image(args=…, command=…, env=…, user=…, readonly=…, binds=…)``: a runc
    Container of the derived image (not started); all are deleted afterwards."""
    if shutil.which("runc") is None:
        pytest.fail("runc is missing: `make setup` installs it", pytrace=False)
    state = tmp_path_factory.mktemp("runc-state")
    made: list[Container] = []

    def make(**options: Any) -> Container:
        name = f"wt-smoke-{secrets.token_hex(4)}"
        spec = runtime_spec(rootfs, workflow_image_config, **options)
        container = Container(name, tmp_path_factory.mktemp(name), spec, state)
        made.append(container)
        return container

    yield make
    failed = getattr(request.node, "rep_call", None)  # set by wt_envtest.plugin
    for container in made:
        container.delete()
        if failed is not None and failed.failed:
            print(f"--- container {container.name} output (tail) ---\n{container.output()[-6000:]}")
