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
ATOMIC_TYPES = ("configMap", "secret", "downwardAPI", "projected")
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
) -> list[VolumePlan]:
    """Plan every volume of ``spec``. Pure: no filesystem access.

    ``objects`` None skips payloads (explain without ConfigMaps); ``claim_dirs`` None skips the
    claim-to-directory check (explain without ``--volume-dir``). ``atomic_write_user_fields`` is the
    KEP-5936 feature gate (``defaultUser``/``user`` own the files).
    """
    node = node or NodeInfo()
    fs_group = pod.fs_group
    policy = pod.fs_group_change_policy or ALWAYS
    ctx = SourceContext(
        name=pod.name,
        namespace=pod.namespace,
        uid=pod.uid,
        spec=spec,
        metadata=metadata,
        objects=ObjectStore(objects or ()),
        fs_group=fs_group,
        fs_user=fs_user_from(spec),
        node=node,
        user_fields=atomic_write_user_fields,
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
                else "no fsGroup: files stay root:root with their exact modes",
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
