"""The chart on the real API server: fixtures that install it and an unwatched namespace.

Every release a test installs is uninstalled afterwards: its aggregated ClusterRoles and
admission policies are cluster-scoped and would otherwise outlive the test namespace.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.chart.support import CHART


@pytest.fixture
def other_namespace(control_plane: Any) -> Iterator[str]:
    name = f"t-unwatched-{secrets.token_hex(3)}"
    control_plane.create_namespace(name)
    yield name
    control_plane.delete_namespace(name)


@pytest.fixture
def install(control_plane: Any, namespace: str, crds: Any) -> Iterator[Callable[..., str]]:
    """``install(*sets)``: helm-install the chart into the test namespace, watching only it,
    with the CRDs the session already applied; uninstalled after the test."""
    releases: list[str] = []

    def install(*sets: str, release: str = "wt") -> str:
        args = ["install", release, str(CHART), "--namespace", namespace, "--wait=false"]
        for s in (
            "crds.install=false",
            "watch.allNamespaces=false",
            f"watch.namespaces={{{namespace}}}",
            *sets,
        ):
            args += ["--set", s]
        proc = control_plane.helm(*args)
        releases.append(release)
        assert "STATUS: deployed" in proc.stdout
        return str(proc.stdout)

    yield install
    for release in releases:
        control_plane.helm("uninstall", release, "--namespace", namespace, check=False)
