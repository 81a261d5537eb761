"""The pod a workload controller would create from a template: its name, labels, annotations, owner.

``run``/``apply``/``trace`` of a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
ReplicationController or PodTemplate start the one pod that kube-controller-manager would create
first, so that ``get pods`` shows the names a cluster shows and a ``downwardAPI`` label reads the same:

- Deployment ``web`` → ReplicaSet ``web-<pod-template-hash>`` → pod ``web-<hash>-<5 chars>`` with the
  ``pod-template-hash`` label; ReplicaSet/ReplicationController/DaemonSet/Job → ``<name>-<5 chars>``.
- StatefulSet ``db`` → ``db-0``, with ``controller-revision-hash``, ``statefulset.kubernetes.io/pod-name``
  and ``apps.kubernetes.io/pod-index``, ``hostname``/``subdomain``, and its ``volumeClaimTemplates`` as
  the pod's claims ``<template>-db-0``.
- Job → the API server's selector labels (``batch.kubernetes.io/controller-uid``, ``job-name`` …);
  CronJob → a Job as ``kubectl create job --from=cronjob/…`` makes it (its annotation and labels),
  named as the CronJob controller names a scheduled one (``<cronjob>-<minutes since the epoch>``).

The hashes use the controllers' algorithm (FNV-1a 32 over the template, the decimal sum encoded
with ``rand.SafeEncodeString``'s alphabet), fed with podsec's canonical JSON of the template rather
than Go's ``spew`` dump of the typed, defaulted object: same shape and alphabet, stable for a
template, not the same value a cluster computes for it.

Pure: randomness and the clock are parameters.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
"""``k8s.io/apimachinery/pkg/util/rand``: no vowels (no words), no 0/1/3 (look like letters)."""
RANDOM_LENGTH = 5
MAX_GENERATED_BASE = 63 - RANDOM_LENGTH  # names.SimpleNameGenerator: maxGeneratedNameLength

RESOURCES: dict[str, tuple[str, str]] = {
    # kind: (kubectl's resource.group, its plural for NotFound)
    "Deployment": ("deployment.apps", "deployments.apps"),
    "ReplicaSet": ("replicaset.apps", "replicasets.apps"),
    "StatefulSet": ("statefulset.apps", "statefulsets.apps"),
    "DaemonSet": ("daemonset.apps", "daemonsets.apps"),
    "Job": ("job.batch", "jobs.batch"),
    "CronJob": ("cronjob.batch", "cronjobs.batch"),
    "ReplicationController": ("replicationcontroller", "replicationcontrollers"),
    "PodTemplate": ("podtemplate", "podtemplates"),
}
CONTROLLER_KINDS = tuple(RESOURCES)
SCALED_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController")
DEFAULT_BACKOFF_LIMIT = 6


def fnv32a(data: bytes) -> int:
    """FNV-1a, 32 bits (Go's ``hash/fnv.New32a``)."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """``rand.SafeEncodeString``: each character mapped into :data:`ALPHANUMS` by its code point."""
    return "".join(ALPHANUMS[ord(ch) % len(ALPHANUMS)] for ch in s)


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: FNV-1a of the template (then the collision count, 8 bytes little-endian,
    when there is one), the decimal sum safe-encoded (e.g. ``7d4b9c5f8``)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return safe_encode(str(fnv32a(data)))


def random_string(n: int = RANDOM_LENGTH, choice: Callable[[str], str] = secrets.choice) -> str:
    """``rand.String(n)``."""
    return "".join(choice(ALPHANUMS) for _ in range(n))


def generate_name(base: str, choice: Callable[[str], str] = secrets.choice) -> str:
    """``names.SimpleNameGenerator``: ``generateName`` cut to 58 characters plus 5 random ones."""
    return base[:MAX_GENERATED_BASE] + random_string(RANDOM_LENGTH, choice)


@dataclass(slots=True)
class JobPolicy:
    """What the Job controller enforces around its pods."""

    name: str
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    active_deadline: float | None = None


@dataclass(slots=True)
class ControllerPod:
    """The pod to run for a workload, and what to tell about the rest of it."""

    kind: str
    name: str
    """The workload as given (``Deployment`` ``web``): ``apply``/``delete -f`` find its pods by it."""
    metadata: dict[str, Any]
    spec: dict[str, Any]
    generate_name: str | None = None
    """The pod's ``generateName``: a Job's retry is a new pod with a new suffix."""
    notes: list[str] = field(default_factory=list)
    job: JobPolicy | None = None

    @property
    def resource(self) -> str:
        """kubectl's ``deployment.apps/web``."""
        return f"{RESOURCES[self.kind][0]}/{self.name}"

    @property
    def workload(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}

    def retry_metadata(self, choice: Callable[[str], str] = secrets.choice) -> dict[str, Any]:
        """Metadata of the next pod a Job creates after a failure (a new name, no uid yet)."""
        meta = copy.deepcopy(self.metadata)
        meta.pop("uid", None)
        if self.generate_name:
            meta["name"] = generate_name(self.generate_name, choice)
        return meta


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    return value if type(value) is int else default


def _uid(rand: Callable[[int], bytes]) -> str:
    b = bytearray(rand(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _owner(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True,
            "blockOwnerDeletion": True}


def pod_for(obj: dict[str, Any], template: dict[str, Any], *, now: float | None = None,
            choice: Callable[[str], str] = secrets.choice,
            rand: Callable[[int], bytes] | None = None) -> ControllerPod:
    """The first pod ``obj``'s controller would create from ``template`` (its ``metadata``/``spec``).

    ``obj`` is the whole workload object; ``choice``/``rand``/``now`` stand for the controllers'
    randomness and clock (tests pass fixed ones)."""
    import os

    rand = rand or os.urandom
    kind = str(obj.get("kind") or "")
    ometa = _dict(obj.get("metadata"))
    name = str(ometa.get("name") or ometa.get("generateName") or "")
    namespace = ometa.get("namespace")
    wspec = _dict(obj.get("spec"))
    tmeta = copy.deepcopy(_dict(template.get("metadata")))
    spec = copy.deepcopy(_dict(template.get("spec")))
    labels = {str(k): str(v) for k, v in _dict(tmeta.get("labels")).items()}
    annotations = {str(k): str(v) for k, v in _dict(tmeta.get("annotations")).items()}
    meta: dict[str, Any] = {k: v for k, v in tmeta.items() if k not in ("name", "generateName", "labels",
                                                                         "annotations", "namespace")}
    notes: list[str] = []
    job: JobPolicy | None = None
    gen: str | None = None
    resource = RESOURCES[kind][0] if kind in RESOURCES else kind.lower()
    owner_uid = str(ometa.get("uid") or _uid(rand))

    def scaled() -> None:
        replicas = wspec.get("replicas", 1)
        if type(replicas) is int and replicas > 1:
            notes.append(f"{resource}/{name} asks for replicas: {replicas}; podsec runs one pod on this machine")

    if kind == "Deployment":
        scaled()
        collisions = _dict(obj.get("status")).get("collisionCount")
        h = template_hash(template, collisions if type(collisions) is int else None)
        labels["pod-template-hash"] = h
        rs = f"{name}-{h}"
        gen = f"{rs}-"
        meta["ownerReferences"] = [_owner("apps/v1", "ReplicaSet", rs, _uid(rand))]
    elif kind in ("ReplicaSet", "ReplicationController"):
        scaled()
        gen = f"{name}-"
        meta["ownerReferences"] = [_owner("apps/v1" if kind == "ReplicaSet" else "v1", kind, name, owner_uid)]
    elif kind == "DaemonSet":
        h = template_hash(template)
        labels["controller-revision-hash"] = h
        labels["pod-template-generation"] = str(_int(ometa.get("generation"), 1))
        gen = f"{name}-"
        meta["ownerReferences"] = [_owner("apps/v1", "DaemonSet", name, owner_uid)]
    elif kind == "StatefulSet":
        scaled()
        pod_name = f"{name}-0"
        labels["controller-revision-hash"] = f"{name}-{template_hash({'spec': {'template': template}})}"
        labels["statefulset.kubernetes.io/pod-name"] = pod_name
        labels["apps.kubernetes.io/pod-index"] = "0"
        meta["name"] = pod_name
        meta["ownerReferences"] = [_owner("apps/v1", "StatefulSet", name, owner_uid)]
    elif kind in ("Job", "CronJob"):
        if kind == "CronJob":
            jt = _dict(wspec.get("jobTemplate"))
            jspec = _dict(jt.get("spec"))
            minutes = int((time.time() if now is None else now) // 60)
            job_name = f"{name}-{minutes}"
        else:
            jspec = wspec
            job_name = name
        job_uid = str(ometa.get("uid") or _uid(rand)) if kind == "Job" else _uid(rand)
        manual = _dict(jspec.get("selector")) and jspec.get("manualSelector") is True
        if not manual:  # the API server's generated selector, added to the template's labels
            labels.update({"batch.kubernetes.io/controller-uid": job_uid, "batch.kubernetes.io/job-name": job_name,
                           "controller-uid": job_uid, "job-name": job_name})
        gen = f"{job_name}-"
        if jspec.get("completionMode") == "Indexed":
            annotations["batch.kubernetes.io/job-completion-index"] = "0"
            labels["batch.kubernetes.io/job-completion-index"] = "0"
            gen = f"{job_name}-0-"
        meta["ownerReferences"] = [_owner("batch/v1", "Job", job_name, job_uid)]
        meta["finalizers"] = ["batch.kubernetes.io/job-tracking"]
        for key, what in (("parallelism", "parallelism"), ("completions", "completions")):
            value = jspec.get(key)
            if type(value) is int and value > 1:
                notes.append(f"job.batch/{job_name} asks for {what}: {value}; podsec runs one pod at a time, once")
                break
        deadline = jspec.get("activeDeadlineSeconds")
        job = JobPolicy(job_name, max(_int(jspec.get("backoffLimit"), DEFAULT_BACKOFF_LIMIT), 0),
                        float(deadline) if type(deadline) is int and deadline > 0 else None)
    elif kind == "PodTemplate":
        meta["name"] = name
    if gen is not None:
        meta["name"] = generate_name(gen, choice)
        meta["generateName"] = gen
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    spec = controller_spec(obj, spec)
    if isinstance(namespace, str) and namespace:
        meta["namespace"] = namespace
    # The pod is created in the workload's order: name first, as ``kubectl get pod -o yaml`` shows it.
    ordered = {k: meta[k] for k in ("name", "generateName", "namespace") if k in meta}
    ordered.update({k: v for k, v in meta.items() if k not in ordered})
    return ControllerPod(kind, name, ordered, spec, gen, notes, job)


def controller_spec(obj: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The fields a controller sets in the pod spec it creates from ``obj``'s template (deterministic: the
    same for every pod it would make): a StatefulSet pod's ``hostname``/``subdomain`` and claim volumes
    (:mod:`podsec.api.defaults` owns that rule), an Indexed Job pod's ``hostname``. ``spec`` is not changed."""
    from podsec.api.defaults import statefulset_claim_volumes, with_claims

    kind = obj.get("kind")
    ometa = _dict(obj.get("metadata"))
    name = str(ometa.get("name") or "")
    wspec = _dict(obj.get("spec"))
    if kind == "StatefulSet":
        spec = {**with_claims(spec, statefulset_claim_volumes(obj)), "hostname": f"{name}-0"}
        if isinstance(wspec.get("serviceName"), str) and wspec["serviceName"]:
            spec["subdomain"] = wspec["serviceName"]
    elif kind == "Job" and wspec.get("completionMode") == "Indexed" and "hostname" not in spec:
        spec = {**spec, "hostname": f"{name}-0"}
    return spec


__all__ = ["ALPHANUMS", "CONTROLLER_KINDS", "RESOURCES", "ControllerPod", "JobPolicy", "controller_spec", "fnv32a",
           "generate_name", "pod_for", "random_string", "safe_encode", "template_hash"]
