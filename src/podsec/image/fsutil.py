"""Path resolution confined to a root directory, done with directory file descriptors.

An image rootfs is hostile data: ``etc -> /etc`` or ``a -> ../../..`` must resolve *inside* the
rootfs, the way the kernel would see it after a chroot. Every step opens one component with
``O_NOFOLLOW`` relative to the previous directory fd, so no path string is ever handed to the
kernel that could leave the root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

MAX_SYMLINKS = 40
"""Linux's limit for one lookup; deeper chains are treated as a loop (ELOOP)."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_path(path: str) -> list[str] | None:
    """Split a path from an archive into components; ``None`` if it tries to climb with ``..``.

    A leading ``/`` is dropped (archive paths are relative to the root), ``.`` and empty
    components vanish. ``[]`` means the root itself.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return parts


class _Walker:
    """One lookup: tracks the symlink budget across restarts, like a single namei() call."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.links = 0

    def open_dir(self, parts: Iterable[str], *, create: bool, mode: int = 0o755) -> tuple[int, list[str]]:
        """Open directory ``parts`` under the root; returns the fd and the resolved components."""
        todo = list(reversed(list(parts)))
        fds = [os.dup(self.root_fd)]
        names: list[str] = []
        try:
            while todo:
                comp = todo.pop()
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if len(fds) > 1:
                        os.close(fds.pop())
                        names.pop()
                    continue
                cur = fds[-1]
                try:
                    fd = os.open(comp, _DIR_FLAGS, dir_fd=cur)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(comp, mode, dir_fd=cur)
                    todo.append(comp)
                    continue
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise NotADirectoryError(errno.ENOTDIR, "not a directory", "/".join([*names, comp])) from e
                    target = self._readlink(comp, cur)
                    if target.startswith("/"):
                        while len(fds) > 1:
                            os.close(fds.pop())
                        names.clear()
                    todo.extend(reversed(target.split("/")))
                    continue
                fds.append(fd)
                names.append(comp)
            result = fds.pop()
            return result, names
        finally:
            for fd in fds:
                os.close(fd)

    def _readlink(self, name: str, dir_fd: int) -> str:
        self.links += 1
        if self.links > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", name)
        return os.readlink(name, dir_fd=dir_fd)

    def open_file(self, parts: list[str], flags: int) -> int:
        """Open the file at ``parts``, following a final symlink within the root too."""
        while True:
            if not parts:
                return os.open(".", flags | os.O_CLOEXEC, dir_fd=self.root_fd)
            parent, names = self.open_dir(parts[:-1], create=False)
            try:
                name = parts[-1]
                if name == "..":
                    parts = [*names[:-1]]
                    continue
                try:
                    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                except OSError as e:
                    if e.errno != errno.ELOOP:
                        raise
                    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise
                    target = self._readlink(name, parent)
                base = [] if target.startswith("/") else names
                parts = [*base, *(p for p in target.split("/") if p not in ("", "."))]
            finally:
                os.close(parent)


def open_dir_in_root(root_fd: int, parts: Iterable[str], *, create: bool = False, mode: int = 0o755) -> int:
    """Directory fd for ``parts`` resolved as if ``root_fd`` were ``/`` (creating missing ones if asked)."""
    fd, _ = _Walker(root_fd).open_dir(parts, create=create, mode=mode)
    return fd


def open_in_root(root: Path, path: str, flags: int = os.O_RDONLY) -> int:
    """Open ``path`` inside ``root``, resolving every symlink as a chroot would."""
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        return _Walker(root_fd).open_file(parts, flags)
    finally:
        os.close(root_fd)


def read_in_root(root: Path, path: str, limit: int = 64 << 20) -> bytes | None:
    """Contents of regular file ``path`` inside ``root``; ``None`` if missing or not a regular file."""
    try:
        fd = open_in_root(root, path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOENT, errno.ENOTDIR):
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise OSError(errno.EFBIG, f"{path} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
