"""mount(2)/umount2(2) through ctypes, and /proc/self/mountinfo, for the volume work.

Why ctypes and not util-linux ``mount``: the safe subPath bind must use ``/proc/self/fd/<n>`` of
*this* process as its source, which a child ``mount`` process cannot see, and util-linux would
canonicalize the path (following the very symlinks we refuse to follow).
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass
from pathlib import Path

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        lib.mount.restype = ctypes.c_int
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.umount2.restype = ctypes.c_int
        _libc = lib
    return _libc


def _b(value: str | os.PathLike[str] | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(
    source: str | os.PathLike[str] | None,
    target: str | os.PathLike[str],
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    """``mount(2)``; raises :class:`OSError` with the target in the message."""
    if _lib().mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fspath(target))


def mount_tmpfs(target: Path, size_bytes: int | None, *, noswap: bool = True) -> None:
    """Mount a tmpfs like the kubelet's memory-backed emptyDir: ``size=<bytes>`` and ``noswap``.

    No ``mode=`` option, so the root is the kernel default 1777. ``noswap`` (Linux ≥ 6.4) is dropped
    when the kernel refuses it.
    """
    opts = [f"size={size_bytes}"] if size_bytes else []
    if noswap:
        try:
            mount("tmpfs", target, "tmpfs", 0, ",".join([*opts, "noswap"]))
            return
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
    mount("tmpfs", target, "tmpfs", 0, ",".join(opts) or None)


def bind_mount(source: str | os.PathLike[str], target: Path, *, read_only: bool = False) -> None:
    """A plain (non-recursive) bind like the kubelet's; read-only needs a second, remount call."""
    mount(source, target, None, MS_BIND)
    if read_only:
        try:
            keep = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)
        except OSError:
            unmount(target)
            raise


def unmount(target: str | os.PathLike[str]) -> bool:
    """Unmount ``target``; lazily detach when busy. False if nothing was mounted there."""
    t = _b(target)
    lib = _lib()
    if lib.umount2(t, UMOUNT_NOFOLLOW) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    if err == errno.EBUSY and lib.umount2(t, MNT_DETACH | UMOUNT_NOFOLLOW) == 0:
        return True
    err = ctypes.get_errno() if err == errno.EBUSY else err
    raise OSError(err, os.strerror(err), os.fspath(target))


@dataclass(frozen=True, slots=True)
class MountInfo:
    """One line of /proc/self/mountinfo (only what the volume code needs)."""

    mount_id: int
    parent_id: int
    root: str
    mount_point: str
    fstype: str
    source: str
    options: str


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    if "\\" not in field:
        return field
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 3 < len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def read_mountinfo(path: str = "/proc/self/mountinfo") -> list[MountInfo]:
    """All mounts of this process's mount namespace, in mount order."""
    out: list[MountInfo] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index("-", 6)
            except ValueError:
                continue
            out.append(
                MountInfo(
                    mount_id=int(fields[0]),
                    parent_id=int(fields[1]),
                    root=_unescape(fields[3]),
                    mount_point=_unescape(fields[4]),
                    options=fields[5],
                    fstype=fields[sep + 1] if len(fields) > sep + 1 else "",
                    source=_unescape(fields[sep + 2]) if len(fields) > sep + 2 else "",
                )
            )
    return out


def mounts_under(path: str | os.PathLike[str]) -> list[MountInfo]:
    """Mounts at or below ``path`` (resolved), deepest first, later-stacked first."""
    base = os.path.realpath(path)
    prefix = base.rstrip("/") + "/"
    found = [
        (i, m) for i, m in enumerate(read_mountinfo()) if m.mount_point == base or m.mount_point.startswith(prefix)
    ]
    found.sort(key=lambda im: (im[1].mount_point.count("/"), im[0]), reverse=True)
    return [m for _, m in found]


def is_mount_point(path: str | os.PathLike[str]) -> bool:
    real = os.path.realpath(path)
    return any(m.mount_point == real for m in read_mountinfo())


def unmount_all_under(path: str | os.PathLike[str], *, max_rounds: int = 64) -> list[str]:
    """Unmount everything at or below ``path``, deepest first, until mountinfo shows nothing left.

    Returns the mount points unmounted (with repeats for stacked mounts). Raises :class:`OSError`
    if something cannot be unmounted even lazily.
    """
    done: list[str] = []
    for _ in range(max_rounds):
        found = mounts_under(path)
        if not found:
            return done
        for m in found:
            if unmount(m.mount_point):
                done.append(m.mount_point)
    left = mounts_under(path)
    if left:
        raise OSError(errno.EBUSY, "mounts remain after unmounting", left[0].mount_point)
    return done
