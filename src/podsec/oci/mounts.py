"""containerd's default mounts and the CRI mount merge (oci-translation §2.1, §2.4).

Pure list manipulation: the host side (creating missing paths, resolving symlinks) belongs to the volume
layer, so the builder stays testable without a machine.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable

CGROUP_MOUNT_DEST = "/sys/fs/cgroup"


def default_mounts() -> list[dict]:
    """``pkg/oci/mounts.go defaultMounts()`` in containerd's order (``/run`` included; the CRI removes it)."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/run",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
    ]


def cgroup_mount(extra_options: Iterable[str] = ()) -> dict:
    """The read-only cgroup mount containerd appends (docker's behaviour); privileged flips it to rw later."""
    return {
        "destination": CGROUP_MOUNT_DEST,
        "type": "cgroup",
        "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro", *extra_options],
    }


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for absolute container paths."""
    return posixpath.normpath(path) if path else path


def depth(path: str) -> int:
    """containerd's ``orderedMounts`` key: the number of ``/`` in the cleaned path."""
    return clean(path).count("/")


def bind(source: str, destination: str, readonly: bool, propagation: str = "rprivate") -> dict:
    """A CRI mount as containerd emits it: ``rbind`` + propagation + ``ro``/``rw``."""
    return {
        "destination": destination,
        "type": "bind",
        "source": source,
        "options": ["rbind", propagation, "ro" if readonly else "rw"],
    }


def merge_mounts(defaults: list[dict], supplied: list[dict], cgroup: dict | None) -> list[dict]:
    """``withMounts`` (§2.4): sort supplied binds by depth, drop shadowed defaults, binds last.

    The cgroup mount joins the defaults (so it lands after /sys) and, like them, yields to a supplied mount
    at the same place. A supplied ``/dev`` also removes every default under ``/dev/``.
    """
    ordered = sorted(supplied, key=lambda m: depth(m["destination"]))  # sorted() is stable, like sort.Stable
    base = [*defaults, cgroup] if cgroup is not None else list(defaults)
    taken = {clean(m["destination"]) for m in ordered}
    out: list[dict] = []
    for m in base:
        dst = clean(m["destination"])
        if dst in taken:
            continue
        if "/dev" in taken and dst.startswith("/dev/"):
            continue
        out.append(m)
    return out + ordered


def host_cgroup2_options(mounts_file: str = "/proc/self/mounts") -> list[str]:
    """``nsdelegate``/``memory_recursiveprot`` of the host's cgroup2 mount, which containerd copies into a
    container without its own cgroup namespace so the cgroup2 mount behaves like the host's."""
    try:
        with open(mounts_file, encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) >= 4 and fields[1] == CGROUP_MOUNT_DEST and fields[2] == "cgroup2":
                    opts = fields[3].split(",")
                    return [o for o in ("nsdelegate", "memory_recursiveprot") if o in opts]
    except OSError:
        pass
    return []


_SKIP_DEV_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


def host_devices(root: str = "/dev") -> list[dict]:
    """Every char/block device under the host's /dev, as containerd's ``WithHostDevices`` lists them.

    Symlinks, ``console`` and the pseudo-filesystem dirs (pts, shm, fd, mqueue, …) are skipped; a node
    with major 0 is not a device.
    """
    out: list[dict] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        path = os.path.join(root, entry.name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if entry.name not in _SKIP_DEV_DIRS:
                out.extend(host_devices(path))
            continue
        if entry.name == "console":
            continue
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            continue
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        if major == 0:
            continue
        out.append(
            {
                "path": path,
                "type": kind,
                "major": major,
                "minor": minor,
                "fileMode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
            }
        )
    return out
