"""A pod's record as ``run``/``apply`` create it, its claim on the state directory, and its grace period."""

from __future__ import annotations

import contextlib
import json

from podsec.errors import PodsecError
from podsec.runtime import state
from podsec.runtime.state import ContainerStatus, PodPaths, PodRecord

DEFAULT_GRACE = 30


def grace_period(record: PodRecord, paths: PodPaths) -> float:
    """``delete --grace-period`` if one was asked for, else the pod's terminationGracePeriodSeconds."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        return float(json.loads(paths.delete_request.read_text())["grace"])
    value = record.spec.get("terminationGracePeriodSeconds")
    return float(value) if type(value) is int and value >= 0 else float(DEFAULT_GRACE)


def new_record(metadata: dict, spec: dict, objects: list[dict], *, image_root: str, runtime: str,
               volume_dirs: dict[str, str], mode: str, node_name: str,
               feature_gates: dict[str, bool] | None = None) -> PodRecord:
    """A fresh record for a validated pod: uid filled in, every container waiting."""
    from podsec.plan.node import node_ip
    from podsec.plan.sandbox import POD_IP

    meta = dict(metadata)
    meta.setdefault("namespace", "default")
    meta["uid"] = str(meta.get("uid") or state.new_uid())
    host_network = spec.get("hostNetwork") is True
    record = PodRecord(
        name=str(meta.get("name")),
        namespace=str(meta["namespace"]),
        uid=meta["uid"],
        manifest={"metadata": meta, "spec": spec},
        objects=objects,
        image_root=image_root,
        runtime=runtime,
        volume_dirs=volume_dirs,
        feature_gates=dict(feature_gates or {}),
        mode=mode,
        node_name=node_name,
        host_ip=node_ip() if host_network else "",  # else looked up while the sandbox starts
        pod_ip=node_ip() if host_network else POD_IP,
    )
    record.sandbox_id = state.runtime_id(record.uid)
    has_init = bool(spec.get("initContainers"))
    default_reason = "PodInitializing" if has_init else "ContainerCreating"
    for key, kind in (("initContainers", "init"), ("containers", "container")):
        for c in spec.get(key) or ():
            name = str(c.get("name"))
            record.containers.append(
                ContainerStatus(
                    name=name,
                    kind=kind,
                    image=str(c.get("image") or ""),
                    runtime_id=state.runtime_id(record.uid, name),
                    reason=default_reason,
                )
            )
    return record


def create_pod_dir(paths: PodPaths, record: PodRecord) -> None:
    """Claim the pod's name: the directory is created exclusively, then the record written into it."""
    paths.dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        paths.dir.mkdir(mode=0o711)
    except FileExistsError:
        raise PodExists(record.namespace, record.name) from None
    (paths.dir / "logs").mkdir()
    state.save(paths, record)


class PodExists(PodsecError):
    """``kubectl``'s AlreadyExists: a pod with this name is already in the state directory."""

    exit_code = 1

    def __init__(self, namespace: str, name: str, why: str = "") -> None:
        """``why``: what differs from the pod that exists, when ``apply`` knows (e.g. its feature gates)."""
        super().__init__(
            f'pods "{name}" already exists in namespace "{namespace}"{" " + why if why else ""} '
            f"(delete it first: podsec delete {name}{'' if namespace == 'default' else ' -n ' + namespace})"
        )
