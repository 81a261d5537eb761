"""mount(2)/umount2(2) through libc, and the mount table, for the pod's own mounts.

Calling libc directly instead of ``mount``/``umount`` saves a fork+exec per mount on the run path.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MNT_DETACH = 0x2

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


def _b(s: str | Path | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str, target: str | Path, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2); raises OSError with the kernel's errno."""
    if _lib().mount(_b(source), _b(target), _b(fstype), flags, data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def umount(target: str | Path, *, detach: bool = False) -> None:
    """umount2(2); a path that is not (or no longer) a mount point is fine."""
    if _lib().umount2(_b(target), MNT_DETACH if detach else 0) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Every mount point in the table, in mount order."""
    out: list[str] = []
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            parts = line.split(" ", 5)
            if len(parts) > 4:
                out.append(_unescape(parts[4]))
    return out


def mounts_under(root: str | Path, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points at or below ``root``, deepest (and latest) first: the order to unmount them."""
    base = os.path.realpath(root)
    prefix = base.rstrip("/") + "/"
    found = [(i, p) for i, p in enumerate(mount_points(mountinfo)) if p == base or p.startswith(prefix)]
    found.sort(key=lambda ip: (ip[1].count("/"), ip[0]), reverse=True)
    return [p for _, p in found]  # a path mounted twice is listed twice: each umount peels one layer


def unmount_all(root: str | Path) -> list[str]:
    """Unmount everything at or below ``root``, deepest first; lazily when a mount is busy.

    Returns what could not be unmounted (normally nothing).
    """
    failed: list[str] = []
    for _ in range(3):
        points = mounts_under(root)
        if not points:
            return []
        failed = []
        for p in points:
            try:
                umount(p)
            except OSError as e:
                if e.errno == errno.EBUSY:
                    try:
                        umount(p, detach=True)
                        continue
                    except OSError:
                        pass
                failed.append(f"{p}: {e.strerror}")
    return failed or [f"{p}: still mounted" for p in mounts_under(root)]
