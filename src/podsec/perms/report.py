"""Render ``podsec perms``: the matrix (directories × parties), the denial sentences, new files, the fixes.

Big trees are summarised: a subtree whose directories and files all give every party the same outcome
becomes one row (``books/** 1,204 dirs, 50,000 files``); beyond ``max_rows`` rows, deeper levels are
folded into their ancestor with ``~`` where the subtree is mixed. A rich table on a terminal, plain
aligned columns when piped, ``-o json`` for machines.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import Any, TextIO

from podsec.perms.explain import group_name, ids, inode_desc, mode_str, owner, party_desc, sentence
from podsec.perms.fixes import Plan
from podsec.perms.identity import Party
from podsec.perms.matrix import Cell, Result
from podsec.perms.scan import DirNode

LEGEND = ("r list, w create/rename/delete, x enter; files: r read, w write; ~ some of them; "
          "! a denial; . not mounted there; (ro) read-only mount")


@dataclass(slots=True)
class Row:
    rel: str
    label: str
    kind: str
    """dir | files | subtree."""
    owner: str
    mode: str
    dirs: int
    files: int
    cells: list[str]
    denied: list[bool]

    def to_json(self, parties: list[Party]) -> dict[str, Any]:
        return {"path": self.rel, "kind": self.kind, "owner": self.owner, "mode": self.mode, "dirs": self.dirs,
                "files": self.files,
                "access": {p.name: {"text": c, "denied": d} for p, c, d in zip(parties, self.cells, self.denied)}}


def _dir_text(c: Cell) -> str:
    if not c.visible:
        return "."
    return c.letters() + ("!" if c.denied else "")


def _files_text(c: Cell) -> str:
    if not c.visible:
        return "."
    return c.file_letters() + ("!" if c.files_denied else "")


def _mode_text(node: DirNode) -> str:
    ino = node.inode
    acl = "+" if ino.acl is not None or ino.default_acl is not None else ""
    return mode_str(ino) + acl


def _files_attrs(node: DirNode) -> tuple[str, str]:
    owners = {owner(f.inode) for f in node.files}
    modes = {f"{stat.S_IMODE(f.inode.mode):04o}" + ("+" if f.inode.acl is not None else "") for f in node.files}
    return (owners.pop() if len(owners) == 1 else "mixed"), (modes.pop() if len(modes) == 1 else "mixed")


def _merge_letters(values: list[str]) -> str:
    """Per position: the letter if every value has it, '-' if none, '~' if some."""
    vals = [v.rstrip("!") for v in values if v not in (".", "")]
    if not vals:
        return "." if all(v == "." for v in values) else ""
    width = max(len(v) for v in vals)
    out = []
    for i in range(width):
        chars = {v[i] for v in vals if len(v) > i}
        letters = chars - {"-", "~"}
        if "~" in chars or (letters and "-" in chars):
            out.append("~")
        elif letters:
            out.append(letters.pop())
        else:
            out.append("-")
    return "".join(out) + ("!" if any(v.endswith("!") for v in values) else "")


def build_rows(result: Result, max_rows: int = 40) -> list[Row]:
    """The summarised rows of the matrix (see the module docstring)."""
    scan = result.scan
    n = len(result.parties)
    dsig: dict[str, tuple] = {}
    fsig: dict[str, tuple] = {}
    for node in scan.preorder():
        cells = result.cells[node.rel]
        dsig[node.rel] = (owner(node.inode), _mode_text(node), tuple(_dir_text(c) for c in cells))
        fsig[node.rel] = tuple(_files_text(c) for c in cells) if node.nfiles else ()
    uniform: dict[str, bool] = {}
    fsets: dict[str, set[tuple]] = {}

    def settle(node: DirNode) -> None:
        fs = {fsig[node.rel]} if fsig[node.rel] else set()
        ok = True
        for c in node.children:
            ok = ok and uniform[c.rel] and dsig[c.rel] == dsig[node.rel]
            fs |= fsets[c.rel]
        uniform[node.rel] = ok and len(fs) <= 1
        fsets[node.rel] = fs if len(fs) <= 1 else {(), ("mixed",)}

    for node in sorted(scan.preorder(), key=lambda x: -x.rel.count("/") if x.rel else 1):
        settle(node)

    def rows_for(limit: int | None) -> list[Row]:
        out: list[Row] = []
        stack: list[tuple[DirNode, int]] = [(scan.tree, 0)]
        while stack:
            node, depth = stack.pop()
            indent = "  " * depth
            name = scan.root.rstrip("/") + "/" if not node.rel else node.name + "/"
            if node.children and (uniform[node.rel] or (limit is not None and depth >= limit)):
                out.append(_subtree_row(result, node, indent + name + "**", n))
                continue
            cells = result.cells[node.rel]
            out.append(Row(node.rel, indent + name, "dir", owner(node.inode), _mode_text(node), 1, node.nfiles,
                           [_dir_text(c) for c in cells], [c.denied for c in cells]))
            if node.nfiles:
                fo, fm = _files_attrs(node)
                out.append(Row(node.rel, indent + f"  {node.nfiles:,} file{'s' if node.nfiles != 1 else ''}",
                               "files", fo, fm, 0, node.nfiles, [_files_text(c) for c in cells],
                               [c.files_denied for c in cells]))
            for child in reversed(node.children):
                stack.append((child, depth + 1))
        return out

    rows = rows_for(None)
    limit = max((r.rel.count("/") + 1 for r in rows if r.rel), default=0)
    while len(rows) > max_rows and limit >= 0:
        limit -= 1
        rows = rows_for(max(limit, 0))
        if limit <= 0:
            break
    return rows


def _subtree_row(result: Result, node: DirNode, label: str, n: int) -> Row:
    owners: set[str] = set()
    modes: set[str] = set()
    dir_texts: list[list[str]] = [[] for _ in range(n)]
    file_texts: list[list[str]] = [[] for _ in range(n)]
    denied = [False] * n
    stack = [node]
    while stack:
        cur = stack.pop()
        owners.add(owner(cur.inode))
        modes.add(_mode_text(cur))
        for i, c in enumerate(result.cells[cur.rel]):
            dir_texts[i].append(_dir_text(c))
            if cur.nfiles:
                file_texts[i].append(_files_text(c))
            denied[i] = denied[i] or c.denied or c.files_denied
        stack.extend(cur.children)
    cells = []
    for i in range(n):
        d = _merge_letters(dir_texts[i])
        f = _merge_letters(file_texts[i]) if file_texts[i] else ""
        text = d if not f or f == "." else f"{d.rstrip('!')} {f.rstrip('!')}"
        cells.append(text + ("!" if denied[i] and not text.endswith("!") else ""))
    counts = f"{node.tdirs:,} dirs, {node.tfiles:,} file{'' if node.tfiles == 1 else 's'}"
    return Row(node.rel, f"{label} ({counts})", "subtree",
               owners.pop() if len(owners) == 1 else "mixed", modes.pop() if len(modes) == 1 else "mixed",
               node.tdirs, node.tfiles, cells, denied)


# --------------------------------------------------------------------------------------------------
# text


def party_lines(result: Result) -> list[str]:
    scan = result.scan
    out = []
    for p in result.parties:
        c = p.cred
        caps = ",".join(sorted(x.removeprefix("CAP_") for x in p.client.caps
                                if x in ("CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_CHOWN")))
        who = f"uid {p.client.uid}, gid {p.client.gid}, groups {ids(p.client.groups)}"
        if p.squashed:
            who += f" (as {c.uid}:{c.gid}, groups {ids(c.groups)} after root_squash)"
        who += f"; capabilities {caps}" if caps else "; no file capabilities"
        if p.view is not None:
            v = p.view
            sees = scan.path(v.rel_root)
            where = f"{sees} at {v.container_path(scan.root, v.rel_root)}"
            mount = f"{v.volume_type} volume {v.volume!r}, {'read-only: ' + v.why_read_only if v.read_only else 'rw'}"
            line = f"{p.name}: {p.workload.kind}/{p.workload.name} ({p.source}); {who}; sees {where} ({mount})"
        else:
            line = f"{p.name}: --identity on this host; {who}; needs read and write"
        line += f"; umask {p.umask:03o}"
        out.append(line)
        for a in p.assumptions:
            out.append(f"  assumed: {a}")
    return out


def creation_lines(result: Result) -> list[str]:
    out = []
    for p in result.parties:
        pair = result.creations.get(p.name)
        if pair is None:
            continue
        f, d = pair
        out.append(f"{p.name} creates files as {owner(f.inode)} {mode_str(f.inode)} and directories as "
                   f"{owner(d.inode)} {mode_str(d.inode)} ({f.how}{', setgid group' if f.setgid_group else ''})")
    return out


def denial_lines(result: Result) -> list[str]:
    by_name = {p.name: p for p in result.parties}
    return [sentence(d, result.scan, by_name) for d in result.denials]


def _table_plain(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), *(fmt.format(*r).rstrip() for r in rows)]


def _headers(result: Result) -> list[str]:
    return ["PATH", "OWNER", "MODE", *(p.name + (" (ro)" if not p.needs_write else "") for p in result.parties)]


def render(result: Result, plan: Plan | None, out: TextIO, *, color: bool, max_rows: int = 40,
           applied: dict[str, Any] | None = None, parties: bool = True) -> None:
    """The whole report: parties, matrix, denials, new files, fixes (and what --apply did)."""
    scan = result.scan
    rows = build_rows(result, max_rows)
    headers = _headers(result)
    body = [[r.label, r.owner, r.mode, *r.cells] for r in rows]
    head = (f"{scan.root}: {scan.dirs:,} directories, {scan.files:,} files"
            + (f", {scan.symlinks:,} symlinks (not followed)" if scan.symlinks else "")
            + (" on a read-only filesystem" if scan.read_only_fs else "") + f"; scanned in {scan.seconds:.2f}s")
    notes = [f"{scan.path(m)} is a mount point: judged, never changed by --apply"
             for m in scan.mounts]
    if scan.hardlinked:
        notes.append(f"{scan.hardlinked:,} files have other hard links: --apply changes them under every name, "
                     "also outside the path")
    if notes:
        head += "\n" + "\n".join(f"note: {n}" for n in notes)
    sections: list[tuple[str, list[str]]] = [("PARTIES", party_lines(result))] if parties else []
    denials = denial_lines(result)
    sections.append((f"DENIALS ({len(denials):,})" if denials else "DENIALS", denials or
                     ["none: every party can do its job"]))
    sections.append(("NEW FILES", creation_lines(result)))
    if plan is not None:
        sections.append(("FIXES (least privilege first)", fix_lines(plan)))
    if applied is not None:
        sections.append(("APPLIED", applied_lines(applied)))
    if color:
        _render_rich(out, head, headers, rows, sections)
        return
    lines = [head, ""]
    lines += _table_plain(headers, body)
    lines.append(f"({LEGEND})")
    for title, items in sections:
        if not items:
            continue
        lines.append("")
        lines.append(title)
        lines += ["  " + i for i in items]
    out.write("\n".join(lines) + "\n")


def _render_rich(out: TextIO, head: str, headers: list[str], rows: list[Row],
                 sections: list[tuple[str, list[str]]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, highlight=False)
    console.print(Text(head, style="bold"))
    table = Table(header_style="bold", show_edge=False, pad_edge=False)
    for h in headers:
        table.add_column(h, no_wrap=True, min_width=len(h))
    for r in rows:
        cells: list[Text] = []
        for text, bad in zip(r.cells, r.denied):
            style = "dim" if text == "." else ("bold red" if bad or text.endswith("!") else "green")
            cells.append(Text(text, style=style))
        table.add_row(Text(r.label, style="dim" if r.kind == "files" else ""), r.owner, r.mode, *cells)
    console.print(table)
    console.print(Text(f"({LEGEND})", style="dim"))
    for title, items in sections:
        if not items:
            continue
        console.print()
        console.print(Text(title, style="bold"))
        for i in items:
            style = "red" if title.startswith("DENIALS (") else ""
            console.print(Text("  " + i, style=style))


def fix_lines(plan: Plan) -> list[str]:
    if not plan.fixes:
        return ["nothing to fix"]
    out: list[str] = []
    for f in plan.fixes:
        tag = "applied by --fix --apply" if f.applied else "manual"
        out.append(f"{f.rank}. {f.title} [{tag}]")
        out.append(f"   {f.why}")
        for c in f.commands:
            out.append(f"   $ {c}")
        for s in f.snippets:
            out.extend("   " + line for line in s.splitlines())
        for a in f.alternatives:
            out.append(f"   {a}")
    ch = plan.changes
    if ch.paths:
        out.append(f"--apply would change {ch.paths:,} paths: group of {ch.group:,}, mode of {ch.mode:,}, "
                   f"ACL of {ch.acl:,}, default ACL of {ch.default_acl:,}; never the owner, never other's bits")
    after = plan.after
    if after.denied:
        by_name = {p.name: p for p in after.parties}
        out.append(f"after these fixes {after.total():,} denial(s) would remain:")
        out += ["  " + sentence(d, after.scan, by_name) for d in after.denials]
    else:
        out.append("after these fixes every party can do its job (judged on the tree as they would leave it)")
    return out


def applied_lines(applied: dict[str, Any]) -> list[str]:
    lines = [f"{applied['visited']:,} paths walked in {applied['seconds']:.2f}s"
             + (f" (resumed an interrupted apply from {applied['resumedFrom']})" if applied.get("resumedFrom") else "")]
    for w in applied.get("warnings", [])[:20]:
        lines.append(f"warning: {w}")
    if applied.get("manual"):
        lines.append("manual steps above remain (manifests or paths outside --path)")
    return lines


# --------------------------------------------------------------------------------------------------
# JSON


def party_json(p: Party) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": p.name, "kind": p.kind,
        "uid": p.client.uid, "gid": p.client.gid, "groups": sorted(p.client.groups),
        "capabilities": sorted(p.client.caps),
        "asSeenByFiles": {"uid": p.cred.uid, "gid": p.cred.gid, "groups": sorted(p.cred.groups),
                          "capabilities": sorted(p.cred.caps)},
        "rootSquashed": p.squashed, "needs": "rw" if p.needs_write else "r", "umask": f"{p.umask:04o}",
        "assumptions": p.assumptions, "description": party_desc(p),
    }
    if p.view is not None:
        v = p.view
        d["workload"] = f"{p.workload.kind}/{p.workload.name}"
        d["container"] = p.workload_container
        d["source"] = p.source
        d["mount"] = {"volume": v.volume, "type": v.volume_type, "hostPath": v.host_dir, "mountPath": v.mount_path,
                      "readOnly": v.read_only, "readOnlyBecause": v.why_read_only or None}
    return d


def to_json(result: Result, plan: Plan | None, max_rows: int = 40, applied: dict[str, Any] | None = None,
            final: Result | None = None) -> dict[str, Any]:
    """``-o json``; ``final`` is the tree re-scanned after ``--apply``."""
    scan = result.scan
    by_name = {p.name: p for p in result.parties}
    doc: dict[str, Any] = {
        "path": scan.root,
        "scanned": {"directories": scan.dirs, "files": scan.files, "symlinks": scan.symlinks, "other": scan.others,
                    "readOnlyFilesystem": scan.read_only_fs, "seconds": round(scan.seconds, 3),
                    "hardLinkedFiles": scan.hardlinked, "mountPoints": [scan.path(m) for m in scan.mounts]},
        "parties": [party_json(p) for p in result.parties],
        "rows": [r.to_json(result.parties) for r in build_rows(result, max_rows)],
        "denials": [_denial_json(d, result, by_name) for d in result.denials],
        "newFiles": _creations_json(result),
        "ok": not result.denied,
    }
    if plan is not None:
        doc["fixes"] = [f.to_json() for f in plan.fixes]
        doc["changes"] = plan.changes.to_json()
        doc["treeFix"] = plan.tree.to_json()
        doc["after"] = {"ok": not plan.after.denied,
                        "denials": [_denial_json(d, plan.after, {p.name: p for p in plan.after.parties})
                                    for d in plan.after.denials]}
    if applied is not None:
        doc["applied"] = applied
    if final is not None:
        doc["final"] = {"ok": not final.denied, "rows": [r.to_json(final.parties) for r in build_rows(final, max_rows)],
                        "denials": [_denial_json(d, final, by_name) for d in final.denials]}
    return doc


def _denial_json(d: Any, result: Result, by_name: dict[str, Party]) -> dict[str, Any]:
    dec = d.decision
    out = {"party": d.party, "kind": d.kind, "path": result.scan.path(d.rel), "count": d.count,
           "sentence": sentence(d, result.scan, by_name), "inode": inode_desc(d.inode)}
    if d.example:
        out["example"] = d.example
    if d.creator:
        out["creator"] = d.creator
    if dec is not None:
        out["reason"] = {"class": dec.klass, "errno": dec.errno or "EACCES", "entries": list(dec.entries),
                         "mask": dec.mask, "capabilitiesThatWouldHelp": list(dec.missing_caps)}
    return out


def _creations_json(result: Result) -> list[dict[str, Any]]:
    out = []
    for name, (f, d) in result.creations.items():
        out.append({"party": name,
                    "file": {"owner": f.inode.uid, "group": f.inode.gid, "groupName": group_name(f.inode.gid),
                             "mode": mode_str(f.inode), "acl": f.inode.acl.text() if f.inode.acl else None,
                             "how": f.how},
                    "directory": {"owner": d.inode.uid, "group": d.inode.gid, "mode": mode_str(d.inode),
                                  "acl": d.inode.acl.text() if d.inode.acl else None, "how": d.how}})
    return out
