"""Offline pixi-pack archives of the sample workflow, for the sandbox invoker's tests.

Exists because the real ``pixi-pack`` needs pixi, a lock file and a network channel:
this writes the same layout (format version 1) from the local channel the test kit
builds — ``pixi-pack.json``, ``environment.yml``, ``channel/noarch/`` with the
packages and a ``repodata.json`` listing exactly them, sha256 included.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

from wt_testkit.workflows.package import WorkflowPackage
from wt_testkit.workflows.workspace import local_channel

__all__ = ["build_pixi_pack_archive"]


def build_pixi_pack_archive(
    dest: Path,
    packages: Sequence[WorkflowPackage | str] = (WorkflowPackage(),),
    *,
    corrupt_package: bool = False,
    platform: str | None = None,
) -> Path:
    """Write a pixi-pack ``environment.tar`` holding ``packages`` to ``dest``.

    ``corrupt_package`` flips one byte of the first package after its sha256 was
    recorded (what a tampered archive looks like); ``platform`` overrides the
    metadata's platform (default: this machine's).
    """
    from rattler.platform import Subdir

    pkgs = [WorkflowPackage.parse(p) for p in packages]
    channel = local_channel(pkgs)
    repodata = json.loads((channel / "noarch" / "repodata.json").read_text())
    wanted = {(p.name, p.version) for p in pkgs}
    section = "packages.conda"
    chosen = {
        fn: rec
        for fn, rec in (repodata.get(section) or {}).items()
        if (rec["name"], rec["version"]) in wanted
    }
    meta = {"version": "1", "platform": platform or str(Subdir.current())}
    env_yml = "channels:\n  - ./channel\ndependencies:\n" + "".join(
        f"  - {r['name']}={r['version']}={r['build']}\n" for r in chosen.values()
    )
    sub = {"info": {"subdir": "noarch"}, "packages": {}, section: chosen}

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        add(tar, "pixi-pack.json", json.dumps(meta).encode())
        add(tar, "environment.yml", env_yml.encode())
        add(tar, "channel/noarch/repodata.json", json.dumps(sub).encode())
        for i, fn in enumerate(sorted(chosen)):
            data = bytearray((channel / "noarch" / fn).read_bytes())
            if corrupt_package and i == 0:
                data[len(data) // 2] ^= 0xFF
            add(tar, f"channel/noarch/{fn}", bytes(data))
    return dest
