"""Judge every party against every directory of a scan: the access matrix, the denials and new-file forecasts.

Pure: a :class:`~podsec.perms.scan.Scan` and the parties in, decisions out; an optional ``transform``
judges the tree as a fix would leave it (that is how ``--fix`` shows its result before touching a file).

What each party needs ("its job"): search and read every directory it sees and read every file; a party
whose mount is writable also needs to create, rename and delete entries in every directory (write and
search) and to write every file, including the files and directories the *other* parties will create
(owner, group and mode after their umask or the directory's default ACL).
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from podsec.kernel.access import (
    MAY_EXEC,
    MAY_READ,
    MAY_WRITE,
    Creation,
    Decision,
    Inode,
    new_inode,
    permission,
    sticky_blocks,
)
from podsec.perms.identity import Party
from podsec.perms.scan import DirNode, Scan

R, W, X = MAY_READ, MAY_WRITE, MAY_EXEC
MAX_LISTED = 3
KIND_ORDER = ("reach", "search", "read", "write", "rofs", "file-read", "file-write", "sticky", "new-file", "new-dir")
"""A grouped denial names up to this many directories; beyond, "and N other directories like it"."""


@dataclass(slots=True)
class Cell:
    """One party × one directory (and the regular files directly in it)."""

    visible: bool = False
    reach: bool = False
    r: bool = False
    w: bool = False
    x: bool = False
    ro: bool = False
    """The party's mount is read-only: writes are not its job."""
    denied: bool = False
    files: int = 0
    files_r: int = 0
    files_w: int = 0
    files_denied: bool = False

    def letters(self) -> str:
        return ("r" if self.r else "-") + ("w" if self.w else "-") + ("x" if self.x else "-")

    def file_letters(self) -> str:
        if not self.files:
            return ""
        def one(n: int, ch: str) -> str:
            return ch if n == self.files else ("-" if n == 0 else "~")
        return one(self.files_r, "r") + one(self.files_w, "w")


INVISIBLE = Cell()


@dataclass(slots=True)
class Denial:
    """Something a party needs and cannot do, with the decision that refused it (grouped: ``count``)."""

    party: str
    kind: str
    """reach | read | search | write | rofs | file-read | file-write | sticky | new-file | new-dir."""
    rel: str
    """The directory (relative to the scanned root) where it happens; for reach, the first unreachable one."""
    inode: Inode
    """The inode whose permissions refused it (an ancestor for reach, the new inode for new-*)."""
    decision: Decision | None
    count: int = 1
    example: str = ""
    """A file name (file-*, sticky), or the blocking directory's path (reach)."""
    creator: str = ""
    creation: Creation | None = None
    dirs: int = 0
    """Directories below that become unreachable (reach/search)."""
    rels: list[str] = field(default_factory=list)
    """The first few directories of a grouped denial (``rel`` is the first)."""
    ndirs: int = 1
    """How many directories a grouped file denial spans."""

    def key(self) -> tuple:
        d = self.decision
        return (self.party, self.kind, self.creator, _attrs(self.inode), d.klass if d else "", self.example
                if self.kind == "reach" else "")


def _attrs(inode: Inode) -> tuple:
    return (inode.uid, inode.gid, stat.S_IMODE(inode.mode), inode.acl, inode.default_acl)


@dataclass(slots=True)
class Result:
    scan: Scan
    parties: list[Party]
    cells: dict[str, list[Cell]]
    """Directory rel path → one cell per party (same order as ``parties``)."""
    denials: list[Denial]
    """Grouped: one entry per (party, kind, attributes, reason), in tree order."""
    creations: dict[str, tuple[Creation, Creation]] = field(default_factory=dict)
    """What each writing party creates in the scanned root (file, directory), for the report."""

    @property
    def denied(self) -> bool:
        return bool(self.denials)

    def total(self, party: str | None = None) -> int:
        return sum(d.count for d in self.denials if party is None or d.party == party)


Transform = Callable[[Inode], Inode]


def _identity(inode: Inode) -> Inode:
    return inode


class _Judge:
    """Decisions cached per (party, inode attributes, want): big trees repeat a few attribute sets."""

    def __init__(self, parties: list[Party], read_only_fs: bool) -> None:
        self.parties = parties
        self.rofs = read_only_fs
        self.cache: dict[tuple, Decision] = {}

    def decide(self, i: int, inode: Inode, want: int, writable: bool = True) -> Decision:
        key = (i, inode, want, writable)
        d = self.cache.get(key)
        if d is None:
            ro = not writable or self.rofs
            d = self.cache[key] = permission(inode, self.parties[i].cred, want, read_only=ro)
        return d


def evaluate(scan: Scan, parties: list[Party], transform: Transform | None = None) -> Result:
    """The access matrix and every denial (grouped), optionally for the tree as ``transform`` leaves it."""
    t = transform or _identity
    judge = _Judge(parties, scan.read_only_fs)
    n = len(parties)
    cells: dict[str, list[Cell]] = {}
    raw: list[Denial] = []
    for node in scan.preorder():
        cells[node.rel] = [INVISIBLE] * n
    for i, party in enumerate(parties):
        _walk_party(scan, judge, i, party, t, cells, raw)
    creations = _forecast(scan, parties, judge, t, cells, raw)
    order = {p.name: i for i, p in enumerate(parties)}
    def rank(d: Denial) -> tuple:
        kind = KIND_ORDER.index(d.kind)
        new = d.kind in ("new-file", "new-dir")
        return (order[d.party], 99 if new else kind, order.get(d.creator, -1), kind, d.rel)

    grouped = sorted(_group(raw), key=rank)
    return Result(scan, parties, cells, grouped, creations)


def _start(scan: Scan, party: Party) -> tuple[DirNode | None, list[tuple[str, Inode]]]:
    """The first directory of the tree the party sees, and the directories above it it must search."""
    if party.view is None:
        return scan.tree, list(scan.ancestors)
    above = [(p, ino) for p in party.view.above if (ino := scan.outside(p)) is not None]
    return scan.find(party.view.rel_root), above


def _walk_party(scan: Scan, judge: _Judge, i: int, party: Party, t: Transform, cells: dict[str, list[Cell]],
                raw: list[Denial]) -> None:
    start, above = _start(scan, party)
    if start is None:
        return
    writable = party.needs_write
    reach = True
    for path, ino in above:
        d = judge.decide(i, ino, X)
        if not d.allowed:
            raw.append(Denial(party.name, "reach", start.rel, ino, d, 1, path, dirs=start.tdirs))
            reach = False
            break
    stack: list[tuple[DirNode, bool]] = [(start, reach)]
    while stack:
        node, reach = stack.pop()
        ino = node.inode if node.foreign else t(node.inode)  # another filesystem: --apply leaves it alone
        cell = Cell(visible=True, reach=reach, ro=not writable)
        cells[node.rel][i] = cell
        # Below a directory it cannot reach, a party is still judged as if it could: the matrix shows
        # "---" there, and the denials say everything that stands in its way (the fix needs all of it).
        dr = judge.decide(i, ino, R)
        dx = judge.decide(i, ino, X)
        dw = judge.decide(i, ino, W | X, writable)
        cell.r, cell.x, cell.w = reach and dr.allowed, reach and dx.allowed, reach and dw.allowed
        if not dr.allowed:
            raw.append(Denial(party.name, "read", node.rel, ino, dr))
        if not dx.allowed:
            raw.append(Denial(party.name, "search", node.rel, ino, dx, dirs=node.tdirs - 1))
        if writable and not dw.allowed:
            raw.append(Denial(party.name, "rofs" if dw.errno == "EROFS" else "write", node.rel, ino, dw))
        cell.denied = not (cell.r and cell.x and (cell.w or not writable))
        _files(judge, i, party, node, ino, _identity if node.foreign else t, cell, raw)
        for child in reversed(node.children):
            stack.append((child, reach and dx.allowed))


def _files(judge: _Judge, i: int, party: Party, node: DirNode, dino: Inode, t: Transform, cell: Cell,
           raw: list[Denial]) -> None:
    writable = party.needs_write
    sticky = writable and cell.w and bool(dino.mode & stat.S_ISVTX)
    for fg in node.files:
        ino = t(fg.inode)
        cell.files += fg.count
        dr = judge.decide(i, ino, R)
        if dr.allowed:
            cell.files_r += fg.count
        else:
            raw.append(Denial(party.name, "file-read", node.rel, ino, dr, fg.count, fg.example))
        if writable:
            dw = judge.decide(i, ino, W, True)
            if dw.allowed:
                cell.files_w += fg.count
            else:
                raw.append(Denial(party.name, "rofs" if dw.errno == "EROFS" else "file-write", node.rel, ino, dw,
                                  fg.count, fg.example))
        if sticky and sticky_blocks(dino, ino, party.cred):
            raw.append(Denial(party.name, "sticky", node.rel, dino, None, fg.count, fg.example))
    if sticky:
        for child in node.children:
            if sticky_blocks(dino, t(child.inode), party.cred):
                raw.append(Denial(party.name, "sticky", node.rel, dino, None, 1, child.name))
    if not (cell.reach and cell.x):
        cell.files_r = cell.files_w = 0
    cell.files_denied = cell.files_r < cell.files or (writable and cell.files_w < cell.files)


def _forecast(scan: Scan, parties: list[Party], judge: _Judge, t: Transform, cells: dict[str, list[Cell]],
              raw: list[Denial]) -> dict[str, tuple[Creation, Creation]]:
    """What each writer creates in each directory, and whether every other party can then do its job."""
    made: dict[tuple, tuple[Creation, Creation]] = {}
    outcome: dict[tuple, list[Denial]] = {}
    creations: dict[str, tuple[Creation, Creation]] = {}
    writers = [i for i, p in enumerate(parties) if p.needs_write]
    for node in scan.preorder():
        row = cells[node.rel]
        dino = node.inode if node.foreign else t(node.inode)
        for c in writers:
            if not row[c].w:
                continue
            creator = parties[c]
            key = (dino, c)
            pair = made.get(key)
            if pair is None:
                pair = made[key] = (new_inode(dino, creator.cred, creator.umask, False),
                                    new_inode(dino, creator.cred, creator.umask, True))
            creations.setdefault(creator.name, pair)  # the first directory (pre-order) it can write
            for q, other in enumerate(parties):
                if q == c or not (row[q].reach and row[q].x):
                    continue
                okey = (dino, c, q)
                found = outcome.get(okey)
                if found is None:
                    found = outcome[okey] = _judge_new(judge, q, other, creator, pair, node)
                for d in found:
                    raw.append(Denial(d.party, d.kind, node.rel, d.inode, d.decision, 1, creator=d.creator,
                                      creation=d.creation))
    return creations


def _judge_new(judge: _Judge, q: int, other: Party, creator: Party, pair: tuple[Creation, Creation],
               node: DirNode) -> list[Denial]:
    out = []
    fnew, dnew = pair
    want_f = R | W if other.needs_write else R
    want_d = R | W | X if other.needs_write else R | X
    df = judge.decide(q, fnew.inode, want_f, other.needs_write)
    if not df.allowed:
        out.append(Denial(other.name, "new-file", node.rel, fnew.inode, df, creator=creator.name, creation=fnew))
    dd = judge.decide(q, dnew.inode, want_d, other.needs_write)
    if not dd.allowed:
        out.append(Denial(other.name, "new-dir", node.rel, dnew.inode, dd, creator=creator.name, creation=dnew))
    return out


def _group(raw: list[Denial]) -> list[Denial]:
    """One denial per (party, kind, attributes, reason): big trees repeat the same cause many times."""
    out: dict[tuple, Denial] = {}
    places: dict[tuple, set[str]] = {}
    for d in raw:
        k = d.key()
        g = out.get(k)
        if g is None:
            out[k] = Denial(d.party, d.kind, d.rel, d.inode, d.decision, d.count, d.example, d.creator, d.creation,
                            d.dirs, [d.rel])
            places[k] = {d.rel}
            continue
        g.count += d.count
        g.dirs += d.dirs
        seen = places[k]
        if d.rel not in seen:
            seen.add(d.rel)
            g.ndirs += 1
            if len(g.rels) < MAX_LISTED:
                g.rels.append(d.rel)
    return list(out.values())
