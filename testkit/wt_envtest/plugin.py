"""The control-plane harness as a pytest plugin: fixtures, ini options and report hooks.

Register it from the project's top ``conftest.py``::

    pytest_plugins = ["wt_envtest.plugin"]

Nothing starts until a test asks for ``control_plane`` (or a fixture built on it),
so a unit-test run never pays for it. The harness does not know where it is
installed, so the project names its own files as ini options (paths relative to
the ini file), e.g. in ``pyproject.toml``::

    [tool.pytest.ini_options]
    wt_envtest_script = "hack/envtest.sh"   # prints the binaries' folder (last line)
    wt_envtest_crds = ["crds"]              # files, or folders whose *.yaml are applied

Either can also be overridden as a fixture (``envtest_script``, ``crd_paths``).

Fixtures: ``bin_dir``, ``control_plane``, ``kubeconfig``, ``kubectl``, ``crds``
(session); ``controllers`` (per module: kube-controller-manager and kube-scheduler, only
for the modules that observe what controllers do); ``namespace`` and ``kube_api`` (per
test). When binaries are missing the
session fails (never skips) with the script's message. On failure, a test that
used the control plane gets the tail of etcd's and kube-apiserver's logs in its
report, and every test's item carries ``rep_setup``/``rep_call``/``rep_teardown``
so its fixtures can tell whether it failed (to print their own logs).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from wt_envtest.binaries import EnvtestUnavailable, find_bin_dir
from wt_envtest.control_plane import ControlPlane, start_control_plane
from wt_envtest.controllers import Controllers, ControllersUnavailable, run_controllers
from wt_envtest.crds import apply_crds
from wt_envtest.namespaces import namespace_name
from wt_envtest.processes import tail

_ACTIVE: list[ControlPlane | Controllers] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "wt_envtest_script",
        "script whose last stdout line is the folder with etcd, kube-apiserver, kubectl, helm",
        type="paths",
        default=[],
    )
    parser.addini(
        "wt_envtest_crds",
        "CRD manifests (files, or folders whose *.yaml) the `crds` fixture applies",
        type="paths",
        default=[],
    )


@pytest.fixture(scope="session")
def envtest_script(pytestconfig: pytest.Config) -> Path | None:
    """The project's envtest script (ini ``wt_envtest_script``), or None."""
    paths: list[Path] = pytestconfig.getini("wt_envtest_script")
    return paths[0] if paths else None


@pytest.fixture(scope="session")
def crd_paths(pytestconfig: pytest.Config) -> list[Path]:
    """The project's CRD manifests (ini ``wt_envtest_crds``)."""
    return list(pytestconfig.getini("wt_envtest_crds"))


@pytest.fixture(scope="session")
def bin_dir(envtest_script: Path | None) -> Path:
    """Folder holding etcd, kube-apiserver, kubectl and helm (KUBEBUILDER_ASSETS layout)."""
    try:
        return find_bin_dir(envtest_script)
    except EnvtestUnavailable as exc:
        error = str(exc)
    # Never a skip, in CI or locally: a missing control plane must not pass as green.
    where = "CI" if os.environ.get("CI") == "true" else "this machine"
    pytest.fail(f"tests needing the envtest binaries cannot run on {where}: {error}", pytrace=False)


@pytest.fixture(scope="session")
def control_plane(
    bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """The session's API server: local etcd + kube-apiserver, or WT_TEST_KUBECONFIG's cluster."""
    data_dir = tmp_path_factory.mktemp("control-plane")
    with start_control_plane(data_dir, bin_dir) as plane:
        _ACTIVE.append(plane)
        try:
            yield plane
        finally:
            _ACTIVE.remove(plane)


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """Path of the admin kubeconfig."""
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Any:
    """``kubectl(*args, input=None, check=True) -> CompletedProcess`` as admin."""
    return control_plane.kubectl


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane, crd_paths: list[Path]) -> list[str]:
    """Apply the project's CRDs (server-side) and wait until they are served; their names."""
    return apply_crds(control_plane, crd_paths)


@pytest.fixture(scope="module")
def controllers(
    control_plane: ControlPlane, crds: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controllers | None]:
    """kube-controller-manager and kube-scheduler for this module's tests, stopped after it.

    Module-scoped on purpose: garbage collection, role aggregation and the namespace
    controller would change what every later test sees. Starts after the CRDs are applied
    (the garbage collector finds their objects at once). None on an external cluster,
    which runs its own.
    """
    try:
        with run_controllers(control_plane, tmp_path_factory.mktemp("controllers")) as running:
            if running is not None:
                _ACTIVE.append(running)
            try:
                yield running
            finally:
                if running is not None:
                    _ACTIVE.remove(running)
    except ControllersUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest_asyncio.fixture
async def kube_api(control_plane: ControlPlane) -> AsyncIterator[Any]:
    """An async ``kubernetes_asyncio`` ApiClient for this test's event loop, closed after."""
    from kubernetes_asyncio import client, config

    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(control_plane.kubeconfig), client_configuration=cfg
    )
    async with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace ``t-<test>-<random>``, emptied and deleted after the test."""
    name = namespace_name(request.node.name)
    control_plane.create_namespace(name)
    yield name
    control_plane.delete_namespace(name)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item; on failure attach the control plane's logs."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    if report.failed and _ACTIVE and "control_plane" in getattr(item, "fixturenames", ()):
        for plane in _ACTIVE:
            if getattr(plane, "external", False):
                continue
            for name, path in plane.logs.items():
                report.sections.append((f"{name} log (tail of {path})", tail(path)))
    return report
