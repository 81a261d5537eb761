"""Least-privilege fixes, ranked, and their predicted result.

The plan, from the least to the most invasive:

1. **A shared group on the tree** — the group most of the parties already run with (never 0): every
   directory and file gets that group, directories setgid (new entries keep the group) and the group
   entry gains write where a party needs it; a default ACL on every directory makes the files and
   directories the parties create group-writable whatever their umask (the kernel ignores the umask
   when the parent has a default ACL). Applied by ``--fix --apply``.
2. **The manifests** — containers that are not in that group get it (``supplementalGroups``; ``fsGroup``
   for claims, which the kubelet then keeps applying). Printed as snippets: podsec never edits them.
3. **Named-user ACL entries for outside identities** (access and default), or adding the user to the
   group on the file server. Applied by ``--fix --apply``.
4. Anything outside ``--path`` (a parent directory a party cannot search) is printed, never changed.

Never proposed: ``chmod 777``, ``o+w``, or any change to the owner or the other bits. Every step only adds
permissions for the parties; the plan is checked by judging the tree as it would be (:func:`plan`).
"""

from __future__ import annotations

import shlex
import stat
from dataclasses import dataclass, field
from typing import Any

from podsec.kernel.access import CAP_DAC_OVERRIDE, Cred, Inode
from podsec.kernel.acl import GROUP, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ, Acl, Entry, perm_str
from podsec.perms.identity import Party
from podsec.perms.matrix import Result, evaluate
from podsec.perms.scan import Scan

UNUSABLE_GROUPS = frozenset({0, 65534})
"""Never proposed as the shared group: root's group and nogroup."""


@dataclass(frozen=True, slots=True)
class TreeFix:
    """What ``--apply`` does to every directory and regular file under the path (symlinks untouched)."""

    gid: int | None = None
    group_dir: int = 0
    """Bits added to the owning group's entry of directories (7 = rwx)."""
    group_file: int = 0
    """Bits added to the owning group's entry of files (6 = rw; x is added too where some x is set)."""
    setgid: bool = False
    default_acl: bool = False
    users: tuple[tuple[int, int], ...] = ()
    """Named-user entries (uid, directory bits); files get the same minus x unless some x is set."""

    @property
    def empty(self) -> bool:
        return self.gid is None and not self.group_dir and not self.setgid and not self.default_acl and not self.users

    def to_json(self) -> dict[str, Any]:
        return {"gid": self.gid, "groupDir": self.group_dir, "groupFile": self.group_file, "setgid": self.setgid,
                "defaultAcl": self.default_acl, "users": [list(u) for u in self.users]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeFix:
        return cls(data.get("gid"), int(data["groupDir"]), int(data["groupFile"]), bool(data["setgid"]),
                   bool(data["defaultAcl"]), tuple((int(u), int(p)) for u, p in data.get("users") or ()))

    # -- the transform (pure; apply.py performs exactly this) -----------------------------------

    def file(self, inode: Inode) -> Inode:
        if not stat.S_ISREG(inode.mode):
            return inode
        x = 1 if inode.mode & 0o111 else 0
        gadd = self.group_file | (x if self.group_file and self.group_dir & 1 else 0)
        users = tuple((u, (p & 6) | (x if p & 1 else 0)) for u, p in self.users)
        acl, bits = _merge_access(inode, gadd, users)
        gid = inode.gid if self.gid is None else self.gid
        mode = (inode.mode & ~0o777) | bits
        if gid != inode.gid:
            mode &= ~killed_by_chown(inode.mode)  # as chgrp: a setuid/setgid program is not moved to G
        return Inode(inode.uid, gid, mode, acl, None)

    def directory(self, inode: Inode) -> Inode:
        acl, bits = _merge_access(inode, self.group_dir, self.users)
        mode = (inode.mode & ~0o777) | bits
        if self.setgid:
            mode |= stat.S_ISGID
        default = inode.default_acl
        if self.default_acl:
            default = _merge_default(inode, self.group_dir, self.users)
        gid = inode.gid if self.gid is None else self.gid
        return Inode(inode.uid, gid, mode, acl, default)

    def __call__(self, inode: Inode) -> Inode:
        key = (self, inode)
        out = _TRANSFORMED.get(key)
        if out is None:
            if len(_TRANSFORMED) > 65536:
                _TRANSFORMED.clear()
            out = _TRANSFORMED[key] = self.directory(inode) if stat.S_ISDIR(inode.mode) else self.file(inode)
        return out


_TRANSFORMED: dict[tuple[TreeFix, Inode], Inode] = {}
"""Trees repeat a few attribute sets: each is transformed once per fix."""


def killed_by_chown(mode: int) -> int:
    """The bits the kernel clears when a regular file changes owner or group (``chown_common``): setuid
    always, setgid when group-executable."""
    kill = stat.S_ISUID
    if mode & stat.S_ISGID and mode & stat.S_IXGRP:
        kill |= stat.S_ISGID
    return kill


def _merge(acl: Acl, gadd: int, users: tuple[tuple[int, int], ...], keep_mask_from: int) -> Acl | None:
    """Add ``gadd`` to the owning group entry and the named users; the mask gains only what they need."""
    named_u = dict(acl.users)
    needed = gadd
    for uid, p in users:
        named_u[uid] = named_u.get(uid, 0) | p
        needed |= p
    named_g = acl.groups
    group_obj = acl.group_obj | gadd
    mask = acl.mask
    if named_u or named_g or mask is not None:
        mask = (keep_mask_from if mask is None else mask) | needed
    entries = [Entry(USER_OBJ, acl.user_obj), Entry(GROUP_OBJ, group_obj), Entry(OTHER, acl.other)]
    entries += [Entry(USER, p, u) for u, p in named_u.items()]
    entries += [Entry(GROUP, p, g) for g, p in named_g.items()]
    if mask is not None:
        entries.append(Entry(MASK, mask))
    new = Acl.of(entries)
    return None if new.is_minimal else new


def _merge_access(inode: Inode, gadd: int, users: tuple[tuple[int, int], ...]) -> tuple[Acl | None, int]:
    base = inode.acl if inode.acl is not None else Acl.from_mode(inode.mode)
    acl = _merge(base, gadd, users, inode.mode >> 3 & 7)
    if acl is not None:
        return acl, acl.mode_bits()
    return None, base.user_obj << 6 | (base.group_obj | gadd) << 3 | base.other


def _merge_default(inode: Inode, gdir: int, users: tuple[tuple[int, int], ...]) -> Acl:
    """The directory's default ACL: new files owner rw, group as the group fix gives, other no more than now."""
    if inode.default_acl is not None:
        base = inode.default_acl
    else:
        group = (inode.mode >> 3 & 7) | gdir
        base = Acl.of([Entry(USER_OBJ, 7), Entry(GROUP_OBJ, group), Entry(OTHER, inode.mode & 5)])
    merged = _merge(base, gdir, users, base.group_obj)
    return merged if merged is not None else Acl.of([Entry(USER_OBJ, base.user_obj),
                                                     Entry(GROUP_OBJ, base.group_obj | gdir),
                                                     Entry(OTHER, base.other)])


# --------------------------------------------------------------------------------------------------
# counting what a fix changes


@dataclass(slots=True)
class Changes:
    group: int = 0
    mode: int = 0
    acl: int = 0
    default_acl: int = 0
    paths: int = 0
    """Paths with at least one change."""

    def to_json(self) -> dict[str, int]:
        return {"paths": self.paths, "group": self.group, "mode": self.mode, "acl": self.acl,
                "defaultAcl": self.default_acl}


def count_changes(scan: Scan, fix: TreeFix) -> Changes:
    ch = Changes()

    def one(before: Inode, after: Inode, n: int) -> None:
        changed = False
        if before.gid != after.gid:
            ch.group += n
            changed = True
        if before.mode != after.mode:
            ch.mode += n
            changed = True
        if before.acl != after.acl:
            ch.acl += n
            changed = True
        if before.default_acl != after.default_acl:
            ch.default_acl += n
            changed = True
        if changed:
            ch.paths += n

    for node in scan.preorder():
        if node.foreign:
            continue
        one(node.inode, fix(node.inode), 1)
        for fg in node.files:
            one(fg.inode, fix(fg.inode), fg.count)
    return ch


# --------------------------------------------------------------------------------------------------
# the plan


@dataclass(slots=True)
class Fix:
    rank: int
    kind: str
    """tree | manifest | identity-acl | outside | sticky | rofs."""
    title: str
    why: str
    commands: list[str] = field(default_factory=list)
    snippets: list[str] = field(default_factory=list)
    applied: bool = False
    """``--fix --apply`` performs it (changes under --path only)."""
    parties: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "kind": self.kind, "title": self.title, "why": self.why,
                "commands": self.commands, "manifests": self.snippets, "appliedByApply": self.applied,
                "parties": self.parties, "alternatives": self.alternatives}


@dataclass(slots=True)
class Plan:
    tree: TreeFix
    fixes: list[Fix]
    before: Result
    after: Result
    changes: Changes
    added_groups: dict[str, int]
    """Container party → the group its manifest must add."""

    @property
    def manual_left(self) -> bool:
        return any(not f.applied for f in self.fixes) or self.after.denied


def _overrides(p: Party) -> bool:
    return CAP_DAC_OVERRIDE in p.cred.caps


def _with_group(p: Party, gid: int) -> Party:
    from dataclasses import replace

    cred = Cred(p.cred.uid, p.cred.gid, p.cred.groups | {gid}, p.cred.caps)
    client = Cred(p.client.uid, p.client.gid, p.client.groups | {gid}, p.client.caps)
    return replace(p, cred=cred, client=client)


def _gid_counts(scan: Scan) -> dict[int, int]:
    out: dict[int, int] = {}
    for node in scan.preorder():
        out[node.inode.gid] = out.get(node.inode.gid, 0) + 1
        for fg in node.files:
            out[fg.inode.gid] = out.get(fg.inode.gid, 0) + fg.count
    return out


def choose_group(scan: Scan, members: list[Party], failing: set[str], forced: set[int]) -> int:
    """The shared group: a claim's fsGroup if there is one (the kubelet re-applies it at every start), else
    the group that covers most containers, then most failing parties, then most identities, then the group
    already owning most of the tree, then the lowest number."""
    if len(forced) == 1:
        return next(iter(forced))
    owned = _gid_counts(scan)
    candidates = set(forced) or {g for p in members for g in p.cred.groups} - UNUSABLE_GROUPS
    if not candidates:
        first = next((p for p in members if p.name in failing), members[0])
        return first.cred.uid if first.cred.uid not in UNUSABLE_GROUPS else 2000

    def score(g: int) -> tuple[int, int, int, int, int]:
        cont = sum(1 for p in members if p.kind == "container" and g in p.cred.groups)
        fail = sum(1 for p in members if p.name in failing and g in p.cred.groups)
        idents = sum(1 for p in members if p.kind == "identity" and g in p.cred.groups)
        return (cont, fail, idents, owned.get(g, 0), -g)

    return max(candidates, key=score)


def _shared_group(failing: list[Party]) -> int | None:
    counts: dict[int, int] = {}
    for p in failing:
        for g in p.cred.groups - UNUSABLE_GROUPS:
            counts[g] = counts.get(g, 0) + 1
    best = max(counts.items(), key=lambda kv: (kv[1], -kv[0]), default=None)
    return best[0] if best is not None and best[1] >= 2 else None


def _claim_fs_groups(parties: list[Party]) -> set[int]:
    return {p.pod_fs_group for p in parties if p.view is not None and p.view.volume_type in
            ("persistentVolumeClaim", "ephemeral") and p.pod_fs_group is not None and p.needs_write}


def plan(scan: Scan, parties: list[Party], before: Result) -> Plan:
    """Choose the least-privilege fixes for ``before``'s denials and judge the tree as they would leave it."""
    if not before.denied:
        return Plan(TreeFix(), [], before, before, Changes(), {})
    failing = {d.party for d in before.denials}
    members = [p for p in parties if not _overrides(p)]
    container_failing = any(p.kind == "container" and p.name in failing for p in members)
    forced = _claim_fs_groups(parties)
    gid: int | None = None
    if container_failing or forced:
        gid = choose_group(scan, members, failing, forced)
    else:
        # Only outside identities fail: a group two of them share beats one ACL entry per user.
        shared = _shared_group([p for p in members if p.name in failing])
        if shared is not None:
            gid = shared
    writers = any(p.needs_write for p in members)
    gdir = (7 if writers else 5) if gid is not None else 0
    gfile = (6 if writers else 4) if gid is not None else 0
    added: dict[str, int] = {}
    users: dict[int, int] = {}
    default_acl = False
    current = list(parties)
    fix = TreeFix(gid, gdir, gfile, gid is not None, False, ())
    after = evaluate(scan, current, fix)
    for _ in range(6):
        remaining = {d.party for d in after.denials if d.kind not in ("rofs", "sticky") and not _outside(d, scan)}
        if not remaining:
            break
        progress = False
        if not default_acl and any(d.kind in ("new-file", "new-dir") for d in after.denials):
            default_acl = True
            progress = True
        for i, p in enumerate(current):
            if p.name not in remaining or _overrides(p):
                continue
            if p.kind == "container":
                if gid is None:
                    gid = choose_group(scan, members, failing, forced)
                    gdir, gfile = 7 if writers else 5, 6 if writers else 4
                    progress = True
                if gid not in p.cred.groups:
                    current[i] = _with_group(p, gid)
                    added[p.name] = gid
                    progress = True
            elif p.cred.uid not in users and not (gid is not None and gid in p.cred.groups):
                users[p.cred.uid] = 7 if p.needs_write else 5
                progress = True
        fix = TreeFix(gid, gdir, gfile, gid is not None, default_acl, tuple(sorted(users.items())))
        after = evaluate(scan, current, fix)
        if not progress:
            break
    fixes = _describe(scan, parties, before, after, fix, added)
    return Plan(fix, fixes, before, after, count_changes(scan, fix), added)


def _outside(d: Any, scan: Scan) -> bool:
    """A directory above --path stops the party (reach denials are only recorded for those)."""
    return bool(d.kind == "reach")


# --------------------------------------------------------------------------------------------------
# wording


def tree_commands(root: str, fix: TreeFix) -> list[str]:
    """Shell commands doing what ``--apply`` does (coreutils + acl; -P: never follow a symlink)."""
    p = shlex.quote(root)
    cmds: list[str] = []
    if fix.gid is not None:
        cmds.append(f"chgrp -R {fix.gid} {p}")
    if fix.group_dir:
        cmds.append(f"setfacl -R -P -m g::{_x_perm(fix.group_dir)} {p}")
    if fix.setgid:
        cmds.append(f"find {p} -type d -exec chmod g+s {{}} +")
    if fix.default_acl:
        group = perm_str(fix.group_dir or 5).replace("-", "")
        cmds.append(f"setfacl -R -P -d -m u::rwx,g::{group},o::rX {p}   # where a directory has no default ACL yet")
    for uid, bits in fix.users:
        entries = f"u:{uid}:{_x_perm(bits)}"
        if fix.default_acl:
            entries += f",d:u:{uid}:{perm_str(bits).replace('-', '')}"
        cmds.append(f"setfacl -R -P -m {entries} {p}")
    return cmds


def _x_perm(bits: int) -> str:
    """``rwX``: execute for directories (and files that already have some x)."""
    return ("r" if bits & 4 else "") + ("w" if bits & 2 else "") + ("X" if bits & 1 else "")


def manifest_snippet(p: Party, gid: int) -> str:
    """The securityContext lines that give the container's pod the group (with where they go)."""
    import yaml

    wl = p.workload
    pod_sc = (wl.spec.get("securityContext") or {}) if isinstance(wl.spec.get("securityContext"), dict) else {}
    claim = p.view is not None and p.view.volume_type in ("persistentVolumeClaim", "ephemeral")
    if claim:
        sc: dict[str, Any] = {"fsGroup": gid}
    else:
        supp = [g for g in pod_sc.get("supplementalGroups") or () if isinstance(g, int)]
        sc = {"supplementalGroups": [*supp, gid] if gid not in supp else supp}
    doc: dict[str, Any] = {"securityContext": sc}
    for key in reversed(("spec", *wl.template[:-1], "spec") if wl.template else ("spec",)):
        doc = {key: doc}
    body = yaml.safe_dump(doc, default_flow_style=None, sort_keys=False).rstrip()
    return f"# {p.source} {wl.kind}/{wl.name}\n{body}"


def _describe(scan: Scan, parties: list[Party], before: Result, after: Result, fix: TreeFix,
              added: dict[str, int]) -> list[Fix]:
    from podsec.perms.explain import party_desc

    fixes: list[Fix] = []
    root = scan.root
    by_name = {p.name: p for p in parties}
    if fix.gid is not None or fix.default_acl:
        in_group = [p.name for p in parties if fix.gid is not None and fix.gid in p.cred.groups]
        parts = []
        if fix.gid is not None:
            parts.append(f"give {root} and everything in it group {fix.gid}"
                         + (f" (already the group of {', '.join(in_group)})" if in_group else ""))
            parts.append(f"make directories setgid and the group {perm_str(fix.group_dir)} on directories, "
                         f"{perm_str(fix.group_file)[:2]} on files")
        if fix.default_acl:
            parts.append("put a default ACL on every directory so new files and directories are "
                         f"{'group-writable' if fix.group_dir & 2 else 'group-readable'} whatever the umask")
        fixes.append(Fix(
            rank=0, kind="tree", title=f"Shared group {fix.gid} on the tree" if fix.gid is not None
            else "Default ACLs on the tree",
            why="; ".join(parts) + ". Owners and the bits for others stay as they are: nothing becomes "
                "world-writable.",
            commands=tree_commands(root, TreeFix(fix.gid, fix.group_dir, fix.group_file, fix.setgid, fix.default_acl)),
            applied=True, parties=in_group))
    for name, gid in added.items():
        p = by_name[name]
        how = ("fsGroup (the kubelet gives the claim this group at every start)" if p.view is not None
               and p.view.volume_type in ("persistentVolumeClaim", "ephemeral") else "supplementalGroups")
        fixes.append(Fix(
            rank=0, kind="manifest", title=f"Add group {gid} to {p.workload.kind}/{p.workload.name}",
            why=f"{party_desc(p)} is not in group {gid}; the pod's {how} puts it there",
            snippets=[manifest_snippet(p, gid)], applied=False, parties=[name],
            alternatives=[f"or runAsGroup: {gid} on the container"]))
    for uid, bits in fix.users:
        names = [p.name for p in parties if p.kind == "identity" and p.cred.uid == uid]
        entries = f"u:{uid}:{_x_perm(bits)}" + (f",d:u:{uid}:{perm_str(bits).replace('-', '')}" if fix.default_acl
                                               else "")
        alt = []
        if fix.gid is not None:
            alt.append(f"or add uid {uid} to group {fix.gid} on the file server (e.g. usermod -aG {fix.gid} USER, "
                       "or the NAS's group settings) and leave the ACLs alone")
        fixes.append(Fix(
            rank=0, kind="identity-acl", title=f"Named-user ACL entries for {', '.join(names)} (uid {uid})",
            why=f"{', '.join(names)} is not one of the containers' users or groups; a named entry (and a default one "
                "for new files) lets exactly this user in",
            commands=[f"setfacl -R -P -m {entries} {shlex.quote(root)}"], applied=True, parties=names,
            alternatives=alt))
    # what cannot be fixed under --path
    seen: set[tuple[str, str]] = set()
    for d in before.denials:
        if d.kind == "reach" and _outside(d, scan):
            p = by_name[d.party]
            key = (d.example, d.party)
            if key in seen:
                continue
            seen.add(key)
            entry = f"u:{p.cred.uid}:x"
            fixes.append(Fix(rank=0, kind="outside", title=f"Let {d.party} search {d.example}",
                             why=f"{d.example} is outside {root}: podsec never changes it",
                             commands=[f"setfacl -m {entry} {shlex.quote(d.example)}"], parties=[d.party]))
        elif d.kind == "rofs" and ("rofs", "") not in seen:
            seen.add(("rofs", ""))
            fixes.append(Fix(rank=0, kind="rofs", title=f"{root} is on a read-only filesystem",
                             why="no permission change can allow writes; remount it read-write", parties=[d.party]))
        elif d.kind == "sticky" and ("sticky", d.rel) not in seen:
            seen.add(("sticky", d.rel))
            fixes.append(Fix(rank=0, kind="sticky", title=f"Sticky bit on {scan.path(d.rel)}",
                             why="only owners may rename or delete entries there; remove it only if the parties "
                                 "are meant to manage each other's files",
                             commands=[f"chmod -t {shlex.quote(scan.path(d.rel))}"], parties=[d.party]))
    order = {"tree": 0, "manifest": 1, "identity-acl": 2, "outside": 3, "sticky": 4, "rofs": 5}
    fixes.sort(key=lambda f: order[f.kind])
    for i, f in enumerate(fixes, 1):
        f.rank = i
    return fixes
