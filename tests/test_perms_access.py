"""The permission decisions of ``podsec perms`` against the running kernel, and the rules they encode.

The grid test builds real files and directories with many owners, modes and ACLs, then asks the kernel
(``faccessat(AT_EACCESS)`` in a process made by ``setpriv``) what each credential may do and compares it
with :func:`podsec.kernel.access.permission` — every combination, no expected values written by hand.
"""

from __future__ import annotations

import itertools
import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from podsec.kernel.access import (
    MAY_EXEC,
    MAY_READ,
    MAY_WRITE,
    Cred,
    Inode,
    new_inode,
    nfs_server_cred,
    permission,
    squash,
    sticky_blocks,
)
from podsec.kernel.acl import Acl, read_path
from test_perms_support import kernel_access, needs_root, needs_setpriv, reachable_dir, run_as

R, W, X = MAY_READ, MAY_WRITE, MAY_EXEC
DEFAULT_ROOT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                     "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
                     "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP")
"""containerd's default set: root in a container has CAP_DAC_OVERRIDE and CAP_FOWNER, not CAP_DAC_READ_SEARCH."""

CREDS: dict[str, tuple[Cred, tuple[str, ...] | None]] = {
    "uid1000": (Cred(1000, 1000, frozenset({1000})), None),
    "uid1000+2000": (Cred(1000, 1000, frozenset({1000, 2000})), None),
    "uid1001": (Cred(1001, 1001, frozenset({1001})), None),
    "uid1001-gid0": (Cred(1001, 0, frozenset({0})), None),
    "root-container": (Cred(0, 0, frozenset({0}), frozenset(DEFAULT_ROOT_CAPS)), DEFAULT_ROOT_CAPS),
    "root-no-caps": (Cred(0, 0, frozenset({0})), ()),
    "root-read-search": (Cred(0, 0, frozenset({0}), frozenset({"CAP_DAC_READ_SEARCH"})), ("CAP_DAC_READ_SEARCH",)),
    "nobody-squashed": (squash(Cred(0, 0, frozenset({0}), frozenset(DEFAULT_ROOT_CAPS))), None),
}

MODES = (0o000, 0o700, 0o750, 0o755, 0o770, 0o775, 0o707, 0o070, 0o007, 0o644, 0o664, 0o640, 0o604, 0o711,
         0o1777, 0o2775, 0o066, 0o606, 0o460, 0o111, 0o001, 0o010)
ACLS = (
    None,
    "u::rwx,u:1001:rwx,g::r-x,m::r-x,o::---",          # a named user limited by the mask
    "u::rw-,g::---,g:2000:rw-,m::rw-,o::r--",          # a named group
    "u::r--,u:1000:---,g::rwx,m::rwx,o::rwx",          # a named user denied although other allows
    "u::rwx,g::r--,g:1000:-w-,m::rwx,o::---",          # two matching group entries, neither grants rw
    "u::rwx,u:1001:rwx,g::rwx,m::---,o::rwx",          # mask --- : no group bits, the kernel ignores the ACL
    "u::---,g::r-x,g:2000:rwx,m::rw-,o::r--",
    "u::rwx,g::rwx,m::r--,o::---",                     # a mask without named entries
)


@pytest.fixture(scope="module")
def grid() -> Iterator[list[tuple[str, Inode]]]:
    """Files and directories with every mode × ACL, owners and groups drawn from the creds' ids."""
    gen = reachable_dir()
    base = next(gen)
    rnd = random.Random(4)
    out: list[tuple[str, Inode]] = []
    for i, (kind, mode, text) in enumerate(itertools.product("fd", MODES, ACLS)):
        p = base / f"{kind}{i}"
        if kind == "f":
            p.write_bytes(b"")
        else:
            p.mkdir()
        os.chown(p, rnd.choice((0, 1000, 1001)), rnd.choice((0, 1000, 2000)))
        os.chmod(p, mode)
        if text:
            acl = Acl.parse(text)
            os.setxattr(p, "system.posix_acl_access", acl.to_xattr())
            os.chmod(p, (mode & 0o7000) | acl.mode_bits())  # the ACL's own bits; keep sticky/setgid
        st = os.lstat(p)
        out.append((str(p), Inode(st.st_uid, st.st_gid, st.st_mode, read_path(p))))
    yield out
    next(gen, None)


@needs_root
@needs_setpriv
@pytest.mark.parametrize("who", sorted(CREDS))
def test_decisions_match_the_kernel(grid: list[tuple[str, Inode]], who: str) -> None:
    cred, caps = CREDS[who]
    groups = tuple(sorted(cred.groups - {cred.gid}))
    seen = kernel_access([p for p, _ in grid], cred.uid, cred.gid, groups, caps)
    wrong = []
    for (path, inode), kernel in zip(grid, seen):
        for want, allowed in zip((R, W, X), kernel):
            d = permission(inode, cred, want)
            if d.allowed != allowed:
                wrong.append(f"{path} {stat.S_IMODE(inode.mode):04o} {inode.uid}:{inode.gid} {inode.acl} want={want}: "
                             f"kernel {allowed}, podsec {d}")
    assert not wrong, "\n".join(wrong[:20])
    assert len(seen) == len(MODES) * len(ACLS) * 2


@needs_root
@needs_setpriv
def test_sticky_rename_matches_the_kernel() -> None:
    """In a sticky directory only the entry's owner, the directory's owner or CAP_FOWNER may rename it."""
    gen = reachable_dir()
    base = next(gen)
    try:
        d = base / "drop"
        d.mkdir()
        os.chmod(d, 0o1777)
        for owner in (1000, 1001):
            f = d / f"of{owner}"
            f.write_bytes(b"")
            os.chown(f, owner, owner)
        st = os.stat(d)
        dino = Inode(st.st_uid, st.st_gid, st.st_mode)
        for uid in (1000, 1001):
            for owner in (1000, 1001):
                victim = Inode(owner, owner, stat.S_IFREG | 0o644)
                cred = Cred(uid, uid, frozenset({uid}))
                out = run_as(uid, uid, f"mv {d}/of{owner} {d}/of{owner}.x && mv {d}/of{owner}.x {d}/of{owner}")
                assert (out.returncode != 0) == sticky_blocks(dino, victim, cred), (uid, owner, out.stderr)
        other_dir = Inode(5, 5, stat.S_IFDIR | 0o1777)
        victim = Inode(1000, 1000, stat.S_IFREG | 0o644)
        assert not sticky_blocks(other_dir, victim, Cred(0, 0, frozenset({0}), frozenset({"CAP_FOWNER"})))
        assert sticky_blocks(other_dir, victim, Cred(0, 0, frozenset({0})))
    finally:
        next(gen, None)


# -- what the kernel gives new files -----------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("default", [None, "u::rwx,g::rwx,o::r-x", "u::rwx,u:1001:rwx,g::r-x,m::rwx,o::---",
                                     "u::rw-,g::rwx,g:2000:r-x,m::r-x,o::r--"])
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("setgid", [False, True])
def test_new_inode_matches_the_kernel(tmp_path: Path, default: str | None, umask: int, setgid: bool) -> None:
    """Owner, group, mode and inherited ACLs of new files and directories: umask, or the default ACL (which
    makes the kernel ignore the umask), and the setgid directory's group."""
    parent = tmp_path / "p"
    parent.mkdir()
    os.chown(parent, 1000, 2000)
    os.chmod(parent, 0o2775 if setgid else 0o775)
    if default:
        os.setxattr(parent, "system.posix_acl_default", Acl.parse(default).to_xattr())
    st = os.stat(parent)
    pino = Inode(st.st_uid, st.st_gid, st.st_mode, read_path(parent), read_path(parent, "system.posix_acl_default"))
    me = Cred(0, 0, frozenset({0}))
    old = os.umask(umask)
    try:
        os.close(os.open(parent / "f", os.O_CREAT | os.O_WRONLY, 0o666))
        os.mkdir(parent / "d", 0o777)
    finally:
        os.umask(old)
    for name, is_dir in (("f", False), ("d", True)):
        st = os.lstat(parent / name)
        real = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), read_path(parent / name),
                read_path(parent / name, "system.posix_acl_default") if is_dir else None)
        c = new_inode(pino, me, umask, is_dir).inode
        assert real == (c.uid, c.gid, stat.S_IMODE(c.mode), c.acl, c.default_acl), name


# -- the rules, one by one ------------------------------------------------------------------------------


def ino(mode: int, uid: int = 0, gid: int = 0, acl: str | None = None, kind: int = stat.S_IFDIR) -> Inode:
    return Inode(uid, gid, kind | mode, Acl.parse(acl) if acl else None)


U1000 = Cred(1000, 1000, frozenset({1000}))


def test_owner_class_does_not_fall_through() -> None:
    d = permission(ino(0o077, uid=1000, gid=1000), U1000, R)
    assert not d.allowed and d.klass == "owner" and d.perms == 0


def test_group_entries_deny_without_falling_through_to_other() -> None:
    d = permission(ino(0o777, acl="u::rwx,g::r-x,g:1000:r-x,m::rwx,o::rwx"), U1000, W)
    assert not d.allowed and d.klass == "acl-group" and d.entries == ("group:1000:r-x",)


def test_named_user_is_limited_by_the_mask() -> None:
    d = permission(ino(0o750, acl="u::rwx,u:1000:rwx,g::r-x,m::r-x,o::---"), U1000, W)
    assert not d.allowed and d.klass == "acl-user" and d.mask == 5


def test_acl_is_ignored_when_the_mode_has_no_group_bits() -> None:
    d = permission(ino(0o707, acl="u::rwx,u:1000:---,g::rwx,m::---,o::rwx"), U1000, W)
    assert d.allowed and d.klass == "other" and d.acl_ignored


def test_dac_override_executes_files_only_with_some_x_bit() -> None:
    root = Cred(0, 0, frozenset({0}), frozenset({"CAP_DAC_OVERRIDE"}))
    assert not permission(ino(0o666, uid=5, kind=stat.S_IFREG), root, X).allowed
    assert permission(ino(0o001, uid=5, kind=stat.S_IFREG), root, X).cap == "CAP_DAC_OVERRIDE"
    assert permission(ino(0o000, uid=5), root, R | W | X).cap == "CAP_DAC_OVERRIDE"


def test_dac_read_search_reads_files_and_searches_directories_but_never_writes() -> None:
    rs = Cred(0, 0, frozenset({0}), frozenset({"CAP_DAC_READ_SEARCH"}))
    assert permission(ino(0o000, uid=5), rs, R | X).cap == "CAP_DAC_READ_SEARCH"
    assert permission(ino(0o000, uid=5, kind=stat.S_IFREG), rs, R).allowed
    assert not permission(ino(0o000, uid=5, kind=stat.S_IFREG), rs, W).allowed
    assert not permission(ino(0o000, uid=5), rs, W | X).allowed


def test_read_only_mount_refuses_writes_even_to_root() -> None:
    root = Cred(0, 0, frozenset({0}), frozenset(DEFAULT_ROOT_CAPS))
    d = permission(ino(0o777), root, W | X, read_only=True)
    assert not d.allowed and d.errno == "EROFS"
    assert permission(ino(0o777), root, R | X, read_only=True).allowed


def test_root_squash_maps_root_to_nobody_without_capabilities() -> None:
    root = Cred(0, 0, frozenset({0, 1000}), frozenset(DEFAULT_ROOT_CAPS))
    sq = nfs_server_cred(root, root_squash=True)
    assert (sq.uid, sq.gid, sq.groups, sq.caps) == (65534, 65534, frozenset({65534, 1000}), frozenset())
    assert not permission(ino(0o755), sq, W | X).allowed
    assert permission(ino(0o775, gid=1000), sq, W | X).allowed
    # no_root_squash: knfsd gives uid 0 its own capability set, whatever the client dropped
    assert "CAP_DAC_READ_SEARCH" in nfs_server_cred(Cred(0, 0, frozenset({0})), root_squash=False).caps
