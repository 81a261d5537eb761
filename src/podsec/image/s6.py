"""Which s6-overlay / linuxserver files an image's rootfs holds, for :mod:`podsec.puid`.

Kept apart from the pure verdict: this is the only part that reads the (hostile) rootfs, and it does so
with :mod:`podsec.image.fsutil`'s confined lookups, so a symlink never leads outside the image.
Paths: s6-overlay v3 installs ``/package/admin/s6-overlay-<version>`` (+ a ``s6-overlay`` link), its
programs in ``/command`` and its config under ``/etc/s6-overlay``; v2 used ``/etc/s6`` and
``/etc/cont-init.d``/``/etc/services.d``; linuxserver bases add ``/docker-mods`` (just-containers/s6-overlay
``layout/rootfs-overlay``; linuxserver/docker-baseimage-alpine ``Dockerfile``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podsec.errors import PodsecError
from podsec.image.fsutil import open_dir_in_root, read_in_root
from podsec.image.model import ImageFacts

MARKER_DIRS = ("/etc/s6-overlay", "/package/admin/s6-overlay", "/etc/cont-init.d", "/etc/services.d", "/etc/s6")
MARKER_FILES = ("/docker-mods",)
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def _dir_stat(root_fd: int, path: str) -> os.stat_result | None:
    """stat of a directory inside the root (symlinks resolved within it), or None if there is none."""
    try:
        fd = open_dir_in_root(root_fd, [p for p in path.split("/") if p])
    except OSError as e:
        if e.errno in _GONE:
            return None
        raise
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _command_s6(root_fd: int) -> str | None:
    """The first ``s6-*`` program in ``/command`` (s6-overlay v3 puts its programs there)."""
    try:
        fd = open_dir_in_root(root_fd, ["command"])
    except OSError as e:
        if e.errno in _GONE:
            return None
        raise
    try:
        names = sorted(n for n in os.listdir(fd) if n.startswith("s6-"))
    finally:
        os.close(fd)
    return f"/command/{names[0]}" if names else None


def probe(rootfs: Path) -> ImageFacts:
    """The s6 markers present and the owner/mode of ``/run`` in an unpacked rootfs."""
    root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        markers = [m for m in MARKER_DIRS if _dir_stat(root_fd, m) is not None]
        cmd = _command_s6(root_fd)
        if cmd:
            markers.insert(min(2, len(markers)), cmd)
        run_st = _dir_stat(root_fd, "/run")
    finally:
        os.close(root_fd)
    for path in MARKER_FILES:
        try:
            if read_in_root(rootfs, path, limit=1 << 20) is not None:
                markers.append(path)
        except OSError as e:
            if e.errno not in (*_GONE, errno.EFBIG):
                raise
    run = None if run_st is None else (run_st.st_uid, run_st.st_gid, stat.S_IMODE(run_st.st_mode))
    return ImageFacts(markers=tuple(markers), run_owner=run)


def store_facts(store: Any) -> Callable[[str], ImageFacts | None]:
    """An image-reference → facts lookup over an ``ImageStore`` (unpacks the rootfs on first use; cached)."""
    cache: dict[str, ImageFacts | None] = {}

    def lookup(ref: str) -> ImageFacts | None:
        if ref not in cache:
            try:
                cache[ref] = probe(Path(store.rootfs(ref)))
            except (PodsecError, OSError):
                cache[ref] = None
        return cache[ref]

    return lookup
