"""``--fix --apply``: perform a :class:`~podsec.perms.fixes.TreeFix` on the real tree, resumably.

The walk is the fsGroup walk's (:func:`podsec.volumes.ownership.walk_tree`, forking one worker per CPU
once it has run 50 ms): every step is relative to a directory fd opened with ``O_NOFOLLOW``, started
from an fd of ``--path`` itself, so a symlink (or a directory swapped for one mid-walk) is never
followed and nothing outside the path is touched. Files are changed with ``lchown``,
``fchmodat2(AT_SYMLINK_NOFOLLOW)`` and ``setxattrat(AT_SYMLINK_NOFOLLOW)``; symlinks, sockets and
devices are left alone, and so is anything on another filesystem mounted under the path (a bind mount can
bring any host directory there). Syscalls are skipped where the inode is already right, so a re-run costs
stats. Files with other hard links change under all their names, as with ``chgrp -R``; the report counts them.

Resumable: before the first change a journal (``<root>/perms/<dev>-<ino>.journal``) records the plan;
every finished directory (post-order: its whole subtree is done) is appended to it. A re-run after an
interruption — Ctrl-C, ``kill -9``, a reboot — finds the journal, applies *the same plan* (not one
recomputed from a half-changed tree) and skips the finished subtrees; the journal is removed at the end.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podsec.errors import InputError, RuntimeFailure
from podsec.kernel import acl as acls
from podsec.kernel.access import Inode
from podsec.perms.fixes import TreeFix, killed_by_chown
from podsec.perms.scan import mounts_under
from podsec.volumes import ownership
from podsec.volumes.ownership import chmod_nofollow, walk_tree

JOURNAL_VERSION = 1
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(slots=True)
class Journal:
    path: Path
    root: str
    fix: TreeFix
    started: str
    done: set[str] = field(default_factory=set)
    """Relative paths of finished directories ("." for the root)."""


@dataclass(slots=True)
class Applied:
    visited: int
    seconds: float
    resumed_from: str | None
    skipped_dirs: int
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"visited": self.visited, "seconds": round(self.seconds, 3), "resumedFrom": self.resumed_from,
                "skippedDirectories": self.skipped_dirs, "warnings": self.warnings}


def journal_path(journal_dir: Path, st: os.stat_result) -> Path:
    """One journal per directory (device and inode: a renamed --path still finds its journal)."""
    return journal_dir / f"{st.st_dev:x}-{st.st_ino}.journal"


def pending(journal_dir: Path, root: str) -> Journal | None:
    """The interrupted apply on ``root``, if there is one."""
    try:
        st = os.stat(root)
    except OSError:
        return None
    path = journal_path(journal_dir, st)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    lines = data.split(b"\n")
    try:
        header = json.loads(lines[0])
        if header.get("version") != JOURNAL_VERSION:
            raise ValueError("version")
        fix = TreeFix.from_json(header["fix"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{path}: unreadable perms journal; remove it to start over") from None
    done: set[str] = set()
    # The last line may be cut short by a kill: only lines ending in a newline count.
    for line in lines[1:-1]:
        try:
            done.add(json.loads(line))
        except ValueError:
            continue
    return Journal(path, header.get("root", root), fix, header.get("started", ""), done)


def _start_journal(journal_dir: Path, root: str, st: os.stat_result, fix: TreeFix) -> Journal:
    journal_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = journal_path(journal_dir, st)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    header = {"version": JOURNAL_VERSION, "root": root, "dev": st.st_dev, "ino": st.st_ino, "started": started,
              "fix": fix.to_json()}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(header) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return Journal(path, root, fix, started)


class _Capture(logging.Handler):
    """Collects the walk's per-file warnings (workers forward theirs to the parent's logger)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def apply_fix(
    root: str,
    fix: TreeFix,
    journal_dir: Path,
    *,
    read_acls: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    resume: Journal | None = None,
) -> Applied:
    """Change the tree under ``root`` (a real path) as ``fix`` says; see the module docstring.

    ``read_acls`` False skips reading files' access ACLs: pass the scan's ``has_acls`` (a tree without any
    ACL has none to merge; only an ACL set by someone else during the walk would be missed, and the
    re-scan after the apply shows it). ``resume`` continues that journal.
    """
    started = time.perf_counter()
    try:
        rfd = os.open(root, _DIR_FLAGS)
    except OSError as e:
        raise InputError(f"--path {root}: {e.strerror}") from None
    try:
        st = os.fstat(rfd)
        journal = resume if resume is not None else _start_journal(journal_dir, root, st, fix)
        fix = journal.fix
        prefix = f"/proc/self/fd/{rfd}/."
        done_paths = {prefix if rel == "." else f"{prefix}/{rel}" for rel in journal.done}
        jfd = os.open(journal.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        capture = _Capture()
        logger = logging.getLogger(ownership.__name__)
        logger.addHandler(capture)
        try:
            points = [f"{prefix}/{m}" for m in mounts_under(root)]
            leaf, directory = _callbacks(fix, prefix, done_paths, jfd, read_acls, st.st_dev, points)
            try:
                visited = walk_tree(prefix, leaf, directory, progress, workers=workers, first_progress_after=0.1,
                                    progress_every=0.1)
            except RuntimeFailure as e:
                raise RuntimeFailure(e.message.replace(prefix, root) + "; run again to resume") from None
        finally:
            logger.removeHandler(capture)
            os.close(jfd)
        journal.path.unlink(missing_ok=True)
    finally:
        os.close(rfd)
    warnings = [w.replace(prefix, root) for w in capture.messages]
    return Applied(visited, time.perf_counter() - started, journal.started if resume is not None else None,
                   len(journal.done), warnings)


def _warn(msg: str) -> None:
    # Looked up at call time: inside a forked worker the walker replaces it with a pipe to the parent.
    ownership._warn(msg)


def _callbacks(fix: TreeFix, prefix: str, done: set[str], jfd: int, read_acls: bool, dev: int,
               points: list[str]) -> tuple[Any, Any]:
    """The walk's callbacks. Nothing on another filesystem or below a mount point (a bind mount can bring
    any host directory under the path) is ever changed."""

    def mounted(path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in points)

    cut = len(prefix) + 1
    file_cache: dict[tuple, tuple[int, int, bytes | None]] = {}
    get_raw_at = acls.get_raw_at
    set_raw_at = acls.set_raw_at
    isreg = stat.S_ISREG
    chown = os.chown
    transform = fix.file

    def plan_file(st: os.stat_result, raw: bytes | None) -> tuple[int, int, bytes | None]:
        """(new gid or -1, mode to chmod to or -1, ACL xattr to set or None): a function of the key only."""
        before = Inode(st.st_uid, st.st_gid, st.st_mode, None if raw is None else acls.Acl.from_xattr(raw))
        after = transform(before)
        new_raw = after.acl.to_xattr() if after.acl is not None else None
        new_acl = new_raw if new_raw != raw else None
        perm = stat.S_IMODE(after.mode)
        old = stat.S_IMODE(st.st_mode)
        if after.gid != st.st_gid:
            old &= ~killed_by_chown(st.st_mode)  # what the kernel leaves (and the fix wants: see TreeFix.file)
        # Setting an access ACL sets the rwx bits too (posix_acl_update_mode): chmod only for other changes.
        chmod_to = perm if perm != old and (new_acl is None or perm & ~0o777 != old & ~0o777) else -1
        return (after.gid if after.gid != st.st_gid else -1), chmod_to, new_acl

    check_done = bool(done)

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        if not isreg(st.st_mode) or st.st_dev != dev or (check_done and dir_path in done):
            return
        if points and (mounted(dir_path) or mounted(f"{dir_path}/{name}")):  # a bind-mounted file too
            return
        raw = get_raw_at(dir_fd, name) if read_acls else None
        key = (st.st_gid, st.st_mode, raw)
        want = file_cache.get(key)
        if want is None:
            want = file_cache[key] = plan_file(st, raw)
        gid, chmod_to, new_acl = want
        if gid >= 0:
            try:
                chown(name, -1, gid, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as e:
                _warn(f"chgrp {dir_path}/{name}: {e.strerror}")
                return
        if chmod_to >= 0:
            try:
                chmod_nofollow(dir_fd, name, chmod_to)
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:  # became a symlink meanwhile: leave it alone
                    _warn(f"chmod {dir_path}/{name}: {e.strerror}")
                return
        if new_acl is not None:
            try:
                set_raw_at(dir_fd, name, new_acl)
            except OSError as e:
                _warn(f"setfacl {dir_path}/{name}: {e.strerror}")

    def directory(fd: int, st: os.stat_result, path: str) -> None:
        if path in done or st.st_dev != dev or (points and mounted(path)):
            return
        try:
            access = acls.read_fd(fd)
            default = acls.read_fd(fd, acls.DEFAULT)
        except (OSError, ValueError) as e:
            _warn(f"getfacl {path}: {e}")
            return
        before = Inode(st.st_uid, st.st_gid, st.st_mode, access, default)
        after = fix.directory(before)
        try:
            if after.gid != st.st_gid:
                os.chown(fd, -1, after.gid)
            if stat.S_IMODE(after.mode) != stat.S_IMODE(st.st_mode):
                os.chmod(fd, stat.S_IMODE(after.mode))
            if after.acl is not None and after.acl != access:
                acls.write_fd(fd, after.acl)
            if after.default_acl is not None and after.default_acl != default:
                acls.write_fd(fd, after.default_acl, acls.DEFAULT)
        except OSError as e:
            _warn(f"{path}: {e.strerror}")
            return
        rel = path[cut:] if len(path) > len(prefix) else "."
        os.write(jfd, (json.dumps(rel) + "\n").encode())

    return leaf, directory
