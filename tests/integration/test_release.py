"""A release as users receive it: ``hack/release.py`` (``make release``) pushes the image and
the chart to a real OCI registry (distribution's ``registry`` on 127.0.0.1, started by the
test kit), and ``helm install oci://…/charts/wt-operator --version X`` installs a release
whose image is the one pushed, pinned by digest.

The image pushed is ``localhost/wt-operator:<version>``, which ``make test`` builds before
the tests (and the image tier uses); it is built here if missing.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.image import build
from wt_envtest.registry import Registry, RegistryUnavailable, run_registry

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    try:
        with run_registry(ROOT / "hack" / "registry.sh", tmp_path_factory.mktemp("registry")) as r:
            yield r
    except RegistryUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def released(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``make release`` against the test registry, once for the module."""
    image = f"{build.IMAGE}:{build.version()}"
    if build.inspect(image) is None:
        build.ensure_image()
    version = f"0.1.0-rc.{secrets.token_hex(2)}"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "hack" / "release.py"), "--registry", registry.address,
            "--version", version, "--image", image, "--insecure",
            "--out", str(tmp_path_factory.mktemp("release")),
        ],
        capture_output=True, text=True, check=False, timeout=500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    chart, pinned = proc.stdout.strip().splitlines()[-1].split()
    return {"chart": chart, "image": pinned, "version": version}


def test_the_image_and_the_chart_are_in_the_registry(
    registry: Registry, released: dict[str, str]
) -> None:
    catalog = registry.get("/v2/_catalog")["repositories"]
    assert {"wt-operator", "charts/wt-operator"} <= set(catalog)
    served = registry.manifest_digest("wt-operator", released["version"])
    assert released["image"] == f"{registry.address}/wt-operator@{served}"
    assert released["chart"] == f"oci://{registry.address}/charts/wt-operator"
    assert registry.manifest_digest("charts/wt-operator", released["version"]) is not None


def test_helm_installs_from_the_registry_with_the_pushed_image_pinned(
    control_plane: Any, namespace: str, crds: Any, released: dict[str, str]
) -> None:
    oci = (released["chart"], "--version", released["version"], "--plain-http")
    shown = yaml.safe_load(control_plane.helm("show", "chart", *oci).stdout)
    assert shown["version"] == shown["appVersion"] == released["version"]
    images = yaml.safe_load(shown["annotations"]["artifacthub.io/images"])
    assert images == [{"name": "wt-operator", "image": released["image"]}]
    for key in ("artifacthub.io/crds", "artifacthub.io/license", "artifacthub.io/changes"):
        assert shown["annotations"][key]
    readme = control_plane.helm("show", "readme", *oci).stdout
    assert "helm install wt-operator oci://" in readme and "kind: WorkflowRun" in readme

    control_plane.helm(
        "install", "from-registry", *oci, "--namespace", namespace, "--wait=false",
        "--set", "crds.install=false", "--set", "watch.allNamespaces=false",
        "--set", f"watch.namespaces={{{namespace}}}",
    )  # fmt: skip
    try:
        deployment = json.loads(
            control_plane.kubectl(
                "get",
                "deployment",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/instance=from-registry",
                "-o",
                "json",
            ).stdout
        )["items"][0]
        [container] = [
            c
            for c in deployment["spec"]["template"]["spec"]["containers"]
            if c["name"] == "operator"
        ]
        assert container["image"] == released["image"]
    finally:
        control_plane.helm("uninstall", "from-registry", "--namespace", namespace, check=False)
