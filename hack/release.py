"""Release: push the operator image and the chart to an OCI registry, the chart pinned to the
image's digest.

``make release REGISTRY=ghcr.io/acme`` runs this. It exists so that what users install
(``helm install oci://<registry>/charts/wt-operator --version X``) pulls exactly the image
this release pushed: the chart's default ``image.repository`` is the registry's, its
``image.digest`` the digest the registry answered with (a tag can be moved, a digest
cannot), and Artifact Hub's ``artifacthub.io/images`` names the same reference.

Steps: the image (``hack/image/build.py``'s, or ``--image``) is pushed as
``<registry>/wt-operator:<version>``; a copy of ``charts/wt-operator`` gets the version, the
pinned image and the annotation; ``helm package`` and ``helm push`` it to
``oci://<registry>/charts``. The checkout is never modified. The last stdout line is the
chart reference and the image reference, space-separated.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hack.image import build

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "wt-operator"
ENVTEST = REPO / "hack" / "envtest.sh"


def _helm() -> str:
    """helm from the envtest folder (pinned version), else the one on PATH."""
    proc = subprocess.run(["bash", str(ENVTEST)], capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines and (Path(lines[-1]) / "helm").is_file():
        return str(Path(lines[-1]) / "helm")
    found = shutil.which("helm")
    if found is None:
        raise build.BuildError("helm not found: run make setup (hack/envtest.sh builds it)")
    return found


def push_image(source: str, target: str, *, insecure: bool) -> str:
    """Push ``source`` (local storage) to ``target``; the digest the registry stored."""
    with tempfile.TemporaryDirectory() as tmp:
        digestfile = Path(tmp) / "digest"
        build.buildah(
            "push",
            f"--tls-verify={str(not insecure).lower()}",
            "--digestfile",
            str(digestfile),
            source,
            f"docker://{target}",
        )
        return digestfile.read_text().strip()


def pin_chart(folder: Path, *, version: str, repository: str, digest: str) -> None:
    """Set the chart copy's version and default image; line edits keep values.yaml's docs."""
    chart = folder / "Chart.yaml"
    text = chart.read_text()
    text = re.sub(r"(?m)^version: .*$", f"version: {version}", text)
    text = re.sub(r"(?m)^appVersion: .*$", f'appVersion: "{version}"', text)
    # The annotation's image line is the only `image:` under artifacthub.io/images.
    text = re.sub(r"(?m)^(\s+image: ).*wt-operator.*$", rf"\g<1>{repository}@{digest}", text)
    chart.write_text(text)

    values = folder / "values.yaml"
    lines = values.read_text().splitlines(keepends=True)
    start = lines.index("image:\n")
    for i in range(start + 1, len(lines)):
        if lines[i].strip() and not lines[i].startswith((" ", "#")):
            break  # the end of the top-level image block
        if lines[i].startswith("  repository:"):
            lines[i] = f"  repository: {repository}\n"
        elif lines[i].startswith("  tag:"):
            lines[i] = f'  tag: "{version}"\n'
        elif lines[i].startswith("  digest:"):
            lines[i] = f'  digest: "{digest}"\n'
    values.write_text("".join(lines))


def release(
    registry: str, *, version: str, image: str | None, insecure: bool, out: Path
) -> tuple[str, str]:
    """Push image and chart; (chart reference, pinned image reference)."""
    source = image or build.ensure_image().ref
    repository = f"{registry}/wt-operator"
    digest = push_image(source, f"{repository}:{version}", insecure=insecure)
    build.log(f"pushed {source} as {repository}:{version} ({digest})")
    helm = _helm()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "wt-operator"
        shutil.copytree(CHART, copy)
        pin_chart(copy, version=version, repository=repository, digest=digest)
        out.mkdir(parents=True, exist_ok=True)
        build.run([helm, "package", copy, "--destination", out], capture=True)
    package = out / f"wt-operator-{version}.tgz"
    plain = ["--plain-http"] if insecure else []
    build.run([helm, "push", package, f"oci://{registry}/charts", *plain], capture=True)
    build.log(f"pushed {package.name} to oci://{registry}/charts")
    return f"oci://{registry}/charts/wt-operator", f"{repository}@{digest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/release.py", description=__doc__.split("\n")[0])
    parser.add_argument("--registry", required=True, help="host[:port][/path], e.g. ghcr.io/acme")
    parser.add_argument("--version", default=build.version(), help="chart and image version")
    parser.add_argument("--image", help="a local image to push instead of building one")
    parser.add_argument(
        "--insecure", action="store_true", help="plain HTTP, no TLS checks (a local registry)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "build" / "release")
    args = parser.parse_args(argv)
    try:
        chart, image = release(
            args.registry,
            version=args.version,
            image=args.image,
            insecure=args.insecure,
            out=args.out,
        )
    except build.BuildError as exc:
        build.log(str(exc))
        return 1
    print(f"{chart} {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
