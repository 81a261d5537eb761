"""The runtime's side of the volume layer (:mod:`podsec.volumes`): prepare a pod's volumes once, ask for
each container's mounts, tear everything down. The lifecycle only talks to :class:`PodVolumesLike`.

A pod without volumes never imports the volume layer (it is not small), which keeps ``podsec run`` of
a simple pod fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from podsec.model import ResolvedContainer, ResolvedPod


class PodVolumesLike(Protocol):
    def mounts_for(self, container: ResolvedContainer, env: Mapping[str, str] | None = None) -> list[dict]: ...

    def teardown(self) -> None: ...


class NoVolumes:
    """A pod without volumes."""

    def mounts_for(self, container: ResolvedContainer, env: Mapping[str, str] | None = None) -> list[dict]:
        return []

    def teardown(self) -> None:
        return None


def prepare(pod: ResolvedPod, spec: dict, metadata: dict, pod_dir: Path, objects: list[dict[str, Any]],
            volume_dirs: dict[str, str], feature_gates: dict[str, bool] | None = None) -> PodVolumesLike:
    """Create the pod's volumes as the kubelet does (emptyDir, hostPath checks, configMap/secret payloads,
    claims backed by ``--volume-dir``, fsGroup ownership; fsUser/defaultUser/user when their gates are on)."""
    if not spec.get("volumes"):
        return NoVolumes()
    from podsec.features import ATOMIC_WRITE_VOLUME_USER_FIELDS, POD_SECURITY_CONTEXT_FS_USER, gates_from
    from podsec.volumes import prepare_pod_volumes

    gates = gates_from(feature_gates)
    claims = {name: Path(path) for name, path in volume_dirs.items()}
    return prepare_pod_volumes(pod_dir, pod, spec, metadata, objects, claims,
                               atomic_write_user_fields=gates.enabled(ATOMIC_WRITE_VOLUME_USER_FIELDS),
                               pod_fs_user=gates.enabled(POD_SECURITY_CONTEXT_FS_USER))


def teardown_dir(pod_dir: Path, problems: list[str]) -> None:
    """The volume layer's cleanup of a pod directory nobody owns any more (after a crash)."""
    if not (pod_dir / "volumes").exists() and not (pod_dir / "volume-subpaths").exists():
        return
    from podsec.errors import PodsecError
    from podsec.volumes import teardown_pod_dir

    try:
        teardown_pod_dir(pod_dir)
    except PodsecError as e:
        problems.append(e.message)
    except OSError as e:
        problems.append(f"volume teardown of {pod_dir}: {e.strerror}")
