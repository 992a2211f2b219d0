"""Installing CustomResourceDefinitions and waiting until they can really be used.

Exists because "applied" and even "Established" are not "usable": for a moment
after Established a new resource's watch cache is still initializing and LISTs
get 429, which clients (kopf among them) would report as errors. Tests, the
benchmarks and the demo all install CRDs through :func:`apply_crds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import yaml

__all__ = ["Cluster", "apply_crds", "crd_files", "crd_names", "wait_crd_served"]


class Cluster(Protocol):
    """What :func:`apply_crds` needs of a cluster; a ``ControlPlane`` is one.

    Named here rather than imported: the control plane uses this module, so an
    import back (even for typing) would make the two a circle.
    """

    def kubectl(self, *args: Any) -> object:
        """Run kubectl against the cluster, raising when it fails."""

    def wait_crd_served(self, name: str) -> None:
        """Block until CRD ``name`` answers a LIST on every served version."""


def crd_files(paths: Iterable[Path]) -> list[Path]:
    """Manifest files: each file as given, each folder's ``*.yaml`` (not its subfolders)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return files


def crd_names(path: Path) -> list[str]:
    """Names of the CustomResourceDefinitions in one manifest file."""
    return [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]


def apply_crds(plane: Cluster, paths: Iterable[Path]) -> list[str]:
    """Apply the manifests (server-side) and wait until every CRD in them is served.

    ``paths`` are files or folders (their ``*.yaml``; a ``samples/`` subfolder is
    not read). Returns the CRD names (empty when there are none).
    """
    files = crd_files(paths)
    if not files:
        return []
    names = [name for f in files for name in crd_names(f)]
    args: list[str] = ["apply", "--server-side", "--force-conflicts", "--field-manager=wt-tests"]
    for f in files:
        args += ["-f", str(f)]
    plane.kubectl(*args)
    if names:
        plane.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names]
        )
        for name in names:
            plane.wait_crd_served(name)
    return names


def wait_crd_served(api: Callable[..., Any], name: str) -> None:
    """Block until every served version of CRD ``name`` answers a LIST (see module docstring)."""
    crd = api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    spec = crd["spec"]
    for version in spec["versions"]:
        if version.get("served"):
            # request() retries the 429s until the cache is ready.
            api("GET", f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}?limit=1")
