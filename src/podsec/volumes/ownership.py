"""Volume ownership: the kubelet's fsGroup walk (``ChangePermissions``) and the fsUser chown.

Reference: kubelet-semantics §3.1–§3.3. The walk is post-order, never follows symlinks, only ever ADDS
mode bits, and gives directories setgid|0110. It runs on trees a container may be writing to at the
same time (emptyDir, claims), so every step is relative to a directory fd opened with ``O_NOFOLLOW``:
a directory swapped for a symlink mid-walk cannot lead the walk, a chown or a chmod outside the volume.

Differences from the kubelet, all deliberate:

* syscalls are skipped when the group / mode is already right (the result is identical; files whose
  group already matched keep a ``security.capability`` xattr the kubelet's unconditional chown drops);
* chmod of non-directories uses ``fchmodat2(AT_SYMLINK_NOFOLLOW)`` (or an ``O_PATH`` fallback), so a
  file swapped for a symlink between the stat and the chmod is never followed;
* a directory that turned into a symlink between ``readdir`` and ``open`` is treated as a leaf
  (the kubelet would follow it).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from podsec.errors import RuntimeFailure

log = logging.getLogger(__name__)

RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110
SETGID = stat.S_ISGID

ALWAYS = "Always"
ON_ROOT_MISMATCH = "OnRootMismatch"

FIRST_PROGRESS_AFTER = 30.0
"""Seconds before the first progress report (the kubelet's first ``VolumePermissionChangeInProgress``)."""
PROGRESS_EVERY = 60.0
"""Seconds between later progress reports."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_OPEN_DEPTH = 48
"""Ancestor directory fds kept open; deeper ones are closed and reopened through ``..`` (verified)."""
_CHECK_CLOCK_EVERY = 2048

ProgressFn = Callable[[int], None]
LeafFn = Callable[[int, str, os.stat_result, str], None]
DirFn = Callable[[int, os.stat_result, str], None]


# --------------------------------------------------------------------------------------------------
# chmod that never follows a symlink


_AT_SYMLINK_NOFOLLOW = 0x100
_SYS_FCHMODAT2 = 452  # the same number on every Linux architecture (added in 6.6)
_fchmodat2: Callable[..., int] | None = None
_fchmodat2_probed = False
_probe_lock = threading.Lock()


def _probe_fchmodat2() -> Callable[..., int] | None:
    """Return a ctypes handle for ``fchmodat2`` when the kernel has it (once per process)."""
    global _fchmodat2, _fchmodat2_probed
    with _probe_lock:
        if _fchmodat2_probed:
            return _fchmodat2
        _fchmodat2_probed = True
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.syscall
            fn.restype = ctypes.c_long
            fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int]
            fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                # An invalid flag: EINVAL proves the syscall exists, ENOSYS that it does not.
                fn(_SYS_FCHMODAT2, fd, b".", 0, 0x40000000)
                if ctypes.get_errno() == errno.EINVAL:
                    _fchmodat2 = fn
            finally:
                os.close(fd)
        except (OSError, AttributeError):
            _fchmodat2 = None
        return _fchmodat2


def chmod_nofollow(dir_fd: int, name: str, mode: int) -> None:
    """chmod ``name`` relative to ``dir_fd``; a symlink there raises ``OSError(EOPNOTSUPP)``.

    Why: plain ``fchmodat`` follows symlinks, so a container swapping a file for a link to
    ``/etc/shadow`` between our stat and our chmod would get the host file's mode changed.
    """
    fn = _fchmodat2 if _fchmodat2_probed else _probe_fchmodat2()
    if fn is not None:
        if fn(_SYS_FCHMODAT2, dir_fd, os.fsencode(name), mode, _AT_SYMLINK_NOFOLLOW) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), name)
        return
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), name)
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# the walk


class _Frame:
    __slots__ = ("entries", "fd", "key", "path", "st")

    def __init__(self, fd: int, st: os.stat_result, path: str) -> None:
        self.fd: int | None = fd
        self.st = st
        self.key = (st.st_dev, st.st_ino)
        self.path = path
        self.entries = iter(_list_dir(fd))


def _list_dir(fd: int) -> list[tuple[str, bool]]:
    """(name, is_dir) for every entry; read at once so only one fd per level stays open."""
    with os.scandir(fd) as it:
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]


class _Progress:
    """Calls ``progress(count)`` after ``first`` seconds, then every ``every`` seconds."""

    __slots__ = ("callback", "count", "every", "next_at", "next_check")

    def __init__(self, callback: ProgressFn | None, first: float, every: float) -> None:
        self.callback = callback
        self.count = 0
        self.every = every
        self.next_at = time.monotonic() + first
        self.next_check = _CHECK_CLOCK_EVERY if callback is not None else -1

    def tick(self) -> None:
        self.count += 1
        if self.count == self.next_check:
            self.next_check += _CHECK_CLOCK_EVERY
            now = time.monotonic()
            if now >= self.next_at and self.callback is not None:
                self.next_at = now + self.every
                self.callback(self.count)


def walk_tree(
    root: Path,
    on_leaf: LeafFn,
    on_dir: DirFn,
    progress: _Progress | None = None,
) -> int:
    """Post-order walk of ``root`` without following symlinks; returns the number of paths visited.

    ``on_leaf(dir_fd, name, lstat, dir_path)`` gets every non-directory (symlinks included) relative
    to its parent's fd; ``on_dir(fd, fstat, path)`` gets every directory through its own
    ``O_NOFOLLOW`` fd after all its children, the root last. Paths are for messages only (they
    start with ``root``). An lstat/readdir error aborts the walk (as in the kubelet).
    """
    prog = progress if progress is not None else _Progress(None, 0.0, 0.0)
    root_s = os.fspath(root)
    try:
        rst = os.lstat(root_s)
    except OSError as e:
        raise RuntimeFailure(f"cannot walk volume {root_s}: lstat: {e.strerror}") from e
    if not stat.S_ISDIR(rst.st_mode):
        parent = os.path.dirname(root_s) or "."
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            on_leaf(pfd, os.path.basename(root_s), rst, parent)
        finally:
            os.close(pfd)
        prog.tick()
        return prog.count
    try:
        rfd = os.open(root_s, _DIR_FLAGS)
    except OSError as e:
        raise RuntimeFailure(f"cannot walk volume {root_s}: open: {e.strerror}") from e
    stack: list[_Frame] = []
    try:
        stack.append(_Frame(rfd, os.fstat(rfd), root_s))
        while stack:
            top = stack[-1]
            fd = top.fd
            assert fd is not None
            descended = False
            for name, is_dir in top.entries:
                if is_dir:
                    try:
                        cfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError as e:
                        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                            raise _walk_error(root_s, top.path, name, "open", e) from e
                        # Swapped for a symlink or a file since readdir: never follow it.
                    else:
                        try:
                            frame = _Frame(cfd, os.fstat(cfd), top.path + "/" + name)
                        except OSError as e:
                            os.close(cfd)
                            raise _walk_error(root_s, top.path, name, "readdir", e) from e
                        stack.append(frame)
                        if len(stack) > _MAX_OPEN_DEPTH:
                            old = stack[-_MAX_OPEN_DEPTH - 1]
                            if old.fd is not None and old is not stack[0]:
                                os.close(old.fd)
                                old.fd = None
                        descended = True
                        break
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError as e:
                    raise _walk_error(root_s, top.path, name, "lstat", e) from e
                on_leaf(fd, name, st, top.path)
                prog.tick()
            if descended:
                continue
            stack.pop()
            on_dir(fd, top.st, top.path)
            prog.tick()
            if stack:
                parent = stack[-1]
                if parent.fd is None:
                    parent.fd = _reopen_parent(fd, parent, root_s)
            os.close(fd)
            top.fd = None
    finally:
        for frame in stack:
            if frame.fd is not None:
                os.close(frame.fd)
    return prog.count


def _reopen_parent(child_fd: int, parent: _Frame, root_s: str) -> int:
    """Reopen a closed ancestor through ``..`` and make sure it is still the same directory."""
    pfd = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
    st = os.fstat(pfd)
    if (st.st_dev, st.st_ino) != parent.key:
        os.close(pfd)
        raise RuntimeFailure(f"cannot walk volume {root_s}: {parent.path} was moved during the walk")
    return pfd


def _walk_error(root_s: str, dir_path: str, name: str, op: str, e: OSError) -> RuntimeFailure:
    return RuntimeFailure(f"cannot walk volume {root_s}: {op} {dir_path}/{name}: {e.strerror}")


# --------------------------------------------------------------------------------------------------
# fsGroup


def _want_mask(read_only: bool) -> int:
    return RO_MASK if read_only else RW_MASK


def requires_permission_change(root: Path, fs_group: int, read_only: bool) -> bool:
    """The kubelet's OnRootMismatch test: stat (following links) the root and compare group and mode."""
    try:
        st = os.stat(root)
    except OSError as e:
        log.info("OnRootMismatch: stat %s failed (%s), performing recursive ownership change", root, e)
        return True
    if st.st_gid != fs_group:
        return True
    if not stat.S_ISDIR(st.st_mode):
        return True
    want = _want_mask(read_only) | EXEC_MASK
    if st.st_mode & want != want:
        return True
    return not st.st_mode & SETGID


def skip_permission_change(root: Path, fs_group: int | None, read_only: bool, policy: str | None) -> bool:
    """True when ``ChangePermissions`` would do nothing at all for these arguments."""
    if fs_group is None:
        return True
    if policy == ON_ROOT_MISMATCH:
        return not requires_permission_change(root, fs_group, read_only)
    return False


def change_ownership(
    root: Path,
    fs_group: int | None,
    read_only: bool,
    policy: str | None = None,
    progress: ProgressFn | None = None,
    *,
    first_progress_after: float = FIRST_PROGRESS_AFTER,
    progress_every: float = PROGRESS_EVERY,
) -> int:
    """Give ``root`` and everything below it group ``fs_group`` and the fsGroup mode bits (§3.2).

    Returns the number of paths processed (0 when nothing had to be walked). Per-file chown/chmod
    errors are logged and skipped like the kubelet does; an error reading the tree aborts with
    :class:`RuntimeFailure`. ``progress(count)`` is called after 30 s and then every 60 s.
    """
    if skip_permission_change(root, fs_group, read_only, policy):
        return 0
    assert fs_group is not None
    gid = fs_group
    file_mask = _want_mask(read_only)
    dir_mask = file_mask | SETGID | EXEC_MASK
    chmod = chmod_nofollow
    lchown = os.chown
    islnk = stat.S_ISLNK

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        chowned = False
        if st.st_gid != gid:
            try:
                lchown(name, -1, gid, dir_fd=dir_fd, follow_symlinks=False)
                chowned = True
            except OSError as e:
                log.warning("lchown %s/%s: %s", dir_path, name, e.strerror)
        mode = st.st_mode
        if islnk(mode):
            return
        perm = mode & 0o7777
        new = perm | file_mask
        # A chown clears setuid/setgid on non-directories; the kubelet's chmod puts them back.
        if new != perm or (chowned and perm & 0o6000):
            try:
                chmod(dir_fd, name, new)
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:  # became a symlink meanwhile: leave it alone
                    log.warning("chmod %s/%s: %s", dir_path, name, e.strerror)

    def directory(fd: int, st: os.stat_result, path: str) -> None:
        if st.st_gid != gid:
            try:
                os.chown(fd, -1, gid)
            except OSError as e:
                log.warning("lchown %s: %s", path, e.strerror)
        perm = st.st_mode & 0o7777
        new = perm | dir_mask
        if new != perm:
            try:
                os.chmod(fd, new)
            except OSError as e:
                log.warning("chmod %s: %s", path, e.strerror)

    return walk_tree(root, leaf, directory, _Progress(progress, first_progress_after, progress_every))


# --------------------------------------------------------------------------------------------------
# fsUser (KEP-5936 / KEP-5280 style owner uid)


def change_owner_uid(
    root: Path,
    uid: int,
    *,
    include_dirs: bool = False,
    progress: ProgressFn | None = None,
) -> int:
    """``Chown(path, uid, -1)`` every regular file below ``root`` (and directories if asked).

    The KEP-5936 AtomicWriter sets the owner of data files only; KEP-5280's fsUser idea would also
    own directories, hence ``include_dirs``. Symlinks are never touched or followed. Returns the
    number of paths visited. Feature gates are decided by the caller.
    """

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        if stat.S_ISREG(st.st_mode) and st.st_uid != uid:
            try:
                os.chown(name, uid, -1, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as e:
                log.warning("chown %s/%s: %s", dir_path, name, e.strerror)

    def directory(fd: int, st: os.stat_result, path: str) -> None:
        if include_dirs and st.st_uid != uid:
            try:
                os.chown(fd, uid, -1)
            except OSError as e:
                log.warning("chown %s: %s", path, e.strerror)

    return walk_tree(root, leaf, directory, _Progress(progress, FIRST_PROGRESS_AFTER, PROGRESS_EVERY))


def walk_order(root: Path) -> list[str]:
    """Paths (relative to ``root``, ``"."`` for the root) in the order the ownership walk visits them.

    Used by tests and ``explain`` to show the kubelet's post-order (children before their directory).
    """
    out: list[str] = []
    root_s = os.fspath(root)

    def rel(path: str) -> str:
        return "." if path == root_s else path[len(root_s) + 1 :]

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        out.append(name if dir_path == root_s else f"{rel(dir_path)}/{name}")

    def directory(fd: int, st: os.stat_result, path: str) -> None:
        out.append(rel(path))

    walk_tree(root, leaf, directory)
    return out
