"""The parties of ``podsec perms``: containers that mount the path, and extra identities from ``--identity``.

A container's credentials come from :func:`podsec.resolve.resolve_pod` (the same uid, gid, groups and
effective capabilities ``explain`` and ``run`` use). Which host directory it sees follows the volume:
``hostPath`` (symlinks on the host followed, like the kubelet), a claim mapped with ``--volume-dir
CLAIM=DIR``, or an ``nfs`` volume mapped with ``--volume-dir SERVER:/EXPORT=DIR`` (or used as is when the
server is this machine); ``subPath`` narrows it. An extra identity is a user of the host (an SMB or NFS
user of a NAS, an admin): it reaches the path from ``/``.

Assumptions are recorded on the party, never hidden: an image podsec cannot read means its USER is
taken as root (the Kubernetes default for an image without USER) and its group as 0.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podsec.errors import InputError
from podsec.kernel.access import Cred, nfs_server_cred, squash

LOCAL_NFS_SERVERS = frozenset({"localhost", "127.0.0.1", "::1"})
CONTAINER_KINDS = ("init", "container")
HOST_ROOT_CAPS = frozenset({"CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_CHOWN"})
"""The file capabilities of root on the host (all of them; only these four matter here)."""
DEFAULT_UMASK = 0o022
"""runc's default umask for container processes (and the usual one of host users)."""


@dataclass(frozen=True, slots=True)
class View:
    """How a container reaches the path: which host directory is mounted where, and how."""

    host_dir: str
    """The host directory mounted (after ``subPath``), real path."""
    mount_path: str
    """Where the container sees ``host_dir``."""
    volume: str
    volume_type: str
    read_only: bool
    why_read_only: str = ""
    nfs: bool = False
    rel_root: str = ""
    """The part of the scanned tree the container sees ("" = all of it)."""
    above: tuple[str, ...] = ()
    """Host directories from ``host_dir`` down to the path's parent that it must be able to search."""

    def container_path(self, scanned_root: str, rel: str) -> str:
        """The path a directory of the scanned tree has inside the container."""
        host = os.path.join(scanned_root, rel) if rel else scanned_root
        sub = os.path.relpath(host, self.host_dir)
        return self.mount_path if sub == "." else os.path.join(self.mount_path, sub)


@dataclass(slots=True)
class Party:
    """Someone whose access to the path is judged: a container or an extra identity."""

    name: str
    kind: str
    """``container`` or ``identity``."""
    client: Cred
    """The credentials of the process itself."""
    cred: Cred
    """The credentials the files are checked against (after NFS root squashing)."""
    needs_write: bool
    view: View | None = None
    """None for identities (the whole path, reached from ``/``)."""
    umask: int = DEFAULT_UMASK
    squashed: bool = False
    workload: Any = None
    """The :class:`podsec.manifest.kinds.Workload` a container comes from (manifest fixes)."""
    container_index: tuple[str, int] | None = None
    pod_fs_group: int | None = None
    pod_supplemental_groups: tuple[int, ...] = ()
    source: str = ""
    """``FILE:LINE`` of the workload, for messages."""
    workload_container: str = ""
    """The container's own name (``name`` may be prefixed with the workload to stay unique)."""
    assumptions: list[str] = field(default_factory=list)


def parse_identity(value: str) -> Party:
    """``NAME=UID:GID[,GROUP…]`` (numbers or names known to this host) → an identity party."""
    name, sep, spec = value.partition("=")
    if not sep or not name or not spec:
        raise InputError(f"--identity {value!r}: expected NAME=UID:GID[,GROUP...]")
    ids, _, rest = spec.partition(",")
    uid_s, colon, gid_s = ids.partition(":")
    if not colon or not uid_s or not gid_s:
        raise InputError(f"--identity {value!r}: expected NAME=UID:GID[,GROUP...]")
    uid = _host_id(uid_s, "user", value)
    gid = _host_id(gid_s, "group", value)
    extra = [_host_id(g, "group", value) for g in rest.split(",") if g] if rest else []
    groups = frozenset({gid, *extra})
    caps = HOST_ROOT_CAPS if uid == 0 else frozenset()
    cred = Cred(uid, gid, groups, caps)
    return Party(name=name, kind="identity", client=cred, cred=cred, needs_write=True)


def _host_id(text: str, what: str, value: str) -> int:
    if text.isdigit():
        n = int(text)
        if n > 0xFFFFFFFE:
            raise InputError(f"--identity {value!r}: {what} id {n} out of range")
        return n
    try:
        return pwd.getpwnam(text).pw_uid if what == "user" else grp.getgrnam(text).gr_gid
    except KeyError:
        raise InputError(f"--identity {value!r}: no {what} {text!r} on this host") from None


# --------------------------------------------------------------------------------------------------
# containers


def _relation(host_dir: str, root: str) -> tuple[str, tuple[str, ...]] | None:
    """(rel_root, dirs above root to search) when ``host_dir`` and the scanned ``root`` overlap."""
    if host_dir == root:
        return "", ()
    if root.startswith(host_dir.rstrip("/") + "/"):
        above = []
        d = os.path.dirname(root)
        while True:
            above.append(d)
            if d == host_dir or d == "/":
                break
            d = os.path.dirname(d)
        return "", tuple(reversed(above))
    if host_dir.startswith(root.rstrip("/") + "/"):
        return host_dir[len(root.rstrip("/")) + 1 :], ()
    return None


def _nfs_host_dir(src: Mapping[str, Any], volume_dirs: Mapping[str, Path]) -> str | None:
    server = str(src.get("server") or "")
    export = os.path.normpath(str(src.get("path") or "/"))
    best: tuple[int, str] | None = None
    for key, directory in volume_dirs.items():
        kserver, colon, kpath = key.partition(":")
        if not colon or kserver != server:
            continue
        kpath = os.path.normpath(kpath or "/")
        if export == kpath or export.startswith(kpath.rstrip("/") + "/"):
            rest = os.path.relpath(export, kpath)
            target = os.fspath(directory) if rest == "." else os.path.join(directory, rest)
            if best is None or len(kpath) > best[0]:
                best = (len(kpath), target)
    if best is not None:
        return best[1]
    local = LOCAL_NFS_SERVERS | {socket.gethostname()}
    return export if server in local else None


def host_dir_of(
    volume: Mapping[str, Any], pod_name: str, volume_dirs: Mapping[str, Path]
) -> tuple[str | None, str, bool, str, str]:
    """(host directory or None, volume type, source read-only, why, note) for one pod volume."""
    if isinstance(volume.get("hostPath"), dict):
        path = volume["hostPath"].get("path")
        return (path if isinstance(path, str) and path else None), "hostPath", False, "", ""
    if isinstance(volume.get("persistentVolumeClaim"), dict):
        src = volume["persistentVolumeClaim"]
        claim = str(src.get("claimName") or "")
        d = volume_dirs.get(claim)
        ro = src.get("readOnly") is True
        note = "" if d else f"claim {claim!r} has no --volume-dir {claim}=DIR"
        return (os.fspath(d) if d else None), "persistentVolumeClaim", ro, "persistentVolumeClaim readOnly", note
    if isinstance(volume.get("ephemeral"), dict):
        from podsec.volumes.claims import ephemeral_claim_name

        claim = ephemeral_claim_name(pod_name, str(volume.get("name") or ""))
        d = volume_dirs.get(claim)
        return (os.fspath(d) if d else None), "ephemeral", False, "", ""
    if isinstance(volume.get("nfs"), dict):
        src = volume["nfs"]
        d = _nfs_host_dir(src, volume_dirs)
        note = "" if d else (f"nfs {src.get('server')}:{src.get('path')} is not mapped; pass "
                             f"--volume-dir {src.get('server')}:{src.get('path')}=DIR")
        return d, "nfs", src.get("readOnly") is True, "nfs readOnly", note
    return None, "", False, "", ""


@dataclass(slots=True)
class PartySet:
    parties: list[Party]
    notes: list[str]


ImageLookup = Callable[[str], Any]


def container_parties(
    workloads: Iterable[Any],
    root: str,
    volume_dirs: Mapping[str, Path],
    *,
    root_squash: bool = False,
    images: ImageLookup | None = None,
) -> PartySet:
    """Every init and app container with a volume mount that overlaps ``root`` (a real path)."""
    from podsec.resolve import resolve_pod

    parties: list[Party] = []
    notes: list[str] = []
    for wl in workloads:
        pod = resolve_pod(wl.pod_metadata(), wl.spec, images, kind=wl.kind)
        volumes = {v.get("name"): v for v in wl.spec.get("volumes") or () if isinstance(v, dict)}
        for rc in pod.containers:
            if rc.kind not in CONTAINER_KINDS:
                continue
            views: list[View] = []
            for m in rc.mounts:
                vol = volumes.get(m.name)
                if vol is None:
                    continue
                host, vtype, src_ro, why_src, note = host_dir_of(vol, pod.name, volume_dirs)
                if host is None:
                    if note:
                        notes.append(f"{wl.kind}/{wl.name} container {rc.name}: {note}")
                    continue
                real = os.path.realpath(host) if vtype == "hostPath" else os.path.abspath(host)
                if m.sub_path_expr:
                    notes.append(f"{wl.kind}/{wl.name} container {rc.name}: subPathExpr on volume {m.name!r} "
                                 "is not expanded; the mount is left out")
                    continue
                if m.sub_path:
                    real = os.path.normpath(os.path.join(real, m.sub_path))
                rel = _relation(real, root)
                if rel is None:
                    continue
                ro = m.read_only or src_ro
                why = "volumeMount readOnly" if m.read_only else (why_src if src_ro else "")
                views.append(View(real, m.mount_path, m.name, vtype, ro, why, vtype == "nfs", rel[0], rel[1]))
            if not views:
                continue
            # The widest writable view wins (a container mounting the tree twice acts through the best one).
            views.sort(key=lambda v: (v.read_only, len(v.rel_root), len(v.above)))
            view = views[0]
            parties.append(_container_party(wl, pod, rc, view, root_squash))
    return PartySet(parties, notes)


def _container_party(wl: Any, pod: Any, rc: Any, view: View, root_squash: bool) -> Party:
    ident = rc.identity
    assumptions: list[str] = []
    uid = ident.uid
    if uid is None:
        uid = 0
        assumptions.append("uid 0: the image's USER is unknown (load the image with podsec image load, or set "
                           "runAsUser)")
    gid = ident.gid
    if gid is None:
        gid = 0
        assumptions.append("gid 0: the image's /etc/passwd is unknown (set runAsGroup)")
    groups = set(ident.groups or ())
    groups.add(gid)
    if ident.groups is None:
        if pod.fs_group is not None:
            groups.add(pod.fs_group)
        groups.update(pod.supplemental_groups)
    caps = rc.capabilities.effective
    if ident.uid is None:
        from podsec.oci.caps import CAPABILITY_NUMBERS

        caps = tuple(c for c in rc.capabilities.bounding if c in CAPABILITY_NUMBERS)  # root: effective = bounding
    client = Cred(uid, gid, frozenset(groups), frozenset(caps))
    if view.nfs or root_squash:
        cred = nfs_server_cred(client, root_squash)
    else:
        cred = client
    squashed = root_squash and (client.uid == 0 or client.gid == 0 or 0 in client.groups)
    if root_squash and not view.nfs:
        assumptions.append("reaches the files as an NFS client (--root-squash)")
    name = rc.name
    idx = ("initContainers" if rc.kind == "init" else "containers", rc.index)
    return Party(
        name=name,
        kind="container",
        client=client,
        cred=cred,
        needs_write=not view.read_only,
        view=view,
        squashed=squashed,
        workload=wl,
        container_index=idx,
        pod_fs_group=pod.fs_group,
        pod_supplemental_groups=pod.supplemental_groups,
        source=f"{wl.obj.source.display}:{wl.obj.line_of()}",
        workload_container=rc.name,
        assumptions=assumptions,
    )


def unique_names(parties: list[Party]) -> None:
    """Containers with the same name in different workloads become ``workload/container``."""
    seen: dict[str, int] = {}
    for p in parties:
        seen[p.name] = seen.get(p.name, 0) + 1
    for p in parties:
        if p.kind == "container" and seen[p.name] > 1:
            p.name = f"{p.workload.name}/{p.name}"
    names = [p.name for p in parties]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(f"two parties are called {sorted(dup)[0]!r}: rename the --identity")


def squash_note(p: Party) -> str:
    return (f"uid {p.client.uid} → {p.cred.uid}, gid {p.client.gid} → {p.cred.gid} (root_squash)"
            if p.squashed else "")


__all__ = ["Party", "PartySet", "View", "container_parties", "parse_identity", "squash", "unique_names"]


@dataclass(slots=True)
class Gathered:
    """Everyone who uses the shared path, with what to tell the user about them."""

    parties: list[Party]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def gather_parties(files: Sequence[str], root: str, volume_dirs: Mapping[str, Any], identities: Sequence[str], *,
                   root_squash: bool = False, images: ImageLookup | None = None) -> Gathered:
    """The parties of ``podsec perms``: every container of the workloads in ``files`` (admitted as every command
    admits them) that mounts ``root``, then each ``--identity`` (none at all: the caller says so)."""
    from podsec.admit import admit_files

    out = Gathered([])
    if files:
        found = container_parties([p.workload for p in admit_files(files).pods], root, volume_dirs,
                                  root_squash=root_squash, images=images)
        out.parties += found.parties
        out.warnings += found.notes
    out.parties += [parse_identity(v) for v in identities]
    unique_names(out.parties)
    for p in out.parties:
        if p.view is not None and p.view.volume_type in ("persistentVolumeClaim", "ephemeral") and \
                p.pod_fs_group is not None and p.needs_write:
            out.notes.append(f"{p.name}: the kubelet gives claim volume {p.view.volume!r} group {p.pod_fs_group} "
                             f"(and g+rw) at every start of {p.workload.kind}/{p.workload.name}; this report "
                             "shows the files as they are now")
    return out
