"""The runtime's side of the volume layer (:mod:`podsec.volumes`): prepare a pod's volumes once, ask
for each container's mounts, tear everything down. Kept in one place so the lifecycle does not
depend on the volume layer's internals.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol

from podsec.errors import RuntimeFailure
from podsec.model import ResolvedContainer, ResolvedPod


class PodVolumesLike(Protocol):
    def mounts_for(self, container: ResolvedContainer, env: dict[str, str]) -> list[dict]: ...

    def teardown(self) -> None: ...


class NoVolumes:
    """A pod without volumes."""

    def mounts_for(self, container: ResolvedContainer, env: dict[str, str]) -> list[dict]:
        return []

    def teardown(self) -> None:
        return None


def prepare(pod: ResolvedPod, spec: dict, metadata: dict, pod_dir: Path, objects: list[dict[str, Any]],
            volume_dirs: dict[str, str]) -> PodVolumesLike:
    """Create the pod's volumes (emptyDir, hostPath checks, configMap/secret payloads, claims…)."""
    if not spec.get("volumes"):
        return NoVolumes()
    try:
        from podsec.volumes import prepare_pod_volumes  # type: ignore[attr-defined]
    except ImportError as e:
        raise RuntimeFailure("volumes are not supported yet (podsec.volumes is missing)") from e
    return prepare_pod_volumes(  # type: ignore[no-any-return]
        pod=pod, spec=spec, metadata=metadata, pod_dir=pod_dir, objects=objects, volume_dirs=volume_dirs
    )


def teardown_dir(pod_dir: Path, problems: list[str]) -> None:
    """The volume layer's own cleanup of a pod directory (after a crash too)."""
    try:
        from podsec.volumes import teardown_pod_dir  # type: ignore[attr-defined]
    except ImportError:
        return
    with contextlib.suppress(FileNotFoundError):
        try:
            teardown_pod_dir(pod_dir)
        except Exception as e:
            problems.append(f"volume teardown of {pod_dir}: {e}")
