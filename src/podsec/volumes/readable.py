"""Who can read the files the kubelet writes into configMap, secret, projected and downwardAPI volumes.

Pure: from the pod spec and its resolved view. The kubelet's atomic writer creates each file with the
item's ``mode`` (else the volume's ``defaultMode``, 0644), owned by root; with ``fsGroup`` the group
becomes the fsGroup and the read bits for owner and group are added (0600 becomes 0640). Behind their
feature gates, ``fsUser`` (KEP-5280) and ``defaultUser``/``user`` (KEP-5936) make another uid the owner
(an item's ``user`` > ``defaultUser`` > ``fsUser``). A non-root process then reads a file as the kernel
decides (:mod:`podsec.kernel.access`): the owner bits if it is the owner, else the group bits if the file's
group is one of its groups, else the bits for others; CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH (root's by
default) read anything.
Projected ``serviceAccountToken`` and ``clusterTrustBundle`` sources are left out (the kubelet treats the
token specially, and a trust bundle is public).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from podsec.model import Path, ResolvedContainer, ResolvedPod

ATOMIC_TYPES = ("configMap", "secret", "downwardAPI", "projected")
DEFAULT_MODE = 0o644
_ITEM_KINDS = ("configMap", "secret", "downwardAPI")


@dataclass(frozen=True, slots=True)
class FileClass:
    """Files of one volume that share owner and mode: the volume's default, or one item."""

    item: str | None
    """The item's path, or None for every file that takes the volume's defaults."""
    uid: int
    gid: int
    mode: int
    field: Path
    """Where the mode comes from: ``defaultMode`` (or the volume when unset) or the item's ``mode``."""


@dataclass(frozen=True, slots=True)
class Unreadable:
    volume: str
    volume_type: str
    container: ResolvedContainer
    files: FileClass
    groups: tuple[int, ...] = ()
    """The container's groups known for sure (:func:`known_groups`): what the verdict was judged with."""


def source_mode(v: object, default: int) -> int:
    """A ``defaultMode``/``mode`` value as the kubelet uses it (the API server has validated the range)."""
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0o777 else default


def _uid(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def volume_file_owner(item_user: int | None, default_user: int | None, fs_user: int | None) -> tuple[int | None, str]:
    """Who owns a file of a configMap/secret/projected/downwardAPI volume, and by which field: an item's ``user``
    > the volume's ``defaultUser`` (KEP-5936) > the pod's ``fsUser`` (KEP-5280) > root (``None``). The one
    copy of the precedence: the payload the kubelet writes (:mod:`podsec.volumes.sources`), PS012's verdict and
    explain's volume notes all ask it. Callers pass a gated field only when its gate is on."""
    for uid, why in ((item_user, "user"), (default_user, "defaultUser"), (fs_user, "fsUser")):
        if uid is not None:
            return uid, why
    return None, "root"


def file_classes(
    vol: Mapping[str, Any], index: int, fs_group: int | None, fs_user: int | None, user_fields: bool,
) -> list[FileClass]:
    """The owner and mode classes of an atomic-writer volume's files (``user_fields``: KEP-5936's gate is on)."""
    vtype = next((t for t in ATOMIC_TYPES if isinstance(vol.get(t), Mapping)), None)
    if vtype is None:
        return []
    src = vol[vtype]
    base: Path = ("spec", "volumes", index, vtype)
    default_mode = source_mode(src.get("defaultMode"), DEFAULT_MODE)
    default_user = _uid(src.get("defaultUser")) if user_fields else None
    owner = volume_file_owner(None, default_user, fs_user)[0] or 0
    gid = fs_group if fs_group is not None else 0

    def klass(item: str | None, mode: int, uid: int, field: Path) -> FileClass:
        return FileClass(item, uid, gid, mode | 0o440 if fs_group is not None else mode, field)

    mode_field = (*base, "defaultMode") if "defaultMode" in src else base
    out: list[FileClass] = []
    defaults = False
    if vtype == "projected":
        sources: list[tuple[Path, Mapping]] = []
        for i, s in enumerate(src.get("sources") or ()):
            if not isinstance(s, Mapping):
                continue
            kind = next((k for k in _ITEM_KINDS if isinstance(s.get(k), Mapping)), None)
            if kind is not None:
                sources.append(((*base, "sources", i, kind), s[kind]))
    else:
        sources = [(base, src)]
    for path, sub in sources:
        items = sub.get("items")
        if not isinstance(items, list) or not items:
            defaults = True
            continue
        for j, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue
            user = _uid(item.get("user")) if user_fields else None
            if "mode" not in item and user is None:
                defaults = True
                continue
            mode = source_mode(item.get("mode"), default_mode)
            field = (*path, "items", j, "mode") if "mode" in item else mode_field
            out.append(klass(str(item.get("path")), mode, volume_file_owner(user, default_user, fs_user)[0] or 0,
                             field))
    if defaults:
        out.insert(0, klass(None, default_mode, owner, mode_field))
    return out


def known_groups(pod: ResolvedPod, rc: ResolvedContainer) -> tuple[int, ...]:
    """The container's groups, or when the image decides some of them, those that are certain (its gid when
    set, fsGroup, supplementalGroups)."""
    ident = rc.identity
    if ident.groups is not None:
        return ident.groups
    sure = [ident.gid] if ident.gid is not None else []
    sure += [pod.fs_group] if pod.fs_group is not None else []
    return tuple(dict.fromkeys(sure + list(pod.supplemental_groups)))


def can_read(pod: ResolvedPod, rc: ResolvedContainer, f: FileClass) -> bool | None:
    """Whether the container's process can open the files for reading, by the kernel's rules
    (:func:`podsec.kernel.access.can`); None when it depends on the image (its uid, or groups it may add)."""
    import stat

    from podsec.kernel.access import MAY_READ, Cred, Inode, can

    ident = rc.identity
    if ident.uid is None:
        return None
    gid = ident.gid if ident.gid is not None else -1
    cred = Cred(ident.uid, gid, frozenset(known_groups(pod, rc)), frozenset(rc.capabilities.effective))
    if can(Inode(f.uid, f.gid, stat.S_IFREG | f.mode), cred, MAY_READ):
        return True
    if ident.groups is None and ident.uid != f.uid and f.mode & 0o040:
        return None  # in the file's group only if the image makes it so
    return False


def unreadable(
    pod: ResolvedPod, spec: Mapping[str, Any], *, fs_user_gate: bool = False, user_fields_gate: bool = False,
) -> Iterator[Unreadable]:
    """Every (volume, container, file class) where a container mounting the volume cannot read the files."""
    fs_user = _uid(pod.fs_user) if fs_user_gate else None
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    for i, vol in enumerate(volumes):
        if not isinstance(vol, Mapping) or not isinstance(vol.get("name"), str):
            continue
        classes = file_classes(vol, i, pod.fs_group, fs_user, user_fields_gate)
        if not classes:
            continue
        vtype = next(t for t in ATOMIC_TYPES if isinstance(vol.get(t), Mapping))
        for rc in pod.containers:
            mounts = [m for m in rc.mounts if m.name == vol["name"]]
            if not mounts:
                continue
            subs = {m.sub_path or None for m in mounts}
            explicit = {f.item for f in classes if f.item is not None}
            for f in classes:
                if None not in subs:  # only some items are mounted (subPath)
                    if f.item is not None and f.item not in subs:
                        continue
                    if f.item is None and subs <= explicit:
                        continue
                if can_read(pod, rc, f) is False:
                    yield Unreadable(vol["name"], vtype, rc, f, known_groups(pod, rc))
