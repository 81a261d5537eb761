"""The kubelet's volume work on real host paths: ownership (fsGroup/fsUser), atomic-writer files,
emptyDir/tmpfs, hostPath checks, claims, safe subPaths, and teardown.

Pure planning (:mod:`.plan`, :mod:`.sources`) is separate from side effects (:mod:`.setup` and the
per-type modules), so ``explain``/``check`` can show the plan without touching the host.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FileProjection": "atomic_writer",
    "write_atomic": "atomic_writer",
    "change_owner_uid": "ownership",
    "change_ownership": "ownership",
    "OwnershipPlan": "plan",
    "VolumePlan": "plan",
    "plan_volumes": "plan",
    "PodVolumes": "setup",
    "prepare_pod_volumes": "setup",
    "teardown_pod_dir": "setup",
}
"""Public names and their modules, imported on first use so ``podsec.volumes.mounts`` stays cheap."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'podsec.volumes' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"podsec.volumes.{module}"), name)
    globals()[name] = value
    return value
