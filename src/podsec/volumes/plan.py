"""The volume plan: what the kubelet would do for each volume of a pod, decided without touching disk.

``explain``/``check`` read it (which volumes get fsGroup ownership and why not, which live on tmpfs,
which files with which modes), ``run`` executes it through :mod:`podsec.volumes.setup`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podsec.errors import InputError
from podsec.model import Path as FieldPath
from podsec.model import ResolvedPod, render_path
from podsec.volumes import claims, emptydir, hostpath
from podsec.volumes.atomic_writer import FileProjection
from podsec.volumes.ownership import ALWAYS, ON_ROOT_MISMATCH
from podsec.volumes.readable import (
    ATOMIC_TYPES,
    DEFAULT_MODE,
    Unreadable,
    source_mode,
    unreadable,
    volume_file_owner,
)
from podsec.volumes.sources import NodeInfo, ObjectStore, SourceContext, build_payload, fs_user_from

PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
    "persistentVolumeClaim": "kubernetes.io~local-volume",
    "ephemeral": "kubernetes.io~local-volume",
}
MEMORY_BACKED_ATOMIC = ("secret", "downwardAPI", "projected")
"""Wrapped in a ``medium: Memory`` emptyDir: their content never reaches a disk."""

NETWORK_FS_TYPES = frozenset({"nfs", "cephfs", "glusterfs", "azureFile", "quobyte", "flocker"})
BLOCK_TYPES = frozenset(
    {
        "awsElasticBlockStore",
        "azureDisk",
        "cinder",
        "fc",
        "gcePersistentDisk",
        "iscsi",
        "photonPersistentDisk",
        "portworxVolume",
        "rbd",
        "scaleIO",
        "storageos",
        "vsphereVolume",
    }
)
OTHER_TYPES = frozenset({"csi", "flexVolume", "gitRepo", "image"})
KNOWN_TYPES = (
    frozenset({"emptyDir", "hostPath", "persistentVolumeClaim", "ephemeral", *ATOMIC_TYPES})
    | NETWORK_FS_TYPES
    | BLOCK_TYPES
    | OTHER_TYPES
)


@dataclass(frozen=True, slots=True)
class OwnershipPlan:
    """Whether and how the kubelet changes ownership of this volume (kubelet-semantics §3.4)."""

    applies: bool
    fs_group: int | None
    read_only: bool
    """The mask used: read-only (0440) or read-write (0660)."""
    policy: str | None
    """None: the plugin does not pass fsGroupChangePolicy, so every SetUp walks recursively."""
    reason: str
    fs_user: int | None = None
    """KEP-5280 ``fsUser`` (gate ``PodSecurityContextFSUser``): owner uid of what the kubelet creates
    in this volume — the emptyDir directory; atomic-writer files without a KEP-5936 owner, their
    directories and symlinks. None: owners are left as they are (root)."""


@dataclass(slots=True)
class VolumePlan:
    """One volume as the kubelet would set it up."""

    name: str
    type: str
    field: FieldPath
    ownership: OwnershipPlan
    plugin_dir: str | None = None
    medium: str = ""
    tmpfs: bool = False
    tmpfs_size: int | None = None
    host_path: str | None = None
    host_path_type: str | None = None
    claim: str | None = None
    read_only: bool = False
    """Every mount of this volume is read-only (atomic-writer volumes, read-only claims)."""
    payload: dict[str, FileProjection] | None = None
    runnable: bool = True
    notes: list[str] = field(default_factory=list)

    def dir_in(self, pod_dir: Path) -> Path | None:
        """``<pod_dir>/volumes/<plugin>/<name>`` for kubelet-managed volumes, else None."""
        if self.plugin_dir is None:
            return None
        return pod_dir / "volumes" / self.plugin_dir / self.name


def volume_type(volume: Mapping[str, Any]) -> str:
    """The volume source key (``emptyDir``, ``hostPath``, ...); an unknown key is returned as is."""
    keys = [k for k in volume if k != "name" and volume.get(k) is not None]
    if not keys:
        return "emptyDir"  # API defaulting: a volume without a source is an emptyDir
    known = [k for k in keys if k in KNOWN_TYPES]
    return known[0] if known else keys[0]


def _none(fs_group: int | None, reason: str) -> OwnershipPlan:
    return OwnershipPlan(False, fs_group, False, None, reason)


def plan_volumes(
    pod: ResolvedPod,
    spec: Mapping[str, Any],
    metadata: Mapping[str, Any],
    objects: Iterable[Mapping[str, Any]] | None = None,
    claim_dirs: Mapping[str, Path] | None = None,
    node: NodeInfo | None = None,
    *,
    atomic_write_user_fields: bool = False,
    pod_fs_user: bool = False,
) -> list[VolumePlan]:
    """Plan every volume of ``spec``. Pure: no filesystem access.

    ``objects`` None skips payloads (explain without ConfigMaps); ``claim_dirs`` None skips the
    claim-to-directory check (explain without ``--volume-dir``). ``atomic_write_user_fields`` is the
    KEP-5936 feature gate (``defaultUser``/``user`` own the files), ``pod_fs_user`` podsec's
    ``PodSecurityContextFSUser`` gate for KEP-5280's ``spec.securityContext.fsUser``.
    """
    node = node or NodeInfo()
    fs_group = pod.fs_group
    policy = pod.fs_group_change_policy or ALWAYS
    fs_user = _fs_user(pod) if pod_fs_user else None
    ctx = SourceContext(
        name=pod.name,
        namespace=pod.namespace,
        uid=pod.uid,
        spec=spec,
        metadata=metadata,
        objects=ObjectStore(objects or ()),
        fs_group=fs_group,
        fs_user=fs_user_from(pod),
        node=node,
        user_fields=atomic_write_user_fields,
        pod_fs_user=fs_user,
    )
    plans: list[VolumePlan] = []
    seen: set[str] = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        fp: FieldPath = ("spec", "volumes", i)
        name = vol.get("name")
        if not isinstance(name, str) or not name:
            raise InputError("Required value", field=render_path((*fp, "name")))
        if name in seen:
            raise InputError(f'Duplicate value: "{name}"', field=render_path((*fp, "name")))
        seen.add(name)
        plans.append(_plan_one(vol, name, fp, ctx, fs_group, policy, objects is not None, claim_dirs, node))
    return plans


def _fs_user(pod: ResolvedPod) -> int | None:
    """``spec.securityContext.fsUser`` as resolve read it (validated by the admission when its gate is on)."""
    value = pod.fs_user
    if value is not None and not 0 <= value <= 2147483647:
        raise InputError(
            f"Invalid value: {value!r}: must be between 0 and 2147483647, inclusive",
            field="spec.securityContext.fsUser",
        )
    return value


_NO_FS_USER = "fsUser does not apply: only emptyDir, configMap, secret, projected and downwardAPI volumes"


def _plan_one(
    vol: Mapping[str, Any],
    name: str,
    fp: FieldPath,
    ctx: SourceContext,
    fs_group: int | None,
    policy: str,
    with_payload: bool,
    claim_dirs: Mapping[str, Path] | None,
    node: NodeInfo,
) -> VolumePlan:
    vtype = volume_type(vol)
    src = vol.get(vtype) or {}
    if vtype == "emptyDir":
        medium = emptydir.check_medium(src.get("medium"), name, render_path((*fp, "emptyDir", "medium")))
        plan = VolumePlan(
            name,
            vtype,
            fp,
            OwnershipPlan(
                fs_group is not None,
                fs_group,
                False,
                None,
                "fsGroup applied recursively at every setup (read-write mask; fsGroupChangePolicy not passed)"
                if fs_group is not None
                else "no fsGroup: the directory stays root:root (0777 on disk, 1777 on tmpfs)",
                ctx.pod_fs_user,
            ),
            plugin_dir=PLUGIN_DIRS[vtype],
            medium=medium,
        )
        if medium == emptydir.MEDIUM_MEMORY:
            plan.tmpfs = True
            plan.tmpfs_size = emptydir.memory_volume_size(
                ctx.spec,
                src.get("sizeLimit"),
                node.memory_bytes or None,
                field=render_path((*fp, "emptyDir", "sizeLimit")),
            )
        elif src.get("sizeLimit") is not None:
            plan.notes.append("sizeLimit on a disk-backed emptyDir is only enforced by kubelet eviction")
        return plan
    if vtype in ATOMIC_TYPES:
        memory = vtype in MEMORY_BACKED_ATOMIC
        plan = VolumePlan(
            name,
            vtype,
            fp,
            OwnershipPlan(
                fs_group is not None,
                fs_group,
                True,
                None,
                "fsGroup applied with the read-only mask after each write (fsGroupChangePolicy not passed)"
                if fs_group is not None
                else "no fsGroup: files keep their exact modes, group root",
                ctx.pod_fs_user,
            ),
            plugin_dir=PLUGIN_DIRS[vtype],
            medium=emptydir.MEDIUM_MEMORY if memory else "",
            tmpfs=memory,
            read_only=True,
        )
        if memory:
            plan.tmpfs_size = emptydir.memory_volume_size(ctx.spec, None, node.memory_bytes or None)
        if with_payload:
            plan.payload = build_payload(vol, ctx, fp)
        return plan
    if vtype == "hostPath":
        path = hostpath.validate_host_path(src.get("path"), name, render_path((*fp, "hostPath", "path")))
        htype = hostpath.validate_type(src.get("type"), render_path((*fp, "hostPath", "type")))
        return VolumePlan(
            name,
            vtype,
            fp,
            _none(fs_group, "hostPath volumes are never chowned by the kubelet"),
            host_path=path,
            host_path_type=htype,
            notes=[_NO_FS_USER] if ctx.pod_fs_user is not None else [],
        )
    if vtype in ("persistentVolumeClaim", "ephemeral"):
        if vtype == "ephemeral":
            claim = claims.ephemeral_claim_name(ctx.name, name)
            read_only = bool(src.get("readOnly"))
        else:
            claim = str(src.get("claimName") or "")
            if not claim:
                raise InputError("Required value", field=render_path((*fp, vtype, "claimName")))
            read_only = bool(src.get("readOnly"))
        host_dir = None
        if claim_dirs is not None:
            host_dir = str(claims.claim_dir(claim, claim_dirs, name, render_path((*fp, vtype))))
        if read_only:
            own = _none(fs_group, "read-only claims are never chowned")
        elif fs_group is None:
            own = _none(None, "no fsGroup")
        else:
            own = OwnershipPlan(
                True,
                fs_group,
                False,
                policy,
                "fsGroup applied like a local PV, honouring fsGroupChangePolicy "
                f"({policy}{': skipped when the root already matches' if policy == ON_ROOT_MISMATCH else ''})",
            )
        return VolumePlan(
            name,
            vtype,
            fp,
            own,
            plugin_dir=PLUGIN_DIRS[vtype],
            host_path=host_dir,
            claim=claim,
            read_only=read_only,
            notes=[_NO_FS_USER] if ctx.pod_fs_user is not None else [],
        )
    if vtype in NETWORK_FS_TYPES:
        return VolumePlan(
            name,
            vtype,
            fp,
            _none(fs_group, f"{vtype} and other network filesystems are not chowned by the kubelet"),
            runnable=False,
            notes=[f"{vtype} volumes cannot be mounted by podsec"],
        )
    if vtype in BLOCK_TYPES:
        return VolumePlan(
            name,
            vtype,
            fp,
            _none(fs_group, f"{vtype}: the kubelet would chown it after mounting; podsec cannot attach it"),
            runnable=False,
            notes=[f"{vtype} volumes cannot be attached by podsec"],
        )
    if vtype == "csi":
        return VolumePlan(
            name,
            vtype,
            fp,
            _none(fs_group, "CSI: decided by the CSIDriver's fsGroupPolicy (and the mount's readOnly)"),
            runnable=False,
            notes=["CSI volumes cannot be mounted by podsec"],
        )
    return VolumePlan(
        name,
        vtype,
        fp,
        _none(fs_group, f"{vtype} volumes are not handled by podsec"),
        runnable=False,
        notes=[f"{vtype} volumes cannot be set up by podsec"],
    )


# --------------------------------------------------------------------------------------------------
# explain: who will own the files (feature-gated owners)


def _octal(mode: int) -> str:
    return f"0{mode:o}" if mode else "0"


def _item_users(vtype: str, src: Mapping[str, Any]) -> list[tuple[str, object]]:
    """(path, user) of every item that names its own owner (KEP-5936 ``user``)."""
    out: list[tuple[str, object]] = []
    sources = src.get("sources") if vtype == "projected" else [{vtype: src}]
    for source in sources if isinstance(sources, list) else []:
        if not isinstance(source, Mapping):
            continue
        for kind in ("configMap", "secret", "downwardAPI"):
            sub = source.get(kind)
            for item in (sub.get("items") if isinstance(sub, Mapping) else None) or []:
                if isinstance(item, Mapping) and item.get("user") is not None:
                    out.append((str(item.get("path")), item["user"]))
        for kind in ("serviceAccountToken", "clusterTrustBundle"):
            sub = source.get(kind)
            if isinstance(sub, Mapping) and sub.get("user") is not None:
                out.append((str(sub.get("path") or "token"), sub["user"]))
    return out


def _unreadable_note(u: Unreadable) -> str:
    f = u.files
    what = f'item "{f.item}"' if f.item else "them"
    who = f'container "{u.container.name}" (uid {u.container.identity.uid})'
    return f"{who} cannot read {what}: owner {f.uid}:{f.gid}, mode {_octal(f.mode)}"


def ownership_notes(
    pod: ResolvedPod,
    spec: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    atomic_write_user_fields: bool = False,
    pod_fs_user: bool = False,
) -> list[str]:
    """One sentence per volume on who owns its files, when an owner field or gate is involved (else none).

    Pure (no payloads are built): ``explain`` shows it; the runtime does exactly this through
    :func:`podsec.volumes.setup.prepare_pod_volumes`.
    """
    from podsec.features import gated_fields

    psc = spec.get("securityContext") or {}
    has_fields = bool(gated_fields(spec))
    denied = list(unreadable(pod, spec, fs_user_gate=pod_fs_user, user_fields_gate=atomic_write_user_fields))
    if not (atomic_write_user_fields or pod_fs_user or has_fields):
        return [f'volume "{u.volume}" ({u.volume_type}): ' + _unreadable_note(u) for u in denied]
    try:
        plans = plan_volumes(
            pod, spec, metadata, None, None, None,
            atomic_write_user_fields=atomic_write_user_fields, pod_fs_user=pod_fs_user,
        )
    except InputError as e:
        return [f"volumes cannot be planned: {e.message}"]
    fs_user_set = psc.get("fsUser") is not None
    notes: list[str] = []
    group = f"group {pod.fs_group} [fsGroup]" if pod.fs_group is not None else "group 0"
    for plan, vol in zip(plans, spec.get("volumes") or []):
        head = f'volume "{plan.name}" ({plan.type})'
        own = plan.ownership
        src = vol.get(plan.type) if isinstance(vol, Mapping) else None
        src = src if isinstance(src, Mapping) else {}
        if plan.type == "emptyDir":
            if own.fs_user is not None:
                base = 0o1777 if plan.tmpfs else 0o777
                mode = base | (0o2070 if pod.fs_group is not None else 0)
                notes.append(
                    f"{head}: directory owned by uid {own.fs_user} [fsUser], {group}, mode {_octal(mode)}; "
                    "files the containers create belong to their own uid"
                )
            elif fs_user_set:
                notes.append(f"{head}: fsUser ignored (gate PodSecurityContextFSUser off): directory owned by root")
            continue
        if plan.type in ATOMIC_TYPES:
            default_user = src.get("defaultUser")
            items = _item_users(plan.type, src)
            uid, why = volume_file_owner(None, default_user if atomic_write_user_fields else None, own.fs_user)
            owner = "root" if uid is None else f"uid {uid} [{why}]"
            parts = [f"files owned by {owner}"]
            if atomic_write_user_fields and items:
                parts.append("items " + ", ".join(f"{p}: uid {u} [user]" for p, u in items))
            elif not atomic_write_user_fields and (items or default_user is not None):
                parts.append("defaultUser/user ignored (gate AtomicWriteVolumeUserFields off, as on a stock cluster)")
            if fs_user_set and own.fs_user is None:
                parts.append("fsUser ignored (gate PodSecurityContextFSUser off)")
            mode = source_mode(src.get("defaultMode"), DEFAULT_MODE)
            if pod.fs_group is not None:
                parts.append(f"{group}, read-only mask: mode {_octal(mode)} becomes {_octal(mode | 0o440)}")
            else:
                parts.append(f"{group}, mode {_octal(mode)} as given")
            if own.fs_user is not None:
                parts.append(f"directories and links owned by uid {own.fs_user} [fsUser]")
            parts += [_unreadable_note(u) for u in denied if u.volume == plan.name]
            notes.append(f"{head}: " + "; ".join(parts))
            continue
        if own.fs_user is None and not fs_user_set:
            continue
        notes.append(f"{head}: {_NO_FS_USER}; owners stay as they are on the host")
    return notes
