"""One sentence per denial: who, what, the inode's owner and mode, and the kernel's reason.

``lazylibrarian (uid 1000, groups 1000) cannot write /srv/media/books: owner root:root, mode 0755; it is
neither the owner nor in group 0``. Reasons follow the class the kernel picked (owner, named ACL user,
group class, other), the mask, the capabilities that would or would not have helped, read-only mounts and
NFS root squashing.
"""

from __future__ import annotations

import os
import stat

from podsec.kernel.access import MAY_EXEC, MAY_READ, MAY_WRITE, Decision, Inode
from podsec.kernel.acl import perm_str
from podsec.perms.identity import Party
from podsec.perms.matrix import MAX_LISTED, Denial
from podsec.perms.scan import Scan


def user_name(uid: int) -> str:
    """``root`` for 0, else the number: a container's uid 1000 is not whoever owns 1000 on this host."""
    return "root" if uid == 0 else str(uid)


def group_name(gid: int) -> str:
    return "root" if gid == 0 else str(gid)


def owner(inode: Inode) -> str:
    return f"{user_name(inode.uid)}:{group_name(inode.gid)}"


def mode_str(inode: Inode) -> str:
    return f"{stat.S_IMODE(inode.mode):04o}"


def inode_desc(inode: Inode) -> str:
    """``owner root:root, mode 0755`` (+ the ACL when there is one)."""
    text = f"owner {owner(inode)}, mode {mode_str(inode)}"
    if inode.acl is not None:
        text += f", ACL {inode.acl.text()}"
    return text


def ids(values: frozenset[int] | set[int]) -> str:
    return ",".join(str(g) for g in sorted(values))


def party_desc(p: Party) -> str:
    """``lazylibrarian (uid 1000, groups 1000)``; squashed root shows both ids."""
    c = p.cred
    if p.squashed:
        return f"{p.name} (uid {p.client.uid} squashed to {c.uid}, groups {ids(c.groups)})"
    return f"{p.name} (uid {c.uid}, groups {ids(c.groups)})"


def _missing(want: int, have: int) -> str:
    words = []
    lack = want & ~have
    if lack & MAY_READ:
        words.append("read")
    if lack & MAY_WRITE:
        words.append("write")
    if lack & MAY_EXEC:
        words.append("search")
    return " and ".join(words) or "nothing"


def reason(d: Decision, inode: Inode, p: Party) -> str:
    """Why the kernel refused, in the words of its algorithm (no capability wording here)."""
    if d.errno == "EROFS":
        return "the filesystem is mounted read-only"
    lack = _missing(d.want, d.perms)
    if d.klass == "owner":
        return f"it is the owner and the owner bits ({perm_str(d.perms)}) lack {lack}"
    if d.klass == "group":
        return f"it is in group {inode.gid} and the group bits ({perm_str(d.perms)}) lack {lack}"
    if d.klass == "acl-user":
        entry = d.entries[0]
        if d.mask is not None and (int_perm(entry) & d.want) == d.want:
            return f"its ACL entry {entry} is limited by the mask ({perm_str(d.mask)})"
        return f"its ACL entry {entry} lacks {lack}"
    if d.klass == "acl-group":
        entries = ", ".join(d.entries)
        if d.mask is not None and any(int_perm(e) & d.want == d.want for e in d.entries):
            return f"its groups match {entries}, limited by the mask ({perm_str(d.mask)})"
        return f"its groups match {entries}, none granting {lack}"
    # other
    if inode.acl is not None and not d.acl_ignored:
        text = f"it is neither the owner nor in group {inode.gid} nor named in the ACL (other::{perm_str(d.perms)})"
    else:
        text = f"it is neither the owner nor in group {inode.gid}"
    if d.acl_ignored:
        text += " (the ACL is ignored: the mode has no group bits)"
    return text


def int_perm(entry: str) -> int:
    from podsec.kernel.acl import parse_perm

    return parse_perm(entry.rsplit(":", 1)[-1])


def caps_clause(d: Decision, p: Party) -> str:
    """What capabilities had to do with it (nothing for ordinary users)."""
    if d.errno == "EROFS":
        return ""
    if p.squashed:
        return "; root's capabilities do not count on the NFS server (root_squash)"
    if p.cred.uid == 0 and d.missing_caps and not (set(d.missing_caps) & p.cred.caps):
        return f", and it has no {' or '.join(d.missing_caps)}"
    if p.cred.uid == 0 and not d.missing_caps and d.want & MAY_EXEC and not (d.want & MAY_WRITE):
        return ", and no execute bit is set (CAP_DAC_OVERRIDE needs one)"
    return ""


_PLURALS = {"entry": "entries", "directory": "directories", "other directory": "other directories"}


def _n(count: int, word: str) -> str:
    return f"{count:,} {word if count == 1 else _PLURALS.get(word, word + 's')}"


def _places(den: Denial, scan: Scan) -> str:
    """``/a``, ``/a and /b``, ``/a, /b and /c``, or ``/a and 41 other directories like it``."""
    rels = den.rels or [den.rel]
    if den.count > len(rels) or den.count > MAX_LISTED:
        return f"{scan.path(rels[0])} and {_n(den.count - 1, 'other directory')} like it"
    paths = [scan.path(r) for r in rels]
    return paths[0] if len(paths) == 1 else ", ".join(paths[:-1]) + " and " + paths[-1]


def sentence(den: Denial, scan: Scan, parties: dict[str, Party]) -> str:
    """The one-sentence explanation of a (grouped) denial."""
    p = parties[den.party]
    who = party_desc(p)
    where = scan.path(den.rel)
    d = den.decision
    if den.kind == "reach":
        return (f"{who} cannot reach {where}: {den.example} ({inode_desc(den.inode)}) cannot be searched: "
                f"{reason(d, den.inode, p)}{caps_clause(d, p)}" if d else f"{who} cannot reach {where}")
    assert d is not None or den.kind == "sticky"
    if den.kind == "sticky":
        what = den.example if den.count == 1 else _n(den.count, "entry")
        return (f"{who} cannot rename or delete {what} in {where}: the directory is sticky "
                f"({inode_desc(den.inode)}) and it owns neither them nor the directory")
    assert d is not None
    tail = f"{reason(d, den.inode, p)}{caps_clause(d, p)}"
    if den.kind in ("new-file", "new-dir"):
        cr = den.creation
        assert cr is not None
        noun = "files" if den.kind == "new-file" else "directories"
        verb = ("read" if not p.needs_write else "write") if den.kind == "new-file" else (
            "list" if not p.needs_write else "write into")
        places = _places(den, scan)
        return (f"{noun} {den.creator} creates in {places} get {owner(cr.inode)} mode {mode_str(cr.inode)} "
                f"({cr.how}{', setgid group' if cr.setgid_group else ''}), so {who} cannot {verb} them: {tail}")
    if den.kind in ("file-read", "file-write", "rofs") and den.example:
        verb = "read" if den.kind == "file-read" else "write"
        if den.count == 1:
            obj = os.path.join(where, den.example)
        elif den.ndirs == 1:
            obj = f"{_n(den.count, 'file')} in {where} (e.g. {den.example})"
        else:
            obj = (f"{_n(den.count, 'file')} in {where} and {_n(den.ndirs - 1, 'other directory')} "
                   f"(e.g. {os.path.join(where, den.example)})")
        return f"{who} cannot {verb} {obj}: {inode_desc(den.inode)}; {tail}"
    verb = {"read": "list", "search": "enter", "write": "write", "rofs": "write"}[den.kind]
    obj = _places(den, scan)
    below = f" (nor the {_n(den.dirs, 'directory')} below)" if den.kind == "search" and den.dirs else ""
    return f"{who} cannot {verb} {obj}{below}: {inode_desc(den.inode)}; {tail}"
