"""subPath / subPathExpr: expand, validate, resolve safely inside the volume, bind to a private place.

Reference: kubelet ``makeMounts`` + ``pkg/volume/util/subpath/subpath_linux.go``. A container can
plant symlinks in its volumes, so the path is resolved one component at a time with
``openat(O_PATH|O_NOFOLLOW)`` relative to fds we hold: symlinks are followed only while they stay
inside the volume (relative targets; ``..`` never above the volume root), absolute targets are
refused. Missing directories are created with the volume root's mode. The resolved fd is then
bind-mounted through ``/proc/self/fd/<n>`` onto ``<pod>/volume-subpaths/<volume>/<container>/<i>``,
and that bind — which a later symlink swap cannot redirect — is what the container gets.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from podsec.errors import InputError, RuntimeFailure
from podsec.volumes import mounts

SUBPATH_DIR = "volume-subpaths"
MAX_SYMLINK_HOPS = 40
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class SubPathEscape(RuntimeFailure):
    """The subPath would leave its volume (through a symlink or ``..``)."""


def expand_sub_path_expr(expr: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` expansion as the kubelet's ``ExpandContainerVolumeMounts`` does it.

    ``$$`` is a literal ``$``; ``$(`` without ``)`` and ``$x`` stay as written; a variable that is
    missing or empty is an error ``missing value for A, B`` (sorted).
    """
    out: list[str] = []
    missing: set[str] = set()
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = expr[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = expr.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                name = expr[i + 2 : close]
                value = env.get(name, "")
                if not value:
                    missing.add(name)
                out.append(value)
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    if missing:
        raise InputError(f"missing value for {', '.join(sorted(missing))}")
    return "".join(out)


def validate_sub_path(sub_path: str, field: str | None = None) -> None:
    """Not absolute, no ``..`` element (kubelet ``makeMounts`` messages)."""
    if sub_path.startswith("/"):
        raise InputError(f"error SubPath `{sub_path}` must not be an absolute path", field=field)
    if ".." in sub_path.split("/"):
        raise InputError(f"unable to provision SubPath `{sub_path}`: must not contain '..'", field=field)


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def open_beneath(root: Path, sub_path: str, *, create_mode: int | None = None) -> int:
    """Resolve ``sub_path`` inside ``root`` without ever leaving it; returns an ``O_PATH`` fd.

    ``create_mode`` (the volume root's mode) creates missing directories like ``SafeMakeDir``;
    None makes a missing component an error. Raises :class:`SubPathEscape` for escapes.
    """
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"cannot open volume {root}: {e.strerror}") from e
    stack: list[int] = [root_fd]
    names: list[str] = []
    todo = _components(sub_path)
    hops = 0
    try:
        while todo:
            comp = todo.pop(0)
            if comp == "..":
                if len(stack) == 1:
                    raise SubPathEscape(f"path {sub_path!r} leads above the volume root")
                os.close(stack.pop())
                names.pop()
                continue
            where = "/".join([*names, comp])
            try:
                fd = os.open(comp, _PATH_FLAGS, dir_fd=stack[-1])
            except FileNotFoundError:
                if create_mode is None:
                    raise RuntimeFailure(f"path {where!r} does not exist in the volume") from None
                fd = _make_dir(stack[-1], comp, create_mode, where)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise RuntimeFailure(f"too many levels of symbolic links resolving {sub_path!r}")
                if target.startswith("/"):
                    raise SubPathEscape(f"symlink {where!r} -> {target!r} points outside the volume")
                todo[:0] = _components(target)
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise RuntimeFailure(f"path {where!r} is not a directory")
            stack.append(fd)
            names.append(comp)
        result = stack.pop()
        return result
    finally:
        for fd in stack:
            os.close(fd)


def _make_dir(parent_fd: int, name: str, mode: int, where: str) -> int:
    """mkdirat + exact fchmod to ``mode`` (setgid/sticky included), never following a swapped link."""
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        pass  # raced with someone creating it: open it (without following) below
    except OSError as e:
        raise RuntimeFailure(f"cannot create directory {where!r}: {e.strerror}") from e
    try:
        dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            return os.open(name, _PATH_FLAGS, dir_fd=parent_fd)  # let the caller judge what it is
        raise RuntimeFailure(f"cannot open directory {where!r}: {e.strerror}") from e
    try:
        os.fchmod(dfd, mode & 0o7777)
        return os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dfd)
    finally:
        os.close(dfd)


def bind_target(pod_dir: Path, volume: str, container: str, index: int) -> Path:
    """``<pod>/volume-subpaths/<volume>/<container>/<volumeMount index>`` (kubelet layout)."""
    return pod_dir / SUBPATH_DIR / volume / container / str(index)


def bind_sub_path(fd: int, target: Path) -> None:
    """Bind the safely opened ``fd`` onto ``target`` (a fresh dir or empty file, like the kubelet)."""
    for parent in reversed([target.parent, *target.parent.parents]):
        if not parent.exists():
            os.mkdir(parent, 0o750)
    if mounts.is_mount_point(target):
        mounts.unmount(target)
    is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    if os.path.lexists(target) and (is_dir != target.is_dir() or target.is_symlink()):
        if target.is_dir() and not target.is_symlink():
            os.rmdir(target)
        else:
            os.unlink(target)
    if not os.path.lexists(target):
        if is_dir:
            os.mkdir(target, 0o750)
        else:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640))
    mounts.mount(f"/proc/self/fd/{fd}", target, None, mounts.MS_BIND)


def prepare_sub_path(
    volume_root: Path,
    sub_path: str,
    pod_dir: Path,
    volume: str,
    container: str,
    index: int,
    *,
    create: bool = True,
) -> Path:
    """Resolve, create and bind one subPath; returns the private bind to hand to the runtime."""
    try:
        mode = os.stat(volume_root).st_mode & 0o7777 if create else None
        fd = open_beneath(volume_root, sub_path, create_mode=mode)
    except OSError as e:
        raise RuntimeFailure(f"cannot resolve {sub_path!r} in {volume_root}: {e.strerror}") from e
    try:
        target = bind_target(pod_dir, volume, container, index)
        try:
            bind_sub_path(fd, target)
        except OSError as e:
            raise RuntimeFailure(f"error mounting {sub_path}: {e.strerror}") from e
        return target
    finally:
        os.close(fd)
