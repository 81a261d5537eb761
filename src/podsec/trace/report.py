"""``podsec trace`` output: the text a person reads and the JSON a program reads, from the same traces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from podsec.trace.group import HIDES_EMPTY, SEEDED
from podsec.trace.model import Change, ContainerTrace, MountDir, PodTrace

DEFAULT_MAX_FILES = 40


def human_size(n: int) -> str:
    """Decimal units, 3 significant digits (``512 B``, ``12.3 kB``, ``1.05 MB``)."""
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000:
            return f"{size:.3g} {unit}"
    return f"{size:.3g} PB"


def _files(n: int) -> str:
    return f"{n} file{'' if n == 1 else 's'}"


# -- JSON --------------------------------------------------------------------------------------------


def change_dict(c: Change) -> dict[str, Any]:
    return {"path": c.path, "action": c.action, "type": c.type, "bytes": c.size, "size": human_size(c.size)}


def container_dict(c: ContainerTrace) -> dict[str, Any]:
    return {
        "name": c.name,
        "init": c.init,
        "ran": c.ran,
        "status": c.status,
        "exitCode": c.exit_code,
        "stopped": c.stopped,
        "readOnlyRootFilesystemInManifest": c.readonly_in_manifest,
        "mountDirs": list(c.mount_dirs),
        "mounts": [{"path": m.path, "reason": m.reason, "files": m.files, "bytes": m.size,
                    "size": human_size(m.size), "hides": m.hides, "seed": m.seed} for m in c.mounts],
        "problems": list(c.problems),
        "fixable": c.fixable,
        "verified": c.verified,
        "rounds": c.rounds,
        "stopCode": c.stop_code,
        "user": list(c.user) if c.user else None,
        "changes": [change_dict(x) for x in c.changes],
        "volumeWrites": [change_dict(x) for x in c.volume_writes],
        "logTail": list(c.log_tail),
    }


def pod_dict(p: PodTrace) -> dict[str, Any]:
    return {
        "file": p.display or p.source,
        "source": p.source,
        "document": p.doc_index,
        "line": p.line,
        "kind": p.kind,
        "name": p.name,
        "namespace": p.namespace,
        "seconds": round(p.duration, 3),
        "error": p.error,
        "interrupted": p.interrupted,
        "listening": list(p.listening),
        "fsGroup": p.fs_group,
        "notes": list(p.notes),
        "containers": [container_dict(c) for c in p.containers],
    }


def traces_dict(pods: Sequence[PodTrace]) -> dict[str, Any]:
    return {"pods": [pod_dict(p) for p in pods]}


# -- text --------------------------------------------------------------------------------------------


def _under(path: str, d: str) -> bool:
    return path == d or path.startswith(d.rstrip("/") + "/")


def reason_text(m: MountDir) -> str:
    """Why a mount is safe, with what it hides."""
    if m.reason == HIDES_EMPTY and m.hides:
        return f"hides only {m.hides}"
    if m.reason == SEEDED:
        return f"copied in from the image first ({m.hides})" if m.hides else m.reason
    return m.reason


def _container_text(c: ContainerTrace, max_files: int) -> list[str]:
    kind = "init container" if c.init else "container"
    ro = "; read-only root in the manifest, traced writable" if c.readonly_in_manifest else ""
    out = [f"  {kind} {c.name!r}: {c.status}{ro}"]
    for line in c.log_tail:
        out.append(f"    | {line}")
    if not c.ran:
        out += [f"    ! {p}" for p in c.problems]
        return out
    if c.exit_code:
        out.append(f"    ! it failed (exit {c.exit_code}): only what it wrote before failing is below; "
                   "fix that and trace again (--logs shows its output)")
    if c.mounts:
        width = max(len(m.path) for m in c.mounts)
        amounts = [f"{_files(m.files)}, {human_size(m.size)}" if m.files else "temporary files only"
                   for m in c.mounts]
        awidth = max(len(a) for a in amounts)
        out.append("    mount an emptyDir at:")
        for m, amount in zip(c.mounts, amounts):
            out.append(f"      {m.path:<{width}}  {amount:<{awidth}}  {reason_text(m)}")
        if c.verified:
            runs = f"{c.rounds} more runs" if c.rounds > 1 else "another run"
            out.append(f"    checked by {runs} under these mounts, as long: {c.verified}")
    elif not c.changes:
        out.append("    no writes to the root filesystem: it runs with readOnlyRootFilesystem as it is")
    if c.problems:
        out.append("    problems (an emptyDir would not fix these):")
        out += [f"    ! {p}" for p in c.problems]
    if c.volume_writes:
        out.append(f"    writes inside mounted volumes (already writable, {len(c.volume_writes)}):")
        out += _change_lines(c.volume_writes, max_files, [])
    if c.changes:
        out.append(f"    writes to the root filesystem ({len(c.changes)}):")
        out += _change_lines(c.changes, max_files, [m.path for m in c.mounts])
    return out


def _change_lines(changes: Sequence[Change], max_files: int, dirs: Sequence[str]) -> list[str]:
    out = []
    for ch in changes[:max_files]:
        size = "" if ch.type == "dir" and ch.action != "deleted" else f"  {human_size(ch.size)}"
        out.append(f"      {ch.action:<8} {ch.type:<7} {ch.path}{size}")
    rest = changes[max_files:]
    if rest:
        groups: dict[str, list[Change]] = {}
        for ch in rest:
            key = next((d for d in dirs if _under(ch.path, d)), "elsewhere")
            groups.setdefault(key, []).append(ch)
        for key, chs in groups.items():
            where = "elsewhere" if key == "elsewhere" else f"under {key}"
            total = sum(x.size for x in chs if x.type != "dir")
            out.append(f"      … and {len(chs)} more {where} ({human_size(total)})")
    return out


def render_text(pods: Sequence[PodTrace], max_files: int = DEFAULT_MAX_FILES) -> str:
    """Per pod and container: where to mount emptyDirs and why, problems, volume writes, then the files."""
    out: list[str] = []
    for p in pods:
        where = f"{p.display or p.source}:{p.line}" if p.line else (p.display or p.source)
        state = " (interrupted)" if p.interrupted else ""
        out.append(f"{p.kind}/{p.name} ({where}) — traced {p.duration:.1f}s{state}")
        if p.error:
            out.append(f"  ! the pod could not run: {p.error}")
        if p.listening:
            out.append(f"  listening on {', '.join(p.listening)}")
        out += [f"  note: {n}" for n in p.notes]
        for c in p.containers:
            out += _container_text(c, max_files)
        out.append("")
    out.append(summary(pods))
    return "\n".join(out) + "\n"


def summary(pods: Sequence[PodTrace]) -> str:
    """One line: how many containers can go read-only, with how many mounts, which cannot and why."""
    containers = [c for p in pods for c in p.containers]
    fixable = [c for c in containers if c.fixable]
    mounts = sum(len(c.mount_dirs) for c in fixable)
    line = (f"{len(fixable)} of {len(containers)} container(s) can run with readOnlyRootFilesystem: true "
            f"given {mounts} emptyDir mount(s)")
    if any(c.verified for c in fixable):
        line += " (checked by running them again under the mounts)"
    if fixable:
        line += "; podsec trace -o yaml prints the manifest patched that way"
    failed = [c.name for c in containers if c.failed]
    if failed:
        line += (f"; {len(failed)} container(s) failed or never ran while traced ({', '.join(failed)}), so their "
                 "writes may be incomplete")
    blocked = [c.name for c in containers if not c.fixable and not c.failed]
    if blocked:
        line += f"; {len(blocked)} cannot ({', '.join(blocked)}): see their problems"
    return line + "."


def left_alone(pods: Sequence[PodTrace]) -> list[str]:
    """One line per traced container ``-o yaml`` leaves as it is, and why."""
    out = []
    for p in pods:
        for c in p.containers:
            if c.fixable:
                continue
            why = c.status if not c.ran else "; ".join(c.problems)
            out.append(f"{p.kind}/{p.name}: container {c.name!r} left as it is (making its root read-only would "
                       f"break it): {why}")
    return out


def patched_texts(inputs: Sequence[tuple[str, str, str]], pods: Sequence[PodTrace]) -> list[str]:
    """Every input file's text ((path, display, text) each), with each traced container made read-only and given
    its emptyDir mounts (and the init containers that seed them); a document keeps its text when any container
    of it cannot go read-only. Pure: the text edits are :func:`podsec.manifest.rewrite.patch_writable_mounts`."""
    from podsec.manifest.rewrite import patch_writable_mounts

    out = []
    for path, display, text in inputs:
        mounts: dict[tuple[int, str], list[str]] = {}
        seeds: dict[tuple[int, str], list[str]] = {}
        broken: set[tuple[int, str]] = set()
        groups: dict[int, int] = {}
        for p in pods:
            if p.source != path:
                continue
            if p.fs_group is not None:
                groups[p.doc_index] = p.fs_group
            for c in p.containers:  # items of one List share a document index: all of them must be fixable
                key = (p.doc_index, c.name)
                if c.fixable:
                    mounts[key] = sorted(set(mounts.get(key, [])) | set(c.mount_dirs))
                    seeds[key] = sorted(set(seeds.get(key, [])) | {m.path for m in c.mounts if m.seed})
                else:
                    broken.add(key)
        out.append(patch_writable_mounts(text, display, {k: v for k, v in mounts.items() if k not in broken},
                                         {k: v for k, v in seeds.items() if k not in broken}, groups))
    return out
