"""Build the wt-operator image with buildah: no registry, no Docker daemon, no network inside.

``make image`` runs this. It exists because the machines that build and test the project
reach Debian and PyPI but no container registry, so every image the Dockerfile starts
from is made here first. Steps, each skipped while its inputs are unchanged (their digest
is a label on the image, or a stamp beside the wheels):

1. ``base``: Debian bookworm with python3 (3.11), tini, passwd, ca-certificates, libstdc++6,
   made by mmdebstrap and committed with ``buildah from scratch`` as ``localhost/wt-base:bookworm``.
   It takes the place of the Dockerfile's default BASE_IMAGE (python:3.11-slim-bookworm).
2. ``pixi``: ``localhost/wt-pixi-standin``, holding the project's pixi STAND-IN at
   /usr/local/bin/pixi, for PIXI_IMAGE (the real pixi binary cannot be fetched here).
3. ``context``: a folder with every locked wheel (``pip download``, hash-checked, cached),
   the project's own wheel and the lock: all the build installs, so it needs no network.
4. ``image``: ``buildah build -f operator/Dockerfile`` into ``localhost/wt-operator:<version>``.

Images live in buildah's vfs storage under ``${WT_IMAGE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/
wt-image}`` (see ``hack/image/buildah``), outside the checkout; one lock file serialises
builds from several checkouts sharing it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "operator" / "Dockerfile"
LOCK = REPO / "operator" / "requirements.lock"
BUILDAH = Path(__file__).resolve().parent / "buildah"
IMAGE = "localhost/wt-operator"
BASE_IMAGE = "localhost/wt-base:bookworm"
PIXI_STANDIN_IMAGE = "localhost/wt-pixi-standin"
INPUTS_LABEL = "dev.wt.image.inputs"
"""Label holding the digest of what an image was built from; equal digest: no rebuild."""

BASE_RECIPE: tuple[str, ...] = (
    "mmdebstrap",
    "--variant=essential",
    # usr-is-merged instead of the usrmerge package, which would pull in perl.
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    # libstdc++6: grpcio's extension links it; without it google-cloud-batch/run do not import
    # and every CloudBatch and CloudRunJob run fails (python:3.11-slim-bookworm has it).
    "--include=python3,python3.11-venv,tini,passwd,ca-certificates,libstdc++6",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "bookworm",
)
"""The local base (about 110 MB): Debian's essential set plus what the Dockerfile uses.
Changing it rebuilds the base; Debian's point releases do not (``--rebuild-base``)."""


TESTKIT = ("wt_testkit", "wt_envtest", "wt_invokers/testing")
"""The test kit (its own distribution, testkit/): the image's wheel must not hold it."""


def cache_dir() -> Path:
    """Where images, wheels and the build context are kept (same rule as hack/image/buildah)."""
    explicit = os.environ.get("WT_IMAGE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "wt-image"


def version() -> str:
    """The project's version from pyproject.toml: the image's tag."""
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def log(message: str) -> None:
    print(f"wt-image: {message}", file=sys.stderr, flush=True)


class BuildError(RuntimeError):
    """A step failed; the message says which and why."""


def run(args: Sequence[str | os.PathLike[str]], *, capture: bool = False, **kw: Any) -> str:
    """Run a command; its output goes to stderr unless captured; BuildError when it fails."""
    proc = subprocess.run(
        [os.fspath(a) for a in args],
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.PIPE if capture else None,
        text=True,
        check=False,
        **kw,
    )
    if proc.returncode != 0:
        detail = f"\n{proc.stderr}" if capture else ""
        raise BuildError(f"{' '.join(map(str, args))} failed with {proc.returncode}{detail}")
    return proc.stdout if capture else ""


def buildah(*args: str | os.PathLike[str], capture: bool = True) -> str:
    """buildah on the project's storage (hack/image/buildah)."""
    return run([BUILDAH, *args], capture=capture).strip()


def inspect(ref: str) -> dict[str, Any] | None:
    """``buildah inspect`` of a local image, None when there is no such image."""
    proc = subprocess.run(
        [BUILDAH, "inspect", "--type", "image", ref], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def image_id(ref: str) -> str | None:
    info = inspect(ref)
    return str(info["FromImageID"]) if info else None


def current(ref: str, wanted: str) -> str | None:
    """The id of image ``ref`` when it was built from the inputs ``wanted``, else None."""
    info = inspect(ref)
    if info is None:
        return None
    labels = info["OCIv1"].get("config", {}).get("Labels") or {}
    return str(info["FromImageID"]) if labels.get(INPUTS_LABEL) == wanted else None


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return "sha256:" + h.hexdigest()


@contextlib.contextmanager
def exclusive(cache: Path) -> Iterator[None]:
    """One build at a time per cache, whichever checkout it runs from."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "build.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise BuildError(f"missing {', '.join(missing)}: `make setup` installs them (apt-get)")


# ------------------------------------------------------------------------------- base


def ensure_base(*, rebuild: bool = False) -> str:
    """``localhost/wt-base:bookworm``, built with mmdebstrap unless up to date; its id."""
    wanted = digest(*BASE_RECIPE)
    existing = None if rebuild else current(BASE_IMAGE, wanted)
    if existing is not None:
        log(f"{BASE_IMAGE} up to date")
        return existing
    require_tools("mmdebstrap")
    log(f"building {BASE_IMAGE} with mmdebstrap (about 2 minutes, once)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wt-base-", dir=cache_dir()) as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        run([*BASE_RECIPE, tarball])
        ctr = buildah("from", "scratch")
        try:
            buildah("add", ctr, tarball, "/")
            buildah(
                "config",
                "--env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env",
                "LANG=C.UTF-8",
                "--cmd",
                "python3",
                "--label",
                f"{INPUTS_LABEL}={wanted}",
                ctr,
            )
            buildah("commit", "--quiet", ctr, BASE_IMAGE)
        finally:
            subprocess.run([BUILDAH, "rm", ctr], capture_output=True, check=False)
    log(f"{BASE_IMAGE} built in {time.monotonic() - started:.0f} s")
    return image_id(BASE_IMAGE) or ""


# ------------------------------------------------------------------------------- pixi


def _pixi_standin_text() -> str:
    # The stand-in runs with the image's interpreter, which can import wt_invokers.
    from wt_testkit.workflows import write_pixi_standin

    with tempfile.TemporaryDirectory() as tmp:
        return write_pixi_standin(tmp, python="/opt/wt/bin/python").read_text()


def ensure_pixi_standin() -> str:
    """An image holding the pixi STAND-IN at /usr/local/bin/pixi; its reference."""
    text = _pixi_standin_text()
    wanted = digest(text)
    ref = f"{PIXI_STANDIN_IMAGE}:{wanted[7:19]}"
    if current(ref, wanted) is not None:
        return ref
    with tempfile.TemporaryDirectory(prefix="wt-pixi-") as tmp:
        script = Path(tmp) / "pixi"
        script.write_text(text)
        ctr = buildah("from", "scratch")
        try:
            buildah("copy", "--chmod", "0755", ctr, script, "/usr/local/bin/pixi")
            buildah("config", "--label", f"{INPUTS_LABEL}={wanted}", ctr)
            buildah("commit", "--quiet", ctr, ref)
        finally:
            subprocess.run([BUILDAH, "rm", ctr], capture_output=True, check=False)
    log(f"{ref} built (pixi stand-in)")
    return ref


# ------------------------------------------------------------------------------- context


def wheel_platforms(arch: str) -> list[str]:
    """pip ``--platform`` tags a bookworm (glibc 2.36) interpreter accepts, newest first.

    pip does not expand ``manylinux_2_36`` to the older tags itself.
    """
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 4, -1)]
    legacy = {"x86_64": ["manylinux2014", "manylinux2010", "manylinux1"], "aarch64": []}
    return tags + [f"{name}_{arch}" for name in legacy.get(arch, ["manylinux2014"])]


def fetch_wheels(wheels: Path, arch: str) -> None:
    """Every wheel the lock names, for CPython 3.11 on ``arch``; kept while the lock is."""
    lock = LOCK.read_bytes()
    wanted = digest(lock, arch)
    stamp = wheels / ".inputs"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    log(f"downloading the locked wheels for {arch}")
    fresh = wheels.with_name(wheels.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    platforms = [arg for tag in wheel_platforms(arch) for arg in ("--platform", tag)]
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            *platforms,
            "--dest",
            fresh,
            "--requirement",
            LOCK,
        ]
    )
    (fresh / ".inputs").write_text(wanted)
    shutil.rmtree(wheels, ignore_errors=True)
    fresh.rename(wheels)


def wheel_sources() -> list[str]:
    """What the project's wheel is built from, as pyproject.toml names it: itself, the
    readme, the license files and the package folders. Their content decides a rebuild."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    readme = project.get("readme")
    names = ["pyproject.toml", *([readme] if isinstance(readme, str) else [])]
    for pattern in project.get("license-files", []):  # globs, as in PEP 639
        names += sorted(str(f.relative_to(REPO)) for f in REPO.glob(pattern))
    names += pyproject["tool"]["setuptools"]["package-dir"].values()
    return names


def source_digest() -> str:
    """Digest of every file the project's wheel is built from."""
    parts: list[str | bytes] = []
    for name in wheel_sources():
        root = REPO / name
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                parts += [str(path.relative_to(REPO)), path.read_bytes()]
    return digest(*parts)


def build_project_wheel(dist: Path) -> Path:
    """The root distribution's wheel (never the test kit), alone in ``dist``."""
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    # From a copy of its sources: setuptools' in-tree build/ keeps files of earlier builds
    # (a package since removed would ship again), and only these decide a rebuild.
    with tempfile.TemporaryDirectory(prefix="wt-wheel-") as tmp:
        for name in wheel_sources():
            src, dst = REPO / name, Path(tmp) / name
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        run([*pip_wheel, "--wheel-dir", dist, tmp])
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        leaked = {t for t in TESTKIT for n in zf.namelist() if n.startswith(f"{t}/")}
    if leaked:
        raise BuildError(f"{wheel.name} holds the test kit ({', '.join(sorted(leaked))})")
    return wheel


def fill_context(context: Path, arch: str) -> None:
    """Make ``context`` the Dockerfile's build context: wheels/, dist/, requirements.lock."""
    context.mkdir(parents=True, exist_ok=True)
    fetch_wheels(context / "wheels", arch)
    build_project_wheel(context / "dist")
    shutil.copyfile(LOCK, context / "requirements.lock")


def default_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


# ------------------------------------------------------------------------------- image


@dataclasses.dataclass(frozen=True)
class Built:
    """An image in the project's storage."""

    ref: str
    id: str


def ensure_image(
    *,
    tag: str | None = None,
    base_image: str | None = None,
    pixi_image: str | None = None,
    rebuild_base: bool = False,
) -> Built:
    """``localhost/wt-operator:<version>`` from operator/Dockerfile, unless up to date.

    Without ``base_image``/``pixi_image`` the local base and the pixi stand-in are used
    and nothing is pulled; with them (a release build on a machine with a registry)
    buildah pulls what is missing.
    """
    require_tools("buildah")
    cache = cache_dir()
    release = version()
    ref = tag or f"{IMAGE}:{release}"
    with exclusive(cache):
        local = base_image is None and pixi_image is None
        base = base_image or BASE_IMAGE
        base_id = ensure_base(rebuild=rebuild_base) if base_image is None else base
        pixi = pixi_image or ensure_pixi_standin()
        pixi_id = pixi if pixi_image is not None else image_id(pixi) or pixi
        wanted = digest(
            DOCKERFILE.read_bytes(),
            LOCK.read_bytes(),
            Path(__file__).read_bytes(),
            base_id,
            pixi_id,
            release,
            source_digest(),
        )
        existing = current(ref, wanted)
        if existing is not None:
            log(f"{ref} up to date")
            return Built(ref, existing)
        started = time.monotonic()
        context = cache / "context"
        fill_context(context, default_arch())
        log(f"building {ref}")
        buildah(
            "build",
            "--isolation",
            "chroot",
            f"--pull={'never' if local else 'missing'}",
            "--file",
            DOCKERFILE,
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"PIXI_IMAGE={pixi}",
            "--build-arg",
            f"VERSION={release}",
            "--label",
            f"{INPUTS_LABEL}={wanted}",
            "--tag",
            ref,
            context,
            capture=False,
        )
        # buildah 1.28 leaves the container of a stage only copied from (the pixi one).
        for ctr in buildah("containers", "--quiet", "--filter", f"ancestor={pixi}").split():
            subprocess.run([BUILDAH, "rm", ctr], capture_output=True, check=False)
        # Earlier builds of the tag are dangling now; an image a container still uses stays.
        subprocess.run([BUILDAH, "rmi", "--prune"], capture_output=True, check=False)
        built = Built(ref, image_id(ref) or "")
        log(f"{ref} built in {time.monotonic() - started:.0f} s ({built.id[:12]})")
        return built


# ------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/image/build.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    image = sub.add_parser("image", help="build localhost/wt-operator:<version> (make image)")
    image.add_argument("--tag", help="image reference (default localhost/wt-operator:<version>)")
    image.add_argument("--base-image", help="a real BASE_IMAGE instead of the local base")
    image.add_argument("--pixi-image", help="a real PIXI_IMAGE instead of the pixi stand-in")
    image.add_argument("--rebuild-base", action="store_true", help="rebuild the local base")
    context = sub.add_parser("context", help="fill a build context folder for a release build")
    context.add_argument("dir", type=Path)
    context.add_argument("--arch", default=default_arch(), help="x86_64 or aarch64")
    args = parser.parse_args(argv)
    try:
        if args.command == "context":
            fill_context(args.dir, args.arch)
            log(f"build context ready in {args.dir}")
        else:
            built = ensure_image(
                tag=args.tag,
                base_image=args.base_image,
                pixi_image=args.pixi_image,
                rebuild_base=args.rebuild_base,
            )
            print(f"{built.ref} {built.id}")
    except BuildError as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
