"""Where each workload kind keeps its pod template, and the Workload view over it."""

from __future__ import annotations

from dataclasses import dataclass

from podsec.manifest.loader import K8sObject
from podsec.model import Path, render_path

TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "ReplicationController": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(slots=True)
class Workload:
    """A pod template inside an object: ``metadata`` and ``spec`` as the kubelet would see them."""

    obj: K8sObject
    template: tuple[str, ...]
    metadata: dict
    spec: dict

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def name(self) -> str:
        return self.obj.name

    @property
    def namespace(self) -> str:
        return self.obj.namespace

    def pod_metadata(self) -> dict:
        """The template's metadata with the name and namespace its pods would get."""
        meta = self.metadata
        if meta.get("name") and meta.get("namespace"):
            return meta
        meta = dict(meta)
        meta.setdefault("name", self.name)
        if not meta.get("namespace"):
            meta["namespace"] = self.namespace or "default"
        return meta

    def full(self, path: Path) -> Path:
        """A template-relative path as a path inside the document."""
        return self.obj.root + self.template + path

    def field(self, path: Path) -> str:
        """The API server's field path for a template-relative path, e.g. spec.template.spec.containers[0]."""
        return render_path(self.template + path)

    def line_of(self, path: Path) -> int:
        return self.obj.source.line_of(self.full(path))


def _walk(obj: dict, path: tuple[str, ...]) -> object:
    cur: object = obj
    for seg in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(seg)
    return cur


def workload_of(obj: K8sObject) -> Workload | None:
    """The pod template of a workload object, None for other kinds or a template-less object."""
    path = TEMPLATE_PATHS.get(obj.kind)
    if path is None:
        return None
    tmpl = _walk(obj.obj, path) if path else obj.obj
    if tmpl is None:
        return None
    if not isinstance(tmpl, dict):
        raise obj.error("expected an object (a mapping)", path)
    spec = tmpl.get("spec")
    if spec is None:
        raise obj.error("spec: Required value", path)
    if not isinstance(spec, dict):
        raise obj.error("expected an object (a mapping)", (*path, "spec"))
    meta = tmpl.get("metadata")
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        raise obj.error("expected an object (a mapping)", (*path, "metadata"))
    return Workload(obj, path, meta, spec)
