"""Archive members are judged by the library itself, also where the interpreter has no
``tarfile.data_filter`` (the operator image's Python 3.11.2): simulated here by removing it."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from wt_invokers._tarsafe import UnsafeMemberError, extract_all


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    # A hard link's mode is its target inode's: as tar writes it, the same as the target's.
    info.type, info.linkname, info.mode = kind, target, 0o4777
    return info, None


def _special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


@pytest.fixture(params=["interpreter filter", "no interpreter filter"])
def interpreter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "no interpreter filter" and hasattr(tarfile, "data_filter"):
        monkeypatch.delattr(tarfile, "data_filter")
    return str(request.param)


HOSTILE = {
    "dot-dot": [_file("../outside")],
    "absolute": [_file("/tmp/wt-tarsafe-absolute")],
    "symlink out": [_link("up", "../..")],
    "absolute symlink": [_link("etc", "/etc")],
    "symlink chain": [_link("d", "."), _link("d/l", "..")],
    "write through a link": [_link("d", "sub/../.."), _file("d/outside")],
    "hard link out": [_link("h", "../victim", tarfile.LNKTYPE)],
    "device": [_special("dev", tarfile.CHRTYPE)],
    "fifo": [_special("fifo", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_member_that_would_leave_the_directory_is_refused_and_nothing_lands_outside(
    tmp_path: Path, case: str, interpreter: str
) -> None:
    archive = _archive(tmp_path / "a.tar", HOSTILE[case])
    dest = tmp_path / "x" / "dest"
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar, pytest.raises(UnsafeMemberError):
        extract_all(tar, str(dest))
    assert not Path("/tmp/wt-tarsafe-absolute").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "x"]
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["dest"]


def test_a_data_archive_extracts_with_harmless_modes(tmp_path: Path, interpreter: str) -> None:
    archive = _archive(
        tmp_path / "a.tar",
        [
            _file("bin/tool", b"#!/bin/sh\n", mode=0o4777),
            _link("bin/alias", "tool"),
            _link("lib/hard", "bin/tool", tarfile.LNKTYPE),
        ],
    )
    dest = tmp_path / "dest"
    with tarfile.open(archive) as tar:
        extract_all(tar, str(dest))
    tool = dest / "bin" / "tool"
    assert tool.read_bytes() == b"#!/bin/sh\n"
    assert os.readlink(dest / "bin" / "alias") == "tool"
    assert (dest / "lib" / "hard").read_bytes() == b"#!/bin/sh\n"
    mode = stat.S_IMODE(tool.stat().st_mode)
    assert mode & (stat.S_ISUID | stat.S_IWOTH | stat.S_IWGRP) == 0
    assert mode & stat.S_IXUSR
