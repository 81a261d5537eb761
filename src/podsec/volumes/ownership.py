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
  (the kubelet would follow it);
* a walk still running after 50 ms forks worker processes for the remaining subdirectories of the
  directory it is in (syscall-bound work; Python threads would fight over the GIL). Post-order is kept:
  a directory is processed only after every worker that handled its children has finished.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from podsec.errors import RuntimeFailure
from podsec.libc import Syscall, syscall_if
from podsec.logger import get_logger

log = get_logger(__name__)

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

PARALLEL_AFTER = 0.05
"""A walk still busy after this many seconds is split across worker processes (small trees never fork)."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_OPEN_DEPTH = 48
"""Ancestor directory fds kept open; deeper ones are closed and reopened through ``..`` (verified)."""
_CHECK_CLOCK_EVERY = 1024
_MAX_JOBS = 8192
"""Job ids are 4-byte records in a pipe filled before forking (8192 fit in the default 64 KiB)."""
_LEAF_CHUNK = 1024

ProgressFn = Callable[[int], None]
WarnFn = Callable[[str], None]
LeafFn = Callable[[int, str, os.stat_result, str], None]
DirFn = Callable[[int, os.stat_result, str], None]


# --------------------------------------------------------------------------------------------------
# chmod that never follows a symlink


_AT_SYMLINK_NOFOLLOW = 0x100
_SYS_FCHMODAT2 = 452  # the same number on every Linux architecture (added in Linux 6.6)
_fchmodat2: Callable[..., int] | None = None
_fchmodat2_probed = False
_probe_lock = threading.Lock()


def _probe_fchmodat2() -> Callable[..., int] | None:
    """Return libc's ``syscall`` when the kernel has ``fchmodat2`` (probed once per process).

    No ``argtypes`` on purpose: they triple the per-call cost, and libffi widens the int arguments
    the way the variadic ``syscall(long, ...)`` reads them.
    """
    global _fchmodat2, _fchmodat2_probed
    with _probe_lock:
        if _fchmodat2_probed:
            return _fchmodat2

        def works(fn: Syscall, fd: int) -> bool:
            # An unknown flag: EINVAL proves the syscall exists, ENOSYS that it does not.
            fn(_SYS_FCHMODAT2, fd, b".", 0, 0x40000000)
            return ctypes.get_errno() == errno.EINVAL

        _fchmodat2 = syscall_if(works)
        _fchmodat2_probed = True
        return _fchmodat2


def chmod_nofollow(dir_fd: int, name: str, mode: int) -> None:
    """chmod ``name`` relative to ``dir_fd``; a symlink there raises ``OSError(EOPNOTSUPP)``.

    Why: plain ``fchmodat`` follows symlinks, so a container swapping a file for a link to
    ``/etc/shadow`` between our stat and our chmod would get the host file's mode changed.
    """
    fn = _fchmodat2 if _fchmodat2_probed else _probe_fchmodat2()
    if fn is not None:
        if fn(_SYS_FCHMODAT2, dir_fd, name.encode("utf-8", "surrogateescape"), mode, _AT_SYMLINK_NOFOLLOW):
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
    """One open directory of the walk: its fd, its stat and the entries still to visit."""

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


class _WalkAbort(Exception):
    """An lstat/readdir failure: the kubelet aborts the whole walk with it."""


class _Walker:
    """Post-order, symlink-safe tree walk with progress reports and an adaptive process split."""

    def __init__(
        self,
        root: Path,
        on_leaf: LeafFn,
        on_dir: DirFn,
        progress: ProgressFn | None = None,
        *,
        first_progress_after: float = FIRST_PROGRESS_AFTER,
        progress_every: float = PROGRESS_EVERY,
        workers: int | None = 1,
        parallel_after: float = PARALLEL_AFTER,
    ) -> None:
        self.root_s = os.fspath(root)
        self.on_leaf = on_leaf
        self.on_dir = on_dir
        self.progress = progress
        self.count = 0
        self.started = time.monotonic()
        self.next_report = self.started + first_progress_after
        self.report_every = progress_every
        self.next_check = _CHECK_CLOCK_EVERY
        if workers is None:
            workers = min(os.cpu_count() or 1, 8)
        self.workers = workers
        self.split_at = self.started + parallel_after
        self.child_report: Callable[[int], None] | None = None

    # -- bookkeeping ----------------------------------------------------------------------------

    def _tick(self) -> None:
        self.count += 1
        if self.count >= self.next_check:
            self.next_check = self.count + _CHECK_CLOCK_EVERY
            self._clock()

    def _clock(self) -> None:
        now = time.monotonic()
        if self.child_report is not None:
            self.child_report(self.count)
        elif self.progress is not None and now >= self.next_report:
            self.next_report = now + self.report_every
            self.progress(self.count)

    def _error(self, dir_path: str, name: str, op: str, e: OSError) -> _WalkAbort:
        where = f"{dir_path}/{name}" if name else dir_path
        return _WalkAbort(f"cannot walk volume {self.root_s}: {op} {where}: {e.strerror}")

    # -- entry points ---------------------------------------------------------------------------

    def run(self) -> int:
        """Walk the whole tree; returns the number of paths processed."""
        root_s = self.root_s
        try:
            try:
                rst = os.lstat(root_s)
            except OSError as e:
                raise self._error(root_s, "", "lstat", e) from e
            if not stat.S_ISDIR(rst.st_mode):
                parent = os.path.dirname(root_s) or "."
                pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    self.on_leaf(pfd, os.path.basename(root_s), rst, parent)
                finally:
                    os.close(pfd)
                self._tick()
                return self.count
            try:
                rfd = os.open(root_s, _DIR_FLAGS)
            except OSError as e:
                raise self._error(root_s, "", "open", e) from e
            self._walk_fd(rfd, root_s, allow_split=True)
        except _WalkAbort as e:
            raise RuntimeFailure(str(e)) from None
        return self.count

    def _leaf(self, fd: int, name: str, dir_path: str) -> None:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as e:
            raise self._error(dir_path, name, "lstat", e) from e
        self.on_leaf(fd, name, st, dir_path)
        self._tick()

    def _subdir(self, fd: int, name: str, dir_path: str) -> int | None:
        """Open a child directory without following links; None if it is no longer a directory."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                # Swapped for a symlink or a file since readdir: visit it as a leaf, never follow it.
                self._leaf(fd, name, dir_path)
                return None
            raise self._error(dir_path, name, "open", e) from e

    def _walk_fd(self, fd: int, path: str, *, allow_split: bool) -> None:
        """Walk the subtree of the open directory ``fd`` (closed on return), post-order."""
        stack: list[_Frame] = []
        try:
            try:
                stack.append(_Frame(fd, os.fstat(fd), path))
            except OSError as e:
                os.close(fd)
                raise self._error(path, "", "readdir", e) from e
            while stack:
                top = stack[-1]
                tfd = top.fd
                assert tfd is not None
                descended = False
                for name, is_dir in top.entries:
                    if is_dir:
                        cfd = self._subdir(tfd, name, top.path)
                        if cfd is None:
                            continue
                        cpath = top.path + "/" + name
                        try:
                            frame = _Frame(cfd, os.fstat(cfd), cpath)
                        except OSError as e:
                            os.close(cfd)
                            raise self._error(cpath, "", "readdir", e) from e
                        stack.append(frame)
                        if len(stack) > _MAX_OPEN_DEPTH:
                            old = stack[-_MAX_OPEN_DEPTH - 1]
                            if old.fd is not None:
                                os.close(old.fd)
                                old.fd = None
                        descended = True
                        break
                    self._leaf(tfd, name, top.path)
                if descended:
                    continue
                stack.pop()
                try:
                    self.on_dir(tfd, top.st, top.path)
                    self._tick()
                    if stack:
                        parent = stack[-1]
                        if parent.fd is None:
                            parent.fd = self._reopen_parent(tfd, parent)
                        if allow_split and self.workers > 1 and time.monotonic() >= self.split_at:
                            self._maybe_split(parent)
                finally:
                    os.close(tfd)
                    top.fd = None
        finally:
            for frame in stack:
                if frame.fd is not None:
                    os.close(frame.fd)

    def _reopen_parent(self, child_fd: int, parent: _Frame) -> int:
        """Reopen a closed ancestor through ``..`` and make sure it is still the same directory."""
        try:
            pfd = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
            st = os.fstat(pfd)
        except OSError as e:
            raise self._error(parent.path, "", "reopen", e) from e
        if (st.st_dev, st.st_ino) != parent.key:
            os.close(pfd)
            raise _WalkAbort(f"cannot walk volume {self.root_s}: {parent.path} was moved during the walk")
        return pfd

    # -- process split --------------------------------------------------------------------------

    def _maybe_split(self, frame: _Frame) -> None:
        """Hand the rest of ``frame``'s entries to worker processes if that is worth and safe."""
        if threading.active_count() > 1 or not hasattr(os, "fork"):
            self.split_at = float("inf")  # forking a threaded process is not safe: stay sequential
            return
        rest = list(frame.entries)
        frame.entries = iter(rest)
        if sum(1 for _, is_dir in rest if is_dir) < 2:
            return
        self.split_at = float("inf")  # one split per walk is enough to use every CPU
        frame.entries = iter(())
        assert frame.fd is not None
        self._run_parallel(frame.fd, frame.path, rest)

    def _run_parallel(self, fd: int, path: str, entries: list[tuple[str, bool]]) -> None:
        dirs = [name for name, is_dir in entries if is_dir]
        leaves = [name for name, is_dir in entries if not is_dir]
        job_r, job_w = os.pipe2(os.O_CLOEXEC)
        try:
            # Every job id must fit in the pipe before any worker exists (no deadlock possible),
            # and pipes can be as small as one page when the user's pipe quota is exhausted.
            capacity = fcntl.fcntl(job_w, fcntl.F_GETPIPE_SZ) // 4
        except OSError:
            capacity = 1024
        half = max(1, min(_MAX_JOBS, capacity) // 2)
        per_dir = max(1, -(-len(dirs) // half))
        per_leaf = max(_LEAF_CHUNK, -(-len(leaves) // half))
        jobs: list[tuple[bool, list[str]]] = [(True, dirs[i : i + per_dir]) for i in range(0, len(dirs), per_dir)]
        jobs += [(False, leaves[i : i + per_leaf]) for i in range(0, len(leaves), per_leaf)]
        nworkers = min(self.workers, len(jobs))
        try:
            os.write(job_w, b"".join(i.to_bytes(4, "little") for i in range(len(jobs))))
        finally:
            os.close(job_w)
        res_r, res_w = os.pipe2(os.O_CLOEXEC)
        pids: list[int] = []
        try:
            for _ in range(nworkers):
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child
                    os.close(res_r)
                    self._child_main(fd, path, jobs, job_r, res_w)
                pids.append(pid)
        finally:
            os.close(job_r)
            os.close(res_w)
        try:
            error = self._collect(res_r)
        finally:
            os.close(res_r)
            failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
        if error is None and failed:
            error = f"cannot walk volume {self.root_s}: a worker process failed"
        if error is not None:
            raise _WalkAbort(error)

    def _collect(self, res_r: int) -> str | None:
        """Read worker records: ``P<count>`` progress, ``W<text>`` warning, ``E<text>`` abort."""
        base = self.count
        counts: dict[int, int] = {}
        error: str | None = None
        buf = b""
        while True:
            timeout = max(0.0, self.next_report - time.monotonic()) if self.progress else None
            ready, _, _ = select.select([res_r], [], [], timeout)
            if ready:
                chunk = os.read(res_r, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    kind, body = line[:1], line[1:]
                    if kind == b"P":
                        wid, _, n = body.partition(b" ")
                        counts[int(wid)] = int(n)
                    elif kind == b"W":
                        log.warning("%s", body.decode("utf-8", "replace"))
                    elif kind == b"E" and error is None:
                        error = body.decode("utf-8", "replace")
            self.count = base + sum(counts.values())
            if self.progress is not None and time.monotonic() >= self.next_report:
                self.next_report = time.monotonic() + self.report_every
                self.progress(self.count)
        self.count = base + sum(counts.values())
        return error

    def _child_main(  # pragma: no cover - runs in the child
        self, fd: int, path: str, jobs: list[tuple[bool, list[str]]], job_r: int, res_w: int
    ) -> None:
        code = 0
        wid = os.getpid()

        def send(record: bytes) -> None:
            os.write(res_w, record[:3800].replace(b"\n", b" ") + b"\n")

        try:
            self.count = 0
            self.progress = None
            self.child_report = lambda n: send(b"P%d %d" % (wid, n))
            global _warn
            _warn = lambda msg: send(b"W" + msg.encode("utf-8", "replace"))  # noqa: E731
            while True:
                rec = os.read(job_r, 4)
                if len(rec) < 4:
                    break
                is_dirs, names = jobs[int.from_bytes(rec, "little")]
                for name in names:
                    if is_dirs:
                        cfd = self._subdir(fd, name, path)
                        if cfd is not None:
                            self._walk_fd(cfd, path + "/" + name, allow_split=False)
                    else:
                        self._leaf(fd, name, path)
            send(b"P%d %d" % (wid, self.count))
        except _WalkAbort as e:
            send(b"P%d %d" % (wid, self.count))
            send(b"E" + str(e).encode("utf-8", "replace"))
            code = 1
        except BaseException as e:
            try:
                send(b"E" + f"cannot walk volume {self.root_s}: {e!r}".encode("utf-8", "replace"))
            finally:
                code = 1
        finally:
            os._exit(code)


def _log_warning(msg: str) -> None:
    log.warning("%s", msg)


_warn: WarnFn = _log_warning
"""Where per-file chown/chmod failures go (replaced inside worker processes by a pipe writer)."""


def walk_tree(
    root: Path,
    on_leaf: LeafFn,
    on_dir: DirFn,
    progress: ProgressFn | None = None,
    *,
    workers: int | None = 1,
    parallel_after: float = PARALLEL_AFTER,
    first_progress_after: float = FIRST_PROGRESS_AFTER,
    progress_every: float = PROGRESS_EVERY,
) -> int:
    """Post-order walk of ``root`` without following symlinks; returns the number of paths visited.

    ``on_leaf(dir_fd, name, lstat, dir_path)`` gets every non-directory (symlinks included) relative
    to its parent's fd; ``on_dir(fd, fstat, path)`` gets every directory through its own
    ``O_NOFOLLOW`` fd after all its children, the root last. Paths are for messages only (they
    start with ``root``). An lstat/readdir error aborts the walk with :class:`RuntimeFailure`
    (as in the kubelet). ``workers`` > 1 (``None``: one per CPU) lets a long walk fork; callbacks
    must then only have side effects on the filesystem. ``progress(count)`` is called after
    ``first_progress_after`` seconds, then every ``progress_every`` seconds (a progress bar passes small values).
    """
    return _Walker(root, on_leaf, on_dir, progress, workers=workers, parallel_after=parallel_after,
                   first_progress_after=first_progress_after, progress_every=progress_every).run()


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
    workers: int | None = None,
    parallel_after: float = PARALLEL_AFTER,
    first_progress_after: float = FIRST_PROGRESS_AFTER,
    progress_every: float = PROGRESS_EVERY,
) -> int:
    """Give ``root`` and everything below it group ``fs_group`` and the fsGroup mode bits (§3.2).

    Returns the number of paths processed (0 when nothing had to be walked). Per-file chown/chmod
    errors are logged and skipped like the kubelet does; an error reading the tree aborts with
    :class:`RuntimeFailure`. ``progress(count)`` is called after 30 s and then every 60 s.
    ``workers=1`` keeps the walk in this process; ``parallel_after`` is when a long walk may fork.
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
    _probe_fchmodat2()

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        chowned = False
        if st.st_gid != gid:
            try:
                lchown(name, -1, gid, dir_fd=dir_fd, follow_symlinks=False)
                chowned = True
            except OSError as e:
                _warn(f"lchown {dir_path}/{name}: {e.strerror}")
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
                    _warn(f"chmod {dir_path}/{name}: {e.strerror}")

    def directory(fd: int, st: os.stat_result, path: str) -> None:
        if st.st_gid != gid:
            try:
                os.chown(fd, -1, gid)
            except OSError as e:
                _warn(f"lchown {path}: {e.strerror}")
        perm = st.st_mode & 0o7777
        new = perm | dir_mask
        if new != perm:
            try:
                os.chmod(fd, new)
            except OSError as e:
                _warn(f"chmod {path}: {e.strerror}")

    return _Walker(
        root,
        leaf,
        directory,
        progress,
        first_progress_after=first_progress_after,
        progress_every=progress_every,
        workers=workers,
        parallel_after=parallel_after,
    ).run()


# --------------------------------------------------------------------------------------------------
# fsUser (KEP-5936 / KEP-5280 style owner uid)


def change_owner_uid(
    root: Path,
    uid: int,
    *,
    files: bool = True,
    include_dirs: bool = False,
    include_links: bool = False,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    parallel_after: float = PARALLEL_AFTER,
) -> int:
    """``Lchown(path, uid, -1)`` below ``root``: regular files, and directories / symlinks if asked.

    The KEP-5936 AtomicWriter sets the owner of data files only; KEP-5280's fsUser also owns what the
    kubelet created around them — directories and the ``..data`` / user-visible symlinks. The links
    matter: in a sticky world-writable directory (a tmpfs volume root, 1777) ``fs.protected_symlinks``
    lets a process follow a link only when it owns the link or the link's owner owns the directory,
    so a root-owned link in a directory handed to fsUser could no longer be followed.
    Symlinks are never followed; group and mode bits are left alone (fsGroup's business; a chown
    does not clear a directory's setgid bit). Returns the number of paths visited. Feature gates
    are decided by the caller.
    """

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        mode = st.st_mode
        wanted = (files and stat.S_ISREG(mode)) or (include_links and stat.S_ISLNK(mode))
        if wanted and st.st_uid != uid:
            try:
                os.chown(name, uid, -1, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as e:
                _warn(f"chown {dir_path}/{name}: {e.strerror}")

    def directory(fd: int, st: os.stat_result, path: str) -> None:
        if include_dirs and st.st_uid != uid:
            try:
                os.chown(fd, uid, -1)
            except OSError as e:
                _warn(f"chown {path}: {e.strerror}")

    return _Walker(root, leaf, directory, progress, workers=workers, parallel_after=parallel_after).run()


def walk_order(root: Path) -> list[str]:
    """Paths (relative to ``root``, ``"."`` for the root) in the order the ownership walk visits them.

    Used by tests and ``explain`` to show the kubelet's post-order (children before their directory).
    """
    out: list[str] = []
    root_s = os.fspath(root)

    def rel(path: str) -> str:
        return "." if path == root_s else path[len(root_s) + 1 :]

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        if dir_path != root_s and not dir_path.startswith(root_s + "/"):
            out.append(".")  # the root itself is not a directory
        else:
            out.append(name if dir_path == root_s else f"{rel(dir_path)}/{name}")

    def directory(fd: int, st: os.stat_result, path: str) -> None:
        out.append(rel(path))

    _Walker(root, leaf, directory, workers=1).run()
    return out
