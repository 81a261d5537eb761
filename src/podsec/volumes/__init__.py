"""The kubelet's volume work on real host paths: ownership (fsGroup/fsUser), atomic-writer files,
emptyDir/tmpfs, hostPath checks, claims, safe subPaths, and teardown.

Pure planning (:mod:`.plan`, :mod:`.sources`) is separate from side effects (:mod:`.setup` and the
per-type modules), so ``explain``/``check`` can show the plan without touching the host.
"""

from podsec.volumes.atomic_writer import FileProjection, write_atomic
from podsec.volumes.ownership import change_owner_uid, change_ownership
from podsec.volumes.plan import OwnershipPlan, VolumePlan, plan_volumes
from podsec.volumes.setup import PodVolumes, prepare_pod_volumes, teardown_pod_dir

__all__ = [
    "FileProjection",
    "OwnershipPlan",
    "PodVolumes",
    "VolumePlan",
    "change_owner_uid",
    "change_ownership",
    "plan_volumes",
    "prepare_pod_volumes",
    "teardown_pod_dir",
    "write_atomic",
]
