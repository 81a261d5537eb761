"""A recorded pod opened for running: resolved against the image store and planned (the kubelet re-reads a
pod on every sync; the ``apply`` supervisor rebuilds this from ``pod.json`` after a restart)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podsec.downward import ObjectStore
from podsec.image.model import ImageInfo
from podsec.model import ResolvedContainer, ResolvedPod
from podsec.resolve import resolve_pod
from podsec.runtime.state import PodPaths, PodRecord

if TYPE_CHECKING:
    from podsec.plan import NodeFacts, PodPlan, SandboxRun


@dataclass(slots=True)
class PodContext:
    """Everything the loop needs, derived from ``pod.json`` (so the supervisor can rebuild it)."""

    paths: PodPaths
    record: PodRecord
    store: Any  # podsec.image.store.ImageStore (imported lazily)
    resolved: ResolvedPod
    images: dict[str, ImageInfo]
    objects: ObjectStore
    plan: PodPlan

    def container_spec(self, name: str) -> dict:
        for key in ("initContainers", "containers"):
            for c in self.record.spec.get(key) or ():
                if isinstance(c, dict) and c.get("name") == name:
                    return c
        raise KeyError(name)

    def resolved_container(self, name: str) -> ResolvedContainer:
        for c in self.resolved.containers:
            if c.name == name and c.kind in ("init", "container"):
                return c
        raise KeyError(name)


def node_of(paths: PodPaths, record: PodRecord) -> NodeFacts:
    """The node as the pod's record knows it (its name and IP were fixed when the pod was created)."""
    from podsec.plan.node import node_facts

    facts = node_facts(paths.dir, ip=record.host_ip or None)
    if record.node_name and record.node_name != facts.name:
        from dataclasses import replace

        facts = replace(facts, name=record.node_name)
    return facts


def open_pod(paths: PodPaths, record: PodRecord, store: Any = None, node: NodeFacts | None = None,
             sandbox_run: SandboxRun | None = None) -> PodContext:
    """Re-resolve a recorded pod against the image store, as the kubelet does on every sync, and plan it."""
    from podsec.features import gates_from
    from podsec.plan import plan_pod

    if store is None:
        from podsec.image.store import ImageStore

        store = ImageStore(Path(record.image_root))
    images: dict[str, ImageInfo] = {}
    by_ref: dict[str, ImageInfo] = {}
    for key in ("initContainers", "containers"):
        for c in record.spec.get(key) or ():
            ref = c.get("image") if isinstance(c, dict) else None
            if isinstance(ref, str) and ref:
                if ref not in by_ref:
                    by_ref[ref] = store.info(ref)
                images[str(c.get("name"))] = by_ref[ref]
    for c in record.containers:
        if c.name in images:
            c.image_id = images[c.name].config_digest
    resolved = resolve_pod(record.metadata, record.spec, by_ref.get)
    record.resolved = resolved_summary(resolved)
    if node is None:
        node = node_of(paths, record)
    if not record.host_ip:
        record.host_ip = node.ip
    gates = gates_from(record.feature_gates)
    plan = plan_pod(resolved, record.metadata, record.spec, images, record.objects, node,
                    volume_dirs=record.volume_dirs, gates=gates.enabled, sandbox=sandbox_run)
    objects = ObjectStore(record.objects)
    return PodContext(paths, record, store, resolved, images, objects, plan)


def resolved_summary(pod: ResolvedPod) -> dict[str, Any]:
    """Per container, what ``describe`` shows of the effective security settings."""
    out: dict[str, Any] = {}
    for c in pod.containers:
        ident = c.identity
        out[c.name] = {
            "uid": ident.uid,
            "gid": ident.gid,
            "groups": list(ident.groups or ()),
            "capabilities": list(c.capabilities.bounding),
            "effective": list(c.capabilities.effective),
            "privileged": c.privileged,
            "allowPrivilegeEscalation": not c.no_new_privileges,
            "readOnlyRootFilesystem": c.readonly_rootfs,
            "seccomp": c.seccomp.type,
            "runAsNonRoot": c.run_as_non_root.required,
        }
    return out
