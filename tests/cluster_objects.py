"""Objects as an API server stores them (defaults applied, owners linked by uid) for the cluster tests."""

from __future__ import annotations

import copy
from typing import Any

RESTRICTED_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def template(image: str = "registry.example/web:1", restricted: bool = False, **sc: Any) -> dict:
    c: dict[str, Any] = {"name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
                         "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    pod_sc: dict[str, Any] = {}
    if restricted:
        c["securityContext"] = dict(RESTRICTED_SC)
        pod_sc = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if sc:
        c.setdefault("securityContext", {}).update(sc)
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [c], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                     "schedulerName": "default-scheduler", "securityContext": pod_sc,
                     "terminationGracePeriodSeconds": 30}}


def namespace(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": f"ns-{name}",
                         "labels": {"kubernetes.io/metadata.name": name,
                                    **{f"pod-security.kubernetes.io/{k.replace('_', '-')}": v
                                       for k, v in labels.items()}}}}


def owner(obj: dict) -> list[dict]:
    return [{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
             "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]


def deployment(ns: str, name: str, tmpl: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "uid": f"deploy-{ns}-{name}"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": copy.deepcopy(tmpl)}}


def replicaset(dep: dict, hash_: str, tmpl: dict | None = None) -> dict:
    t = copy.deepcopy(tmpl if tmpl is not None else dep["spec"]["template"])
    t["metadata"].setdefault("labels", {})["pod-template-hash"] = hash_
    name = f"{dep['metadata']['name']}-{hash_}"
    ns = dep["metadata"]["namespace"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns, "uid": f"rs-{ns}-{name}", "ownerReferences": owner(dep)},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web", "pod-template-hash": hash_}},
                     "template": t}}


def cronjob(ns: str, name: str, tmpl: dict) -> dict:
    t = copy.deepcopy(tmpl)
    t["spec"]["restartPolicy"] = "OnFailure"
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": ns, "uid": f"cj-{ns}-{name}"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": t}}}}


def job(cj: dict, suffix: str) -> dict:
    ns = cj["metadata"]["namespace"]
    name = f"{cj['metadata']['name']}-{suffix}"
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns, "uid": f"job-{ns}-{name}", "ownerReferences": owner(cj)},
            "spec": {"template": copy.deepcopy(cj["spec"]["jobTemplate"]["spec"]["template"])}}


def pod(ns: str, name: str, tmpl: dict, owned_by: dict | None = None, phase: str = "Running",
        owner_refs: list[dict] | None = None) -> dict:
    t = copy.deepcopy(tmpl)
    meta = {"name": name, "namespace": ns, "uid": f"pod-{ns}-{name}", **t["metadata"]}
    if owned_by is not None:
        meta["ownerReferences"] = owner(owned_by)
    if owner_refs is not None:
        meta["ownerReferences"] = owner_refs
    spec = t["spec"]
    spec["nodeName"] = "node-1"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": phase}}


def demo(emu: Any) -> None:
    """A small cluster to try ``podsec audit`` on (the README's example and the audit tests)."""
    emu.add(namespace("prod", enforce="restricted", enforce_version="v1.30", warn="restricted"))
    emu.add(namespace("dev", enforce="baseline", audit="restricted"))
    emu.add(namespace("legacy"))
    d = deployment("prod", "web", template(restricted=True, runAsUser=0))
    old = replicaset(d, "old1", template())
    new = replicaset(d, "new1")
    for o in (d, old, new):
        emu.add(o)
    for i in range(3):
        emu.add(pod("prod", f"web-new1-{i}", new["spec"]["template"], new))
    emu.add(pod("prod", "web-old1-0", old["spec"]["template"], old))
    emu.add(pod("prod", "web-old1-1", old["spec"]["template"], old, phase="Succeeded"))
    emu.add(deployment("prod", "idle", template(restricted=True, runAsUser=1000)))
    cj = cronjob("dev", "backup", template(privileged=True))
    j = job(cj, "28000")
    emu.add(cj)
    emu.add(j)
    emu.add(pod("dev", "backup-28000-x", j["spec"]["template"], j, phase="Running"))
    emu.add(pod("dev", "debug", template(capabilities={"add": ["CAP_NET_ADMIN"]})))
    emu.add(pod("legacy", "orphan", template(), owner_refs=[
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "x", "controller": True}]))
    emu.add(pod("legacy", "rollout-pod", template(), owner_refs=[
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "r", "uid": "y", "controller": True}]))
    emu.add(pod("kube-system", "etcd-node-1", template(), owner_refs=[
        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "n", "controller": True}]))
