"""Read the real tree under ``--path``: every directory's owner, mode and ACLs, files grouped by attributes.

The walk is the fsGroup walk's (:func:`podsec.volumes.ownership.walk_tree`): directory fds opened with
``O_NOFOLLOW``, symlinks reported as leaves and never followed, started from an fd of the path so a
rename of the path during the scan cannot send it elsewhere. Files are not kept one by one: the kernel's
decision depends only on (owner, group, mode, ACL), so each directory keeps one group per distinct
attribute set with a count and an example name. That keeps 200,000-file trees small in memory and lets
every decision be computed once per distinct attribute set.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from podsec.errors import InputError, RuntimeFailure
from podsec.kernel import acl as acls
from podsec.kernel.access import Inode
from podsec.volumes.ownership import walk_tree

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(slots=True)
class FileGroup:
    """Regular files of one directory sharing owner, group, mode and ACL."""

    inode: Inode
    count: int
    example: str
    """The name of one of them."""


@dataclass(slots=True)
class DirNode:
    rel: str
    """Path relative to the scanned root ("" for the root itself)."""
    inode: Inode
    files: list[FileGroup] = field(default_factory=list)
    nfiles: int = 0
    nsymlinks: int = 0
    nother: int = 0
    children: list[DirNode] = field(default_factory=list)
    foreign: bool = False
    """On another filesystem than the root (a mount point or below one): judged, never changed."""
    tdirs: int = 1
    """Directories in the subtree, this one included."""
    tfiles: int = 0
    """Regular files in the subtree."""

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1] if self.rel else "."


@dataclass(slots=True)
class Scan:
    root: str
    tree: DirNode
    ancestors: list[tuple[str, Inode]]
    """``/`` … the root's parent, with their attributes (host users must be able to search them)."""
    read_only_fs: bool
    dirs: int = 0
    files: int = 0
    symlinks: int = 0
    others: int = 0
    seconds: float = 0.0
    has_acls: bool = False
    """Some inode under the root has an access or default ACL."""
    hardlinked: int = 0
    """Regular files with more than one name: changing them changes their other names too."""
    mounts: list[str] = field(default_factory=list)
    """Directories (rel) where another filesystem is mounted: ``--apply`` leaves them alone."""

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def preorder(self) -> Iterator[DirNode]:
        stack = [self.tree]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def find(self, rel: str) -> DirNode | None:
        node = self.tree
        if not rel:
            return node
        for part in rel.split("/"):
            for child in node.children:
                if child.name == part:
                    node = child
                    break
            else:
                return None
        return node

    def outside(self, path: str) -> Inode | None:
        """Attributes of a directory above the root (from :attr:`ancestors`)."""
        for p, inode in self.ancestors:
            if p == path:
                return inode
        return None

    @property
    def paths(self) -> int:
        return self.dirs + self.files + self.symlinks + self.others


def _inode(st: os.stat_result, acl: acls.Acl | None, default: acls.Acl | None = None) -> Inode:
    return Inode(st.st_uid, st.st_gid, st.st_mode, acl, default)


def _parse(raw: bytes | None, cache: dict[bytes, acls.Acl]) -> acls.Acl | None:
    if raw is None:
        return None
    acl = cache.get(raw)
    if acl is None:
        acl = cache[raw] = acls.Acl.from_xattr(raw)
    return acl


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(root: str) -> list[str]:
    """Mount points strictly below ``root`` (relative paths), from /proc/self/mountinfo.

    Why not st_dev: a bind mount of a directory of the same filesystem keeps its st_dev, and it can bring
    any host directory (``/etc``) under the path.
    """
    prefix = root.rstrip("/") + "/"
    out = set()
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 4:
                    point = _unescape(fields[4])
                    if point.startswith(prefix):
                        out.add(point[len(prefix):])
    except OSError:
        pass
    return sorted(out)


def under(rel: str, points: list[str]) -> bool:
    return any(rel == m or rel.startswith(m + "/") for m in points)


def ancestors_of(root: str) -> list[tuple[str, Inode]]:
    """``/`` down to the parent of ``root`` (a real path), each with owner, mode and ACL."""
    out: list[tuple[str, Inode]] = []
    parts = root.strip("/").split("/")[:-1] if root != "/" else []
    path = "/"
    for i in range(len(parts) + 1):
        if i:
            path = "/" + "/".join(parts[:i])
        try:
            st = os.lstat(path)
        except OSError:
            break
        out.append((path, _inode(st, acls.read_path(path), acls.read_path(path, acls.DEFAULT))))
    return out


class _Collector:
    """What one process gathers: raw attributes per directory and per distinct file attribute set.

    Kept raw (ints and xattr bytes) so a worker process can send it back with pickle.
    """

    def __init__(self, prefix: str, base: str) -> None:
        self.prefix = prefix
        self.cut = len(prefix) + 1
        self.base = base
        self.dirs: dict[str, tuple[int, int, int, bytes | None, bytes | None, int]] = {}
        self.files: dict[str, dict[tuple, list[Any]]] = {}
        """Walker directory path → {(uid, gid, mode, acl) | ("L",) | ("O",): [count, example name]}."""
        self.hardlinked = 0

    def rel(self, path: str) -> str:
        sub = path[self.cut:] if len(path) > len(self.prefix) else ""
        if not self.base:
            return sub
        return f"{self.base}/{sub}" if sub else self.base

    def leaf(self, dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            key: tuple = (st.st_uid, st.st_gid, mode, acls.get_raw_at(dir_fd, name))
            if st.st_nlink > 1:
                self.hardlinked += 1
        else:
            key = ("L",) if stat.S_ISLNK(mode) else ("O",)
        g = self.files.get(dir_path)
        if g is None:
            g = self.files[dir_path] = {}
        fg = g.get(key)
        if fg is None:
            g[key] = [1, name]
        else:
            fg[0] += 1

    def directory(self, fd: int, st: os.stat_result, path: str) -> None:
        self.dirs[self.rel(path)] = (st.st_uid, st.st_gid, st.st_mode, acls.get_raw_fd(fd),
                                     acls.get_raw_fd(fd, acls._DEFAULT_B), st.st_dev)

    def walk(self, progress: Callable[[int], None] | None = None) -> None:
        walk_tree(self.prefix, self.leaf, self.directory, progress, workers=1, first_progress_after=0.2,
                  progress_every=0.1)

    def result(self) -> tuple[dict, dict, int]:
        """(dirs by rel, files by rel, hard-linked files): walker paths translated, ready to pickle."""
        return self.dirs, {self.rel(k): v for k, v in self.files.items()}, self.hardlinked


PARALLEL_MIN_ENTRIES = 4000
"""Top-level entries (after expanding the first levels) from which a scan is split across processes."""


def _frontier(rfd: int) -> tuple[list[tuple[int, str, str]], int]:
    """The root's subdirectories, to hand to workers, and the number of entries in the root.

    Only the root's level is split: a tree whose root has a single subdirectory is scanned in one process.
    """
    with os.scandir(rfd) as it:
        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    subdirs = [(rfd, name, name) for name, is_dir in entries if is_dir]
    return subdirs, len(entries)


def _scan_parallel(rfd: int, root: str, workers: int) -> tuple[list[tuple[dict, dict, int]], int] | None:
    """Walk the root's subdirectories in ``workers`` forked processes; None when not worth it.

    Each worker walks whole subtrees with the fsGroup walker (workers=1) from an fd opened ``O_NOFOLLOW``
    relative to the root's fd, and sends its raw collection back pickled through a pipe.
    """
    import pickle
    import select
    import threading

    if workers < 2 or threading.active_count() > 1:
        return None
    subdirs, seen = _frontier(rfd)
    if len(subdirs) < 2 or seen < 2:
        return None
    # Cheap size probe: a big tree has many entries in its first two levels.
    probe = 0
    for _, name, _ in subdirs[: 4 * workers]:
        try:
            fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=rfd)
        except OSError:
            continue
        try:
            with os.scandir(fd) as it:
                probe += sum(1 for _ in it)
        finally:
            os.close(fd)
    estimate = probe * max(1, len(subdirs) // max(1, min(len(subdirs), 4 * workers)))
    if estimate < PARALLEL_MIN_ENTRIES:
        return None
    shares: list[list[str]] = [[] for _ in range(min(workers, len(subdirs)))]
    for i, (_, name, _) in enumerate(subdirs):
        shares[i % len(shares)].append(name)
    pipes: list[tuple[int, int]] = []
    for share in shares:
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 0
            try:
                os.close(r)
                out: list[tuple[dict, dict, int]] = []
                for name in share:
                    try:
                        fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=rfd)
                    except OSError:
                        continue  # replaced by a symlink or removed since the listing
                    try:
                        col = _Collector(f"/proc/self/fd/{fd}/.", name)
                        col.walk()
                        out.append(col.result())
                    finally:
                        os.close(fd)
                data = pickle.dumps(("ok", out), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as e:
                data = pickle.dumps(("error", str(e)))
                code = 1
            try:
                with os.fdopen(w, "wb") as fh:
                    fh.write(data)
            finally:
                os._exit(code)
        os.close(w)
        pipes.append((pid, r))
    chunks: dict[int, list[bytes]] = {r: [] for _, r in pipes}
    open_fds = set(chunks)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for r in ready:
            data = os.read(r, 1 << 20)
            if data:
                chunks[r].append(data)
            else:
                open_fds.discard(r)
                os.close(r)
    results: list[tuple[dict, dict, int]] = []
    error = None
    for pid, r in pipes:
        os.waitpid(pid, 0)
        status, payload = pickle.loads(b"".join(chunks[r]))
        if status != "ok":
            error = payload
        else:
            results.extend(payload)
    if error is not None:
        raise RuntimeFailure(f"cannot scan {root}: {error}")
    return results, len(subdirs)


def scan(root: str, progress: Callable[[int], None] | None = None, workers: int | None = None) -> Scan:
    """Scan the directory ``root`` (a real path) and everything below it, never following a symlink.

    Big trees are split across ``workers`` processes (default: one per CPU, at most 8) by the root's
    subdirectories; small ones are walked in this process.
    """
    started = time.perf_counter()
    try:
        rfd = os.open(root, _DIR_FLAGS | os.O_NOFOLLOW)
    except OSError as e:
        raise InputError(f"--path {root}: {e.strerror}") from None
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    try:
        parts = _scan_parallel(rfd, root, workers)
        if parts is None:
            col = _Collector(f"/proc/self/fd/{rfd}/.", "")
            col.walk(progress)
            collected = [col.result()]
        else:
            # The root itself and its own files, in this process (the workers took every subdirectory).
            col = _Collector(f"/proc/self/fd/{rfd}/.", "")
            with os.scandir(rfd) as it:
                for e in it:
                    if not e.is_dir(follow_symlinks=False):
                        col.leaf(rfd, e.name, os.stat(e.name, dir_fd=rfd, follow_symlinks=False), col.prefix)
            col.directory(rfd, os.fstat(rfd), col.prefix)
            collected = [col.result(), *parts[0]]
        ro = bool(os.fstatvfs(rfd).f_flag & os.ST_RDONLY)
    except RuntimeFailure as e:  # a file vanished mid-walk, an unreadable directory: say where, in real paths
        raise RuntimeFailure(re.sub(r"/proc/self/fd/\d+/\.", root, e.message)) from None
    finally:
        os.close(rfd)
    return _build(root, collected, ro, time.perf_counter() - started)


def _build(root: str, collected: list[tuple[dict, dict, int]], ro: bool, seconds: float) -> Scan:
    cache: dict[bytes, acls.Acl] = {}
    nodes: dict[str, DirNode] = {}
    devs: dict[str, int] = {}
    has_acls = False
    n_files = n_links = n_other = 0
    for dirs, _, _ in collected:
        for rel, (uid, gid, mode, raw, draw, dev) in dirs.items():
            access, default = _parse(raw, cache), _parse(draw, cache)
            has_acls = has_acls or access is not None or default is not None
            nodes[rel] = DirNode(rel, Inode(uid, gid, mode, access, default))
            devs[rel] = dev
    root_dev = devs[""]
    mounts = mounts_under(root)
    for rel, node in nodes.items():
        if devs[rel] != root_dev or (mounts and under(rel, mounts)):
            node.foreign = True
            parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
            if devs.get(parent) != devs[rel] and rel not in mounts:
                mounts.append(rel)
    for _, files, _ in collected:
        for rel, groups in files.items():
            node = nodes.get(rel)
            if node is None:
                continue
            for key, (count, example) in groups.items():
                if key[0] == "L":
                    node.nsymlinks += count
                    n_links += count
                elif key[0] == "O":
                    node.nother += count
                    n_other += count
                else:
                    uid, gid, mode, raw = key
                    acl = _parse(raw, cache)
                    has_acls = has_acls or acl is not None
                    node.files.append(FileGroup(Inode(uid, gid, mode, acl), count, example))
                    node.nfiles += count
                    n_files += count
    for node in nodes.values():
        node.files.sort(key=lambda f: f.example)
    tree = nodes[""]
    for rel in sorted(nodes, key=lambda r: (r.count("/"), r)):
        if not rel:
            continue
        parent = nodes.get(rel.rsplit("/", 1)[0] if "/" in rel else "")
        if parent is not None:
            parent.children.append(nodes[rel])
    for node in sorted(nodes.values(), key=lambda n: -n.rel.count("/") if n.rel else 1):
        node.children.sort(key=lambda c: c.rel)
        node.tdirs = 1 + sum(c.tdirs for c in node.children)
        node.tfiles = node.nfiles + sum(c.tfiles for c in node.children)
    return Scan(root=root, tree=tree, ancestors=ancestors_of(root), read_only_fs=ro, dirs=len(nodes), files=n_files,
                symlinks=n_links, others=n_other, seconds=seconds, has_acls=has_acls,
                hardlinked=sum(c[2] for c in collected), mounts=sorted(set(mounts)))
