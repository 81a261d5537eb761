"""What a container wrote: the difference between its overlay upper directory and the image, and between
two snapshots of a volume.

overlayfs keeps everything a container changed in the upper directory: new and modified entries as
themselves (a modified image file is copied up whole), a deleted image entry as a *whiteout* (a character
device 0:0, or on newer kernels a zero-size file with ``trusted.overlay.whiteout``), and a directory whose
image content was replaced (``rm -rf d; mkdir d``) as an *opaque* directory (``trusted.overlay.opaque=y``).
An image directory shows up in the upper dir as soon as anything below it is written; its mtime then
differs from the image's, which also reveals files created and removed again (a pid file removed at exit).

Every walk opens directories relative to their parent with ``O_NOFOLLOW``: a container can turn one of
its directories into a symlink to ``/etc`` at any moment, and podsec (root) must never follow it onto the
host. The image tree is podsec's own unpacked copy, read component by component for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from podsec.trace.model import Change, EntryType

WHITEOUT_XATTRS = ("trusted.overlay.whiteout", "user.overlay.whiteout")
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
REDIRECT_XATTRS = ("trusted.overlay.redirect", "user.overlay.redirect")
MAX_DEPTH = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def entry_type(mode: int) -> EntryType:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def join(parent: str, name: str) -> str:
    """Container path of ``name`` in ``parent`` (``/`` + ``etc`` → ``/etc``)."""
    return f"{parent.rstrip('/')}/{name}"


def ancestors(path: str) -> Iterator[str]:
    """``/a/b/c`` → ``/a``, ``/a/b`` (proper ancestors, shallowest first, without ``/``)."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts)):
        yield "/" + "/".join(parts[:i])


# -- the image ------------------------------------------------------------------------------------


class ImageTree:
    """The image's unpacked root filesystem, looked at as the container sees it (symlinks never followed:
    an absolute symlink in an image points into the container, and on the host it would point at the host)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._stat: dict[str, os.stat_result | None] = {"/": os.lstat(self.root)}
        self._entries: dict[str, list[str]] = {}
        self._sizes: dict[str, tuple[int, int]] = {}

    def lstat(self, path: str) -> os.stat_result | None:
        """The image entry at container path ``path``, None when there is none (or a parent is not a dir)."""
        path = "/" + path.strip("/") if path.strip("/") else "/"
        if path in self._stat:
            return self._stat[path]
        parent = path.rsplit("/", 1)[0] or "/"
        pst = self.lstat(parent)
        result: os.stat_result | None = None
        if pst is not None and stat.S_ISDIR(pst.st_mode):
            with contextlib.suppress(OSError):
                result = os.lstat(self.root / path.lstrip("/"))
        self._stat[path] = result
        return result

    def kind(self, path: str) -> EntryType | None:
        st = self.lstat(path)
        return None if st is None else entry_type(st.st_mode)

    def entries(self, path: str) -> list[str]:
        """Names in an image directory (sorted); [] for anything else."""
        path = "/" + path.strip("/") if path.strip("/") else "/"
        if path not in self._entries:
            names: list[str] = []
            if self.kind(path) == "dir":
                with contextlib.suppress(OSError):
                    names = sorted(os.listdir(self.root / path.lstrip("/")))
            self._entries[path] = names
        return self._entries[path]

    def tree_size(self, path: str) -> tuple[int, int]:
        """(bytes, non-directory entries) of the image below ``path`` (or of the entry itself)."""
        if path in self._sizes:
            return self._sizes[path]
        st = self.lstat(path)
        total = (0, 0)
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                total = (st.st_size, 1)
            else:
                size = count = 0
                for name in self.entries(path):
                    s, c = self.tree_size(join(path, name))
                    size, count = size + s, count + c
                total = (size, count)
        self._sizes[path] = total
        return total


# -- the upper directory --------------------------------------------------------------------------


def _xattr(target: int | str, names: tuple[str, ...]) -> bytes | None:
    """The first of ``names`` set on ``target`` (an open fd, or a path whose last component is not followed)."""
    for name in names:
        try:
            if isinstance(target, int):
                return os.getxattr(target, name)
            return os.getxattr(target, name, follow_symlinks=False)
        except OSError:
            continue
    return None


def _is_whiteout(st: os.stat_result, dir_fd: int, name: str) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return _xattr(f"/proc/self/fd/{dir_fd}/{name}", WHITEOUT_XATTRS) is not None
    return False


@dataclass(slots=True)
class RuntimePaths:
    """What the runtime itself creates in a container's root filesystem (mount points for /proc, /dev,
    volumes, /etc/hosts, /dev/termination-log…, the working directory): not the app's writes."""

    made: frozenset[str] = frozenset()
    """Mount destinations and the working directory."""
    parents: frozenset[str] = frozenset()
    """Their ancestors (created, or touched, to hold them)."""

    @classmethod
    def of(cls, destinations: Collection[str], cwd: str | None = None) -> RuntimePaths:
        made = {"/" + d.strip("/") for d in destinations if d.strip("/")}
        if cwd and cwd.strip("/"):
            made.add("/" + cwd.strip("/"))
        parents = {a for m in made for a in ancestors(m)}
        return cls(frozenset(made), frozenset(parents))

    def covers(self, path: str) -> bool:
        return path in self.made or path in self.parents


@dataclass(slots=True)
class UpperDiff:
    """The changes in one upper directory, and what could not be read."""

    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def diff_upper(upper: Path, image: ImageTree, runtime: RuntimePaths | None = None) -> UpperDiff:
    """Every path the container created, changed or deleted, compared with ``image``, sorted by path.

    A created directory is listed as well as what is in it; a deleted image directory is one entry (its
    size: the image bytes below it); an image directory is "changed" when its mode or owner changed, when
    it was replaced (opaque), or when entries were added and removed again (its mtime differs and nothing
    below it explains the difference). What the runtime made (``runtime``) is left out.
    """
    runtime = runtime or RuntimePaths()
    out = UpperDiff()
    try:
        fd = os.open(upper, _DIR_FLAGS)
    except OSError as e:
        out.errors.append(f"{upper}: {e.strerror}")
        return out
    try:
        _walk_upper(fd, "/", True, image, runtime, out, 0)
    finally:
        os.close(fd)
    out.changes.sort(key=lambda c: c.path)
    return out


def _walk_upper(fd: int, rel: str, merged: bool, image: ImageTree, runtime: RuntimePaths, out: UpperDiff,
                depth: int) -> int:
    """Report the entries of the upper directory ``fd`` (container path ``rel``); returns how many changes
    were reported below it. ``merged``: the image directory at ``rel`` is visible through this one."""
    reported = 0
    names: set[str] = set()
    try:
        entries = sorted(os.scandir(fd), key=lambda e: e.name)
    except OSError as e:
        out.errors.append(f"{rel}: {e.strerror}")
        return 0
    for entry in entries:
        name = entry.name
        path = join(rel, name)
        names.add(name)
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        lower = image.lstat(path)
        if _is_whiteout(st, fd, name):
            if lower is not None:
                size, _ = image.tree_size(path)
                out.changes.append(Change(path, "deleted", entry_type(lower.st_mode), size))
                reported += 1
            continue
        if not stat.S_ISDIR(st.st_mode):
            if lower is None and path in runtime.made and st.st_size == 0:
                continue  # a file mount point (/etc/hosts, /etc/resolv.conf…)
            out.changes.append(Change(path, "changed" if lower is not None else "created",
                                      entry_type(st.st_mode), st.st_size))
            reported += 1
            continue
        reported += _upper_dir(fd, name, path, st, lower, merged, image, runtime, out, depth)
    if not merged and image.kind(rel) == "dir":
        for name in image.entries(rel):  # image entries hidden by an opaque (replaced) directory
            if name not in names:
                path = join(rel, name)
                size, _ = image.tree_size(path)
                out.changes.append(Change(path, "deleted", image.kind(path) or "other", size))
                reported += 1
    return reported


def _upper_dir(parent_fd: int, name: str, path: str, st: os.stat_result, lower: os.stat_result | None,
               merged: bool, image: ImageTree, runtime: RuntimePaths, out: UpperDiff, depth: int) -> int:
    if depth >= MAX_DEPTH:
        out.errors.append(f"{path}: deeper than {MAX_DEPTH} levels, not read")
        return 0
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:  # replaced by a symlink meanwhile, or unreadable
        out.errors.append(f"{path}: {e.strerror}")
        return 0
    try:
        opaque = _xattr(fd, OPAQUE_XATTRS) == b"y"
        redirect = _xattr(fd, REDIRECT_XATTRS)
        lower_is_dir = lower is not None and stat.S_ISDIR(lower.st_mode)
        child_merged = merged and lower_is_dir and not opaque
        if redirect is not None and lower is None:
            origin = redirect.decode(errors="replace")
            origin = origin if origin.startswith("/") else join(path.rsplit("/", 1)[0] or "/", origin)
            size, _ = image.tree_size(origin)  # a renamed image directory (redirect_dir=on)
            out.changes.append(Change(path, "created", "dir", size))
            return 1 + _walk_upper(fd, path, False, image, runtime, out, depth + 1)
        below = _walk_upper(fd, path, child_merged, image, runtime, out, depth + 1)
        if lower is None:
            if runtime.covers(path):
                return below
            out.changes.append(Change(path, "created", "dir", 0))
            return below + 1
        if not child_merged:  # replaced: a file became a directory, or rm -rf + mkdir
            out.changes.append(Change(path, "changed", "dir", 0))
            return below + 1
        meta = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (
            stat.S_IMODE(lower.st_mode), lower.st_uid, lower.st_gid)
        entries_touched = st.st_mtime_ns != lower.st_mtime_ns and not below and not runtime.covers(path)
        if meta or entries_touched:
            out.changes.append(Change(path, "changed", "dir", 0))
            return below + 1
        return below
    finally:
        os.close(fd)


# -- volumes --------------------------------------------------------------------------------------

EntryState = tuple[EntryType, int, int, int, int]
"""(type, size, inode, ctime_ns, mode) of one entry."""


@dataclass(slots=True)
class Snapshot:
    """The entries below a volume's host directory at one moment (relative paths, ``""`` = the root)."""

    entries: dict[str, EntryState] = field(default_factory=dict)
    complete: bool = True
    """False when the walk stopped at ``limit`` entries."""


def snapshot(root: Path, limit: int = 200_000) -> Snapshot:
    """Record the tree at ``root`` without following symlinks or crossing into other filesystems."""
    snap = Snapshot()
    try:
        st = os.lstat(root)
    except OSError:
        return snap
    snap.entries[""] = _state(st)
    if not stat.S_ISDIR(st.st_mode):
        return snap
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return snap
    try:
        _snap_dir(fd, "", st.st_dev, snap, limit, 0)
    finally:
        os.close(fd)
    return snap


def _state(st: os.stat_result) -> EntryState:
    return (entry_type(st.st_mode), st.st_size, st.st_ino, st.st_ctime_ns, st.st_mode)


def _snap_dir(fd: int, rel: str, dev: int, snap: Snapshot, limit: int, depth: int) -> None:
    try:
        entries = list(os.scandir(fd))
    except OSError:
        return
    for entry in entries:
        if len(snap.entries) >= limit:
            snap.complete = False
            return
        path = f"{rel}/{entry.name}" if rel else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        snap.entries[path] = _state(st)
        if stat.S_ISDIR(st.st_mode) and st.st_dev == dev and depth < MAX_DEPTH:
            try:
                sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                _snap_dir(sub, path, dev, snap, limit, depth + 1)
            finally:
                os.close(sub)


def diff_snapshots(before: Snapshot, after: Snapshot, to_path: Callable[[str], str],
                   skip: Collection[str] = ()) -> list[Change]:
    """What changed between two snapshots of one volume, as container paths (``to_path(rel)``).

    A deleted directory is one entry (its size: the bytes that were below it); a directory counts as
    changed only when its mode changed (new entries in it are listed themselves). ``skip``: relative
    paths the runtime made (subPath directories). Deletions are only known when both walks were complete.
    """
    out: list[Change] = []
    for rel, (typ, size, ino, ctime, mode) in after.entries.items():
        if rel in skip:
            continue
        old = before.entries.get(rel)
        if old is None or old[0] != typ or old[2] != ino:
            out.append(Change(to_path(rel), "created" if old is None else "changed", typ, 0 if typ == "dir" else size))
        elif typ == "dir":
            if old[4] != mode:
                out.append(Change(to_path(rel), "changed", "dir", 0))
        elif old[3] != ctime:
            out.append(Change(to_path(rel), "changed", typ, size))
    if before.complete and after.complete:
        gone = sorted(before.entries.keys() - after.entries.keys() - set(skip))
        gone_set = set(gone)
        tops: dict[str, int] = {}
        for rel in gone:
            parts = rel.split("/")
            top = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in gone_set), rel)
            typ, size = before.entries[rel][0], before.entries[rel][1]
            tops[top] = tops.get(top, 0) + (0 if typ == "dir" else size)
        for rel, size in tops.items():
            out.append(Change(to_path(rel), "deleted", before.entries[rel][0], size))
    out.sort(key=lambda c: c.path)
    return out
