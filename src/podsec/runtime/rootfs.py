"""A container's root filesystem: an overlay of the image's unpacked rootfs (never written) and a
per-container upper directory, like containerd's overlayfs snapshotter.

The overlay itself is always writable, as containerd's snapshot is: the runtime must create mount
points in it. ``readOnlyRootFilesystem`` is enforced by the spec's ``root.readonly``.

The overlay is mounted ``volatile`` (Linux >= 5.10): a writable layer lives only as long as its
container, so syncing it is pointless, and without the option every unmount syncs the whole upper
filesystem (tens of milliseconds on a busy disk). ``sync`` inside a container is then a no-op for the
rootfs; volumes are unaffected.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from podsec.errors import RuntimeFailure
from podsec.volumes.mounts import mount, unmount


def _check(path: Path) -> str:
    s = str(path)
    if any(ch in s for ch in ",:\n"):
        raise RuntimeFailure(f"overlayfs cannot use a path containing ',' or ':': {s}")
    return s


def mount_overlay(lower: Path, container_dir: Path) -> Path:
    """Mount ``lower`` + a fresh ``<container_dir>/upper`` at ``<container_dir>/rootfs``.

    Every call starts from an empty upper dir: the kubelet creates a new container (and so a new
    snapshot) for each restart, so a restarted container never sees what the previous run wrote.
    """
    upper, work, rootfs = container_dir / "upper", container_dir / "work", container_dir / "rootfs"
    if os.path.ismount(rootfs):
        unmount(rootfs)
    for d in (upper, work):
        if d.exists():
            shutil.rmtree(d)
    for d in (upper, work, rootfs):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(upper, 0o755)  # the root of the container's view: "/" keeps the image's 0755
    options = f"lowerdir={_check(lower)},upperdir={_check(upper)},workdir={_check(work)}"
    try:
        try:
            mount("overlay", rootfs, "overlay", 0, options + ",volatile")
        except OSError as e:
            if e.errno != errno.EINVAL:  # a kernel before 5.10 has no "volatile"
                raise
            mount("overlay", rootfs, "overlay", 0, options)
    except OSError as e:
        raise RuntimeFailure(f"cannot mount the container's overlay rootfs: {e.strerror}") from e
    return rootfs


def unmount_overlay(container_dir: Path) -> None:
    unmount(container_dir / "rootfs")
