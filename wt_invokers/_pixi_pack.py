"""Unpacking pixi-pack environment archives in-process, with py-rattler, cached by digest.

Exists so the sandbox needs no ``pixi-unpack`` binary (upstream requires one) and so
a second run of the same environment costs a lookup instead of an install. The
archive layout is pixi-pack's (format version 1)::

    pixi-pack.json                 {"version": "1", "platform": "linux-64"}
    environment.yml                (not needed here)
    channel/<subdir>/repodata.json the packages' records, sha256 included
    channel/<subdir>/<package>.conda

Every package file is checked against the sha256 its record states before
anything is installed: an archive whose metadata and contents disagree is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from wt_invokers.exceptions import EnvironmentDigestError, PixiUnpackError

__all__ = [
    "DIGEST_PATTERN",
    "UnpackedEnvironment",
    "file_digest",
    "unpack_cached",
    "validate_digest",
]

logger = logging.getLogger(__name__)

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-fA-F]{64}$")
"""A pinned archive digest: ``sha256:`` and 64 hex digits (upstream's format)."""

_FORMAT_VERSION = "1"
_COMPLETE = ".complete"
_CHUNK = 1 << 20


class UnpackedEnvironment:
    """An installed environment in the cache: its prefix and its ``activate.sh``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = root / "env"
        self.activate_path = root / "activate.sh"


def validate_digest(digest: str) -> str:
    """``digest`` lower-cased; ValueError unless it is ``sha256:<64 hex digits>``."""
    if not DIGEST_PATTERN.match(digest):
        raise ValueError(f"environment_tar_digest must be 'sha256:<64 hex chars>', got: {digest}")
    return digest.lower()


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of the file at ``path``."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def cached(cache_dir: Path, digest: str) -> UnpackedEnvironment | None:
    """The environment unpacked from the archive with ``digest``, if the cache holds it whole."""
    entry = UnpackedEnvironment(cache_dir / validate_digest(digest).removeprefix("sha256:"))
    return entry if (entry.root / _COMPLETE).exists() else None


@contextlib.contextmanager
def _locked(cache_dir: Path, name: str) -> Iterator[None]:
    # Two runs of the same new environment on one machine: one unpacks, the other waits.
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def unpack_cached(archive: Path, digest: str, cache_dir: Path) -> UnpackedEnvironment:
    """The environment of ``archive`` (whose sha256 is ``digest``), unpacked once per digest.

    Blocking (run it in a thread). Installs straight into its final place — conda
    packages embed their prefix, so an environment cannot be moved after linking —
    and marks it complete last, so a crash mid-way is redone, never half-used.
    """
    key = validate_digest(digest).removeprefix("sha256:")
    with _locked(cache_dir, key):
        hit = cached(cache_dir, digest)
        if hit is not None:
            logger.info("environment %s is cached in %s", digest, hit.root)
            return hit
        entry = UnpackedEnvironment(cache_dir / key)
        shutil.rmtree(entry.root, ignore_errors=True)  # a previous attempt's leftovers
        entry.root.mkdir(parents=True)
        try:
            with tempfile.TemporaryDirectory(prefix=".extract-", dir=cache_dir) as tmp:
                _install(archive, Path(tmp), entry, cache_dir / "pkgs")
        except BaseException:
            shutil.rmtree(entry.root, ignore_errors=True)
            raise
        (entry.root / _COMPLETE).write_text(digest + "\n")
        return entry


def _install(archive: Path, tmp: Path, entry: UnpackedEnvironment, pkgs_dir: Path) -> None:
    import asyncio

    import rattler
    from rattler.shell import ActivationVariables, Shell, activate

    _extract(archive, tmp)
    _check_metadata(tmp / "pixi-pack.json")
    channel = tmp / "channel"
    records = []
    for repodata in sorted(channel.glob("*/repodata.json")):
        _verify_packages(repodata)
        data = rattler.RepoData.from_path(repodata)
        records += data.into_repo_data(rattler.Channel(channel.as_uri()))
    if not records:
        raise PixiUnpackError(f"{archive.name} holds no packages (no channel/*/repodata.json)")
    try:
        asyncio.run(
            rattler.install(
                records,
                target_prefix=entry.prefix,
                cache_dir=pkgs_dir,
                show_progress=False,
                execute_link_scripts=False,
            )
        )
        script = activate(entry.prefix, ActivationVariables(), shell=Shell.bash).script
    except Exception as exc:  # rattler raises its own exception types
        raise PixiUnpackError(f"installing {archive.name} failed: {exc}") from exc
    entry.activate_path.write_text(script)


def _extract(archive: Path, dest: Path) -> None:
    # The "data" filter refuses absolute paths, "..", links leaving dest and device
    # files, and drops setuid bits: an archive from the network cannot write elsewhere.
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise PixiUnpackError(f"cannot extract {archive.name}: {exc}") from exc


def _check_metadata(path: Path) -> None:
    from rattler.platform import Subdir

    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PixiUnpackError(
            f"not a pixi-pack archive: no readable pixi-pack.json ({exc})"
        ) from exc
    if not isinstance(meta, dict) or meta.get("version") != _FORMAT_VERSION:
        version = meta.get("version") if isinstance(meta, dict) else meta
        raise PixiUnpackError(f"Unsupported pixi-pack version: {version}")
    here = str(Subdir.current())
    if meta.get("platform") not in (here, "noarch"):
        raise PixiUnpackError(
            "The pack was created for a different platform "
            f"({meta.get('platform')}, this is {here})"
        )


def _verify_packages(repodata: Path) -> None:
    data = json.loads(repodata.read_text())
    for section in ("packages", "packages.conda"):
        for file_name, record in (data.get(section) or {}).items():
            path = repodata.parent / file_name
            if "/" in file_name or not path.is_file():
                raise PixiUnpackError(f"{repodata.parent.name}/{file_name} is listed but missing")
            expected = record.get("sha256")
            if not expected:
                raise EnvironmentDigestError(
                    f"{repodata.parent.name}/{file_name} has no sha256 in repodata.json"
                )
            actual = file_digest(path).removeprefix("sha256:")
            if actual != str(expected).lower():
                raise EnvironmentDigestError(
                    f"{repodata.parent.name}/{file_name}: sha256 {actual} does not match "
                    f"repodata.json's {expected}"
                )


def remove_path(path: Path) -> None:
    """Remove a file if it exists (the downloaded archive, once unpacked)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
