"""Execute the volume plan on the host: directories, tmpfs, files, ownership, binds; and tear down.

Layout under the pod directory, as the kubelet's::

    <pod_dir>/volumes/kubernetes.io~empty-dir/<name>       emptyDir (tmpfs for medium: Memory)
    <pod_dir>/volumes/kubernetes.io~configmap/<name>       on disk
    <pod_dir>/volumes/kubernetes.io~secret/<name>          tmpfs (secrets never touch a disk)
    <pod_dir>/volumes/kubernetes.io~downward-api/<name>    tmpfs
    <pod_dir>/volumes/kubernetes.io~projected/<name>       tmpfs
    <pod_dir>/volumes/kubernetes.io~local-volume/<name>    bind of the --volume-dir of a claim
    <pod_dir>/volume-subpaths/<volume>/<container>/<i>     safe subPath binds

Everything mounted here is found again through /proc/self/mountinfo, so a pod directory left by a
crash is cleaned by :func:`teardown_pod_dir` without any state of ours.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podsec.errors import PodsecError, RuntimeFailure
from podsec.logger import get_logger
from podsec.model import ResolvedPod, render_path
from podsec.volumes import claims, emptydir, hostpath, mounts, subpath
from podsec.volumes.atomic_writer import write_atomic
from podsec.volumes.ownership import change_owner_uid, change_ownership
from podsec.volumes.plan import ATOMIC_TYPES, VolumePlan, plan_volumes
from podsec.volumes.sources import NodeInfo

log = get_logger(__name__)

VOLUMES_DIR = "volumes"
OWNED_DIRS = (subpath.SUBPATH_DIR, VOLUMES_DIR)


@dataclass(slots=True)
class PreparedVolume:
    """A volume set up on the host: where it is and how it must be mounted."""

    plan: VolumePlan
    path: Path
    read_only: bool
    processed: int = 0
    """Paths the fsGroup walk processed (0: skipped or not applicable)."""


@dataclass(slots=True)
class PodVolumes:
    """The pod's volumes on the host; gives OCI mounts per container and tears everything down."""

    pod_dir: Path
    plans: list[VolumePlan]
    volumes: dict[str, PreparedVolume] = field(default_factory=dict)
    mounted: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def bind_sub_path(self, volume: str, sub_path: str, container: str, index: int) -> Path:
        """Resolve ``sub_path`` inside ``volume`` (never through a symlink out of it) and bind it to the
        private place the plan named (``<pod>/volume-subpaths/<volume>/<container>/<index>``)."""
        vol = self.volumes[volume]
        try:
            target = subpath.prepare_sub_path(vol.path, sub_path, self.pod_dir, volume, container, index)
        except PodsecError as e:
            raise RuntimeFailure(
                f'failed to prepare subPath for volumeMount "{volume}" of container "{container}": {e.message}'
            ) from e
        self.mounted.append(target)
        return target

    def teardown(self) -> None:
        """Unmount everything under our directories (lazily if busy) and remove them. Idempotent."""
        errors: list[str] = []
        for target in reversed(self.mounted):
            try:
                mounts.unmount(target)
            except OSError as e:
                errors.append(f"{target}: {e.strerror}")
        self.mounted.clear()
        errors += _remove_owned_dirs(self.pod_dir)
        if errors:
            raise RuntimeFailure(f"volume teardown of {self.pod_dir} incomplete: {'; '.join(errors)}")


def _remove_owned_dirs(pod_dir: Path) -> list[str]:
    """Unmount what remains below our directories, then delete them — never with a mount inside."""
    errors: list[str] = []
    for name in OWNED_DIRS:
        d = pod_dir / name
        if not os.path.lexists(d):
            continue
        try:
            mounts.unmount_all_under(d)
        except OSError as e:
            errors.append(f"{e.filename}: {e.strerror}")
            continue
        if mounts.mounts_under(d):  # never delete through a mount (a claim's data!)
            errors.append(f"{d}: still has mounts")
            continue
        try:
            shutil.rmtree(d)
        except OSError as e:
            errors.append(f"{e.filename}: {e.strerror}")
    return errors


def teardown_pod_dir(pod_dir: Path) -> list[str]:
    """Crash recovery: unmount every mount at or below ``pod_dir`` (deepest first) and remove the
    volume directories. Returns the unmounted mount points."""
    try:
        done = mounts.unmount_all_under(pod_dir)
    except OSError as e:
        raise RuntimeFailure(f"cannot unmount {e.filename}: {e.strerror}") from e
    errors = _remove_owned_dirs(pod_dir)
    if errors:
        raise RuntimeFailure(f"volume teardown of {pod_dir} incomplete: {'; '.join(errors)}")
    return done


# --------------------------------------------------------------------------------------------------


def prepare_pod_volumes(
    pod_dir: Path,
    pod: ResolvedPod,
    spec: Mapping[str, Any],
    metadata: Mapping[str, Any],
    objects: Iterable[Mapping[str, Any]],
    claim_dirs: Mapping[str, Path],
    *,
    node: NodeInfo | None = None,
    atomic_write_user_fields: bool = False,
    pod_fs_user: bool = False,
    plans: list[VolumePlan] | None = None,
) -> PodVolumes:
    """Set up every volume of the pod under ``pod_dir`` like the kubelet; undone on failure.

    ``plans``: the pod plan's volumes (:func:`podsec.plan.plan_pod`), executed as they are; without them
    the volumes are planned here. ``atomic_write_user_fields``: the KEP-5936 feature gate; ``pod_fs_user``:
    podsec's ``PodSecurityContextFSUser`` gate for KEP-5280's ``fsUser`` (both off by default, as upstream).
    """
    pod_dir = Path(pod_dir)
    if plans is None:
        plans = plan_volumes(
            pod,
            spec,
            metadata,
            list(objects),
            claim_dirs,
            node or NodeInfo.from_host(pod_dir),
            atomic_write_user_fields=atomic_write_user_fields,
            pod_fs_user=pod_fs_user,
        )
    for plan in plans:
        if not plan.runnable:
            raise RuntimeFailure(
                f'volume "{plan.name}": {plan.notes[0] if plan.notes else plan.type + " is not supported"}',
                field=render_path(plan.field),
            )
    pv = PodVolumes(pod_dir, plans)
    try:
        if any(p.plugin_dir for p in plans):
            (pod_dir / VOLUMES_DIR).mkdir(mode=0o750, parents=True, exist_ok=True)
        for plan in plans:
            try:
                pv.volumes[plan.name] = _set_up(pv, plan)
            except OSError as e:
                raise RuntimeFailure(
                    f'MountVolume.SetUp failed for volume "{plan.name}" : {e.strerror}: {e.filename}',
                    field=render_path(plan.field),
                ) from e
    except BaseException:
        try:
            pv.teardown()
        except PodsecError as e:
            log.error("cleanup after a failed volume setup: %s", e)
        raise
    return pv


def _set_up(pv: PodVolumes, plan: VolumePlan) -> PreparedVolume:
    if plan.type == "hostPath":
        assert plan.host_path is not None
        hostpath.check_host_path(plan.host_path, plan.host_path_type, plan.name)
        return PreparedVolume(plan, Path(plan.host_path), read_only=False)
    path = plan.dir_in(pv.pod_dir)
    assert path is not None
    if plan.type in ("persistentVolumeClaim", "ephemeral"):
        return _set_up_claim(pv, plan, path)
    (path.parent).mkdir(mode=0o755, parents=True, exist_ok=True)
    if emptydir.setup_empty_dir(path, plan.medium, plan.tmpfs_size):
        pv.mounted.append(path)
    own = plan.ownership
    prepared = PreparedVolume(plan, path, read_only=plan.read_only)
    # emptyDir (also the wrapper of the atomic volumes): rw mask, no policy; errors only logged.
    try:
        prepared.processed = change_ownership(path, own.fs_group, read_only=False)
    except RuntimeFailure as e:
        pv.warnings.append(f'volume "{plan.name}": {e.message}')
        log.warning("volume %s: %s", plan.name, e.message)
    if plan.type in ATOMIC_TYPES:
        payload = plan.payload if plan.payload is not None else {}
        try:
            write_atomic(path, payload, own.fs_group)
        except PodsecError as e:
            raise type(e)(
                f'MountVolume.SetUp failed for volume "{plan.name}" : {e.message}', field=render_path(plan.field)
            ) from e
        except OSError as e:
            raise RuntimeFailure(
                f'MountVolume.SetUp failed for volume "{plan.name}" : {e.strerror}: {e.filename}',
                field=render_path(plan.field),
            ) from e
    if own.fs_user is not None:
        _apply_fs_user(pv, plan, path, own.fs_user)
    return prepared


def _apply_fs_user(pv: PodVolumes, plan: VolumePlan, path: Path, uid: int) -> None:
    """KEP-5280 ``fsUser``: the kubelet-made tree below ``path`` (the root included) gets owner ``uid``.

    emptyDir: everything (only the directory at first setup). Atomic-writer volumes: directories and
    symlinks; their files already got their owner when written (item ``user`` > ``defaultUser`` >
    ``fsUser``). Per-path errors are logged like the fsGroup walk's; a walk error is a warning.
    """
    try:
        change_owner_uid(
            path, uid, files=plan.type not in ATOMIC_TYPES, include_dirs=True, include_links=True, workers=1
        )
    except RuntimeFailure as e:
        pv.warnings.append(f'volume "{plan.name}": {e.message}')
        log.warning("volume %s: %s", plan.name, e.message)


def _set_up_claim(pv: PodVolumes, plan: VolumePlan, path: Path) -> PreparedVolume:
    assert plan.claim is not None and plan.host_path is not None
    source = claims.check_claim_dir(Path(plan.host_path), plan.claim, plan.name)
    path.mkdir(mode=0o750, parents=True, exist_ok=True)
    if not mounts.is_mount_point(path):
        try:
            mounts.bind_mount(source, path, read_only=plan.read_only)
        except OSError as e:
            raise RuntimeFailure(f'volume "{plan.name}": bind mount of {source}: {e.strerror}') from e
        pv.mounted.append(path)
    prepared = PreparedVolume(plan, path, read_only=plan.read_only)
    own = plan.ownership
    if own.applies:
        prepared.processed = change_ownership(path, own.fs_group, read_only=False, policy=own.policy)
    return prepared
