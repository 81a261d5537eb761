"""The runtime's side of the volume layer (:mod:`podsec.volumes`): prepare a pod's volumes once, ask for
each container's mounts, tear everything down. The lifecycle only talks to :class:`PodVolumesLike`.

A pod without volumes never imports the volume layer (it is not small), which keeps ``podsec run`` of
a simple pod fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from podsec.model import ResolvedPod


class PodVolumesLike(Protocol):
    def bind_sub_path(self, volume: str, sub_path: str, container: str, index: int) -> Path: ...

    def teardown(self) -> None: ...


class NoVolumes:
    """A pod without volumes."""

    def bind_sub_path(self, volume: str, sub_path: str, container: str, index: int) -> Path:
        raise KeyError(volume)

    def teardown(self) -> None:
        return None


def prepare(pod: ResolvedPod, spec: dict, metadata: dict, pod_dir: Path, plans: list[Any]) -> PodVolumesLike:
    """Create the pod's volumes as planned (:attr:`podsec.plan.PodPlan.volumes`): emptyDir, hostPath checks,
    configMap/secret payloads, claims backed by ``--volume-dir``, fsGroup ownership; fsUser/defaultUser/user
    when their gates are on."""
    if not spec.get("volumes"):
        return NoVolumes()
    from podsec.volumes import prepare_pod_volumes

    return prepare_pod_volumes(pod_dir, pod, spec, metadata, (), {}, plans=plans)


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
