"""The kernel's permission decision, as a pure function: who may read, write or search an inode, and why.

It follows ``fs/namei.c`` (``generic_permission`` → ``acl_permission_check`` → ``posix_acl_permission``,
then the ``capable_wrt_inode_uidgid`` overrides), ``may_delete`` (the sticky bit) and
``fs/posix_acl.c``; tests compare every decision with the running kernel under ``setpriv``.

* Owner class when fsuid == owner: only the owner bits, no fallthrough (even if group/other allow more).
* POSIX ACLs are consulted only if the mode has group bits (``IS_POSIXACL && mode & S_IRWXG``);
  a named user entry is limited by the mask; the group class is every entry whose group the process
  is in (owning group and named groups): granted if ANY grants (masked), denied if some matched but
  none grants — no fallthrough to other.
* Without an ACL, group membership matters only where group and other bits differ.
* CAP_DAC_READ_SEARCH: read any file, read and search any directory. CAP_DAC_OVERRIDE: read and write
  anything, search any directory, execute a file only if some x bit is set. Both only when the inode's
  owner and group are mapped in the caller's user namespace (always, without user namespaces).
* A write on a read-only mount or filesystem fails with EROFS, whatever the credentials.
* NFS ``root_squash``: the server maps uid 0 and gid 0 to the anonymous ids and root's capabilities
  do not exist there (:func:`squash`).

Creating, deleting and renaming entries need write+search on the directory; in a sticky directory only the
entry's owner, the directory's owner or CAP_FOWNER may delete or rename it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

from podsec.kernel.acl import GROUP, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ, Acl, perm_str

MAY_EXEC = 1
MAY_WRITE = 2
MAY_READ = 4

CAP_DAC_OVERRIDE = "CAP_DAC_OVERRIDE"
CAP_DAC_READ_SEARCH = "CAP_DAC_READ_SEARCH"
CAP_FOWNER = "CAP_FOWNER"
FS_CAPS = frozenset({CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER})
NFSD_ROOT_CAPS = frozenset({"CAP_CHOWN", CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, "CAP_FSETID",
                            "CAP_MKNOD", "CAP_LINUX_IMMUTABLE"})
"""``CAP_NFSD_SET``: what knfsd gives a request whose (unsquashed) uid is 0, whatever the client had."""
NOBODY = 65534


@dataclass(frozen=True, slots=True)
class Inode:
    """What the kernel looks at: owner, group, mode (with type bits) and the access ACL."""

    uid: int
    gid: int
    mode: int
    acl: Acl | None = None
    default_acl: Acl | None = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def perm(self) -> int:
        return stat.S_IMODE(self.mode)


@dataclass(frozen=True, slots=True)
class Cred:
    """A process's filesystem credentials: fsuid, fsgid, supplementary groups, effective capabilities."""

    uid: int
    gid: int
    groups: frozenset[int]
    caps: frozenset[str] = frozenset()

    def in_group(self, gid: int) -> bool:
        """``in_group_p``: the fsgid or any supplementary group."""
        return gid == self.gid or gid in self.groups


def squash(cred: Cred, anon_uid: int = NOBODY, anon_gid: int = NOBODY) -> Cred:
    """knfsd ``nfsd_setuser`` with ``root_squash``: root ids become the anonymous ones, no capabilities."""
    uid = anon_uid if cred.uid == 0 else cred.uid
    gid = anon_gid if cred.gid == 0 else cred.gid
    groups = frozenset(anon_gid if g == 0 else g for g in cred.groups)
    return Cred(uid, gid, groups, frozenset())


def nfs_server_cred(cred: Cred, root_squash: bool) -> Cred:
    """The credentials an NFS server checks: the client's capabilities never travel (AUTH_SYS)."""
    if root_squash:
        return squash(cred)
    return Cred(cred.uid, cred.gid, cred.groups, NFSD_ROOT_CAPS if cred.uid == 0 else frozenset())


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one permission check and the facts that decided it."""

    allowed: bool
    want: int
    klass: str
    """owner | acl-user | acl-group | group | other | (for EROFS) rofs."""
    perms: int
    """The permission bits of the class that decided (masked for ACL entries)."""
    entries: tuple[str, ...] = ()
    """ACL entries that matched (``user:1001:rwx``, ``group::r-x``); empty without an ACL."""
    mask: int | None = None
    cap: str | None = None
    """The capability that granted it despite the mode bits."""
    missing_caps: tuple[str, ...] = ()
    """Capabilities that would have granted it (for the explanation); empty when none could."""
    errno: str = ""
    acl_ignored: bool = False
    """The inode has an ACL but no group bits, so the kernel did not consult it."""

    @property
    def dac_allowed(self) -> bool:
        return self.allowed and self.cap is None


READ_ONLY = Decision(False, MAY_WRITE, "rofs", 0, errno="EROFS")


def _acl_check(acl: Acl, inode: Inode, cred: Cred, want: int) -> Decision:
    """``posix_acl_permission`` (the owner case was handled by the caller)."""
    mask = acl.mask
    matched: list[str] = []
    found = False
    best = 0
    for e in acl.entries:
        if e.tag == USER_OBJ:
            continue  # fsuid == owner never gets here
        if e.tag == USER:
            if e.id == cred.uid:
                eff = e.perm if mask is None else e.perm & mask
                return Decision(eff & want == want, want, "acl-user", eff, (e.text(),), mask)
        elif e.tag in (GROUP_OBJ, GROUP):
            gid = inode.gid if e.tag == GROUP_OBJ else e.id
            if gid is not None and cred.in_group(gid):
                found = True
                matched.append(e.text())
                best |= e.perm
                if e.perm & want == want:
                    eff = e.perm if mask is None else e.perm & mask
                    return Decision(eff & want == want, want, "acl-group", eff, tuple(matched), mask)
        elif e.tag == OTHER:
            if found:
                eff = best if mask is None else best & mask
                return Decision(False, want, "acl-group", eff, tuple(matched), mask)
            return Decision(e.perm & want == want, want, "other", e.perm, ("other::" + perm_str(e.perm),), mask)
        elif e.tag == MASK:
            continue
    return Decision(False, want, "other", 0, (), mask)


def dac_check(inode: Inode, cred: Cred, want: int) -> Decision:
    """``acl_permission_check``: mode bits and ACLs only, no capabilities."""
    want &= 7
    mode = inode.perm
    if cred.uid == inode.uid:
        bits = mode >> 6 & 7
        return Decision(want & ~bits == 0, want, "owner", bits)
    acl = inode.acl
    if acl is not None and mode & 0o070:
        return _acl_check(acl, inode, cred, want)
    group_bits = mode >> 3 & 7
    other_bits = mode & 7
    in_group = cred.in_group(inode.gid)
    if in_group:
        return Decision(want & ~group_bits == 0, want, "group", group_bits, acl_ignored=acl is not None)
    return Decision(want & ~other_bits == 0, want, "other", other_bits, acl_ignored=acl is not None)


def permission(inode: Inode, cred: Cred, want: int, *, read_only: bool = False) -> Decision:
    """``inode_permission``: EROFS for writes on a read-only mount, then ``generic_permission``."""
    want &= 7
    if want & MAY_WRITE and read_only and (stat.S_ISREG(inode.mode) or inode.is_dir or stat.S_ISLNK(inode.mode)):
        return READ_ONLY
    d = dac_check(inode, cred, want)
    if d.allowed:
        return d
    caps = cred.caps
    if inode.is_dir:
        if not want & MAY_WRITE and CAP_DAC_READ_SEARCH in caps:
            return _granted(d, CAP_DAC_READ_SEARCH)
        if CAP_DAC_OVERRIDE in caps:
            return _granted(d, CAP_DAC_OVERRIDE)
        helpful = (CAP_DAC_OVERRIDE,) if want & MAY_WRITE else (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
        return _denied(d, helpful)
    if want == MAY_READ and CAP_DAC_READ_SEARCH in caps:
        return _granted(d, CAP_DAC_READ_SEARCH)
    exec_ok = not want & MAY_EXEC or inode.mode & 0o111
    if exec_ok and CAP_DAC_OVERRIDE in caps:
        return _granted(d, CAP_DAC_OVERRIDE)
    if not exec_ok:
        return _denied(d, ())
    helpful = (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) if want == MAY_READ else (CAP_DAC_OVERRIDE,)
    return _denied(d, helpful)


def _granted(d: Decision, cap: str) -> Decision:
    return Decision(True, d.want, d.klass, d.perms, d.entries, d.mask, cap, acl_ignored=d.acl_ignored)


def _denied(d: Decision, helpful: tuple[str, ...]) -> Decision:
    return Decision(False, d.want, d.klass, d.perms, d.entries, d.mask, None, helpful, "EACCES", d.acl_ignored)


def can(inode: Inode, cred: Cred, want: int, *, read_only: bool = False) -> bool:
    return permission(inode, cred, want, read_only=read_only).allowed


def sticky_blocks(directory: Inode, victim: Inode, cred: Cred) -> bool:
    """``check_sticky``: in a sticky directory only the victim's owner, the directory's owner or CAP_FOWNER
    may unlink or rename the victim."""
    if not directory.mode & stat.S_ISVTX:
        return False
    if cred.uid in (victim.uid, directory.uid):
        return False
    return CAP_FOWNER not in cred.caps


# --------------------------------------------------------------------------------------------------
# what a new file or directory will look like


@dataclass(frozen=True, slots=True)
class Creation:
    """An inode a party creates in a directory: its owner, group, mode and (inherited) ACLs."""

    inode: Inode
    how: str
    """``umask 022`` or ``default ACL`` (why the mode is what it is)."""
    setgid_group: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


FILE_CREATE_MODE = 0o666
DIR_CREATE_MODE = 0o777


def new_inode(parent: Inode, cred: Cred, umask: int, directory: bool) -> Creation:
    """``inode_init_owner`` + ``posix_acl_create``: owner fsuid; group the parent's if it is setgid, else
    fsgid; the parent's default ACL (umask ignored) or the umask; directories inherit setgid and the
    default ACL. Programs are assumed to ask for 0666 (files) and 0777 (directories), as most do."""
    from podsec.kernel.acl import create_masq

    req = DIR_CREATE_MODE if directory else FILE_CREATE_MODE
    setgid = bool(parent.mode & stat.S_ISGID)
    gid = parent.gid if setgid else cred.gid
    ftype = stat.S_IFDIR if directory else stat.S_IFREG
    if parent.default_acl is not None:
        acl, bits = create_masq(parent.default_acl, req)
        how = "default ACL"
    else:
        acl, bits = None, req & ~umask & 0o777
        how = f"umask {umask:03o}"
    mode = ftype | bits
    if directory and setgid:
        mode |= stat.S_ISGID
    default = parent.default_acl if directory else None
    return Creation(Inode(cred.uid, gid, mode, acl, default), how, setgid)
