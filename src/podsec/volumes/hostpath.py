"""hostPath volumes: the kubelet's ``type`` check (and the two ``...OrCreate`` creations).

Reference: ``pkg/volume/hostpath/host_path.go`` ``checkTypeInternal``/``fileTypeChecker``. The path is
used verbatim as the bind source; the kubelet never chowns it, whatever the fsGroup.
Symlinks on the host are followed (the host administrator owns them), exactly like the kubelet.
"""

from __future__ import annotations

import os
import stat

from podsec.errors import InputError, RuntimeFailure

UNSET = ""
DIRECTORY_OR_CREATE = "DirectoryOrCreate"
DIRECTORY = "Directory"
FILE_OR_CREATE = "FileOrCreate"
FILE = "File"
SOCKET = "Socket"
CHAR_DEVICE = "CharDevice"
BLOCK_DEVICE = "BlockDevice"

HOST_PATH_TYPES = (UNSET, DIRECTORY_OR_CREATE, DIRECTORY, FILE_OR_CREATE, FILE, SOCKET, CHAR_DEVICE, BLOCK_DEVICE)

_KIND_BY_IFMT = {
    stat.S_IFDIR: DIRECTORY,
    stat.S_IFREG: FILE,
    stat.S_IFSOCK: SOCKET,
    stat.S_IFCHR: CHAR_DEVICE,
    stat.S_IFBLK: BLOCK_DEVICE,
}


def validate_host_path(path: object, volume: str, field: str | None = None) -> str:
    """``invalid HostPath `p`: must not contain '..'`` and a non-empty string (pure)."""
    if not isinstance(path, str) or not path:
        raise InputError(f'volume "{volume}": hostPath.path: Required value', field=field)
    if ".." in path.split("/"):
        raise InputError(f"invalid HostPath `{path}`: must not contain '..'", field=field)
    return path


def validate_type(type_: object, field: str | None = None) -> str:
    """An unknown type is refused by the kubelet as ``<type> is an invalid volume type``."""
    t = "" if type_ is None else type_
    if t not in HOST_PATH_TYPES:
        raise InputError(f"{t} is an invalid volume type", field=field)
    return str(t)


def file_type(path: str) -> str | None:
    """``GetFileType`` (stat, following symlinks): one of the type names, or None (missing/other)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _KIND_BY_IFMT.get(stat.S_IFMT(st.st_mode))


def _make_dir(path: str) -> None:
    """``MkdirAll(path, 0755)``; new directories get exactly 0755 whatever our umask."""
    missing: list[str] = []
    p = path
    while p and p != "/" and not os.path.lexists(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            continue
        os.chmod(d, 0o755)


def _make_file(path: str) -> None:
    """``OpenFile(path, O_CREATE, 0644)``: a new empty file gets exactly 0644; an existing one stays."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:  # a dangling symlink: the kubelet creates its target, so do we
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    else:
        os.fchmod(fd, 0o644)
    os.close(fd)


def check_host_path(path: str, type_: str | None, volume: str) -> None:
    """Run the kubelet's SetUp check for ``type``; creates the path for the ``...OrCreate`` types.

    Raises :class:`RuntimeFailure` with the kubelet's text, e.g.
    ``hostPath type check failed: /x is not a directory``.
    """
    t = validate_type(type_)
    if t == UNSET:
        return
    kind = file_type(path)
    exists = os.path.exists(path)
    prefix = f'MountVolume.SetUp failed for volume "{volume}" : '
    try:
        if t == DIRECTORY_OR_CREATE and not exists:
            _make_dir(path)
            return
        if t == FILE_OR_CREATE and not exists:
            _make_file(path)
            return
    except OSError as e:
        raise RuntimeFailure(f"{prefix}{e.strerror}: {path}") from e
    expected = {
        DIRECTORY_OR_CREATE: (DIRECTORY, "a directory"),
        DIRECTORY: (DIRECTORY, "a directory"),
        FILE_OR_CREATE: (FILE, "a file"),
        FILE: (FILE, "a file"),
        SOCKET: (SOCKET, "a socket file"),
        CHAR_DEVICE: (CHAR_DEVICE, "a character device"),
        BLOCK_DEVICE: (BLOCK_DEVICE, "a block device"),
    }[t]
    if kind != expected[0]:
        raise RuntimeFailure(f"{prefix}hostPath type check failed: {path} is not {expected[1]}")
