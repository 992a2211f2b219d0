"""What a tar member may be, for archives this library extracts or writes.

Why not ``tarfile.data_filter``: it arrived in Python 3.11.4, and the operator image's
interpreter (Debian bookworm's 3.11.2) lacks it — the library must be as safe there as on a
newer Python. The rules are few, so they are written once here and serve both directions:
a downloaded environment archive (untrusted input) and a workflow's results (written by
untrusted code). Paths are judged with ``realpath`` against the real directory, member by
member, so a symlink an earlier member created cannot carry a later one outside.
"""

from __future__ import annotations

import copy
import os
import stat
import tarfile

__all__ = ["UnsafeMemberError", "check_member", "extract_all"]


class UnsafeMemberError(tarfile.TarError):
    """A member that would leave its directory, or that no data archive needs."""

    def __init__(self, message: str, member: tarfile.TarInfo) -> None:
        super().__init__(message)
        self.member = member


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def check_member(member: tarfile.TarInfo, root: str) -> tarfile.TarInfo:
    """A copy of ``member`` safe to extract under (or archive from) ``root``.

    Refused: absolute names, names or link targets resolving outside ``root``, devices,
    FIFOs and any other special file. Kept but made harmless: setuid/setgid/sticky bits and
    group/other write bits are dropped, ownership becomes the current user's.
    """
    name = member.name
    real_root = os.path.realpath(root)
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise UnsafeMemberError(f"{name} is an absolute path", member)
    if not _inside(real_root, os.path.join(real_root, name)):
        raise UnsafeMemberError(f"{name} would be outside the directory", member)
    if member.issym():
        if os.path.isabs(member.linkname):
            raise UnsafeMemberError(f"{name} links to an absolute path", member)
        target = os.path.join(real_root, os.path.dirname(name), member.linkname)
        if not _inside(real_root, target):
            raise UnsafeMemberError(f"{name} links outside the directory", member)
    elif member.islnk():
        if not _inside(real_root, os.path.join(real_root, member.linkname)):
            raise UnsafeMemberError(f"{name} is a hard link to outside the directory", member)
    elif not (member.isreg() or member.isdir()):
        raise UnsafeMemberError(f"{name} is a device, FIFO or other special file", member)
    safe = copy.copy(member)  # what TarInfo.replace (3.11.4+) does
    safe.mode = member.mode & 0o755 & ~(stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)
    if member.isreg():
        safe.mode |= stat.S_IRUSR | stat.S_IWUSR
    elif member.isdir():
        safe.mode |= stat.S_IRWXU
    safe.uid, safe.gid = os.getuid(), os.getgid()
    safe.uname = safe.gname = ""
    return safe


def extract_all(tar: tarfile.TarFile, dest: str) -> None:
    """Extract every member of ``tar`` under ``dest``, each checked just before it lands."""
    os.makedirs(dest, exist_ok=True)
    # Our own check has run; the interpreter's data filter (where it exists) runs again on
    # top, and naming a filter keeps 3.12+ from warning about the old default.
    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    for member in tar:
        tar.extract(check_member(member, dest), dest, **kwargs)  # type: ignore[arg-type]
