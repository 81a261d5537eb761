"""``podsec audit``: every workload of a live cluster judged once, at its namespace's Pod Security level.

The judgement is :func:`podsec.check.judge` (through :mod:`podsec.cluster.judge`), the one ``podsec check``
runs on files, minus API validation (the API server already stored these objects). What is new here is only
the reading: pages of raw JSON, and the owner roll-up that reports a pod under its top controller (Pod → ReplicaSet →
Deployment, Pod → Job → CronJob) instead of once per Pod, ReplicaSet and Deployment. Memory holds one
page of objects, one result per workload and a uid map of the controllers, never every pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from podsec.cluster import kube
from podsec.errors import PodsecError
from podsec.manifest.kinds import TEMPLATE_PATHS
from podsec.policy.pss import LevelVersion, NamespacePolicy, evaluate, policy_to_evaluate
from podsec.resolve import ImageLookup

LIVE_PHASES = ("Pending", "Running")
KIND_ORDER = {r.kind: i for i, r in enumerate(kube.CONTROLLERS)} | {"Pod": len(kube.CONTROLLERS)}
TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_HASH_LABEL = "controller-revision-hash"


@dataclass(slots=True)
class AuditOptions:
    namespace: str | None = None
    level: str | None = None
    version: str | None = None
    images: ImageLookup | None = None
    feature_gates: frozenset[str] = frozenset()
    page_size: int = kube.PAGE_SIZE
    progress: Callable[[str], None] | None = None


@dataclass(slots=True)
class _Entry:
    """One reported workload while pods are still being counted."""

    result: dict
    stale: int = 0
    stale_from: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Audit:
    results: list[dict]
    notes: list[str]
    counts: dict[str, int]


def _fingerprint(template: object, drop_label: str | None = None) -> str:
    """A template's identity ignoring one label, as the Deployment controller's ``EqualIgnoreHash``."""
    if isinstance(template, dict) and drop_label:
        meta = template.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("labels"), dict) and drop_label in meta["labels"]:
            labels = {k: v for k, v in meta["labels"].items() if k != drop_label}
            template = {**template, "metadata": {**meta, "labels": labels}}
    return hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _controller_ref(obj: dict) -> dict | None:
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def _meta(obj: dict) -> dict:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


class Auditor:
    """Reads the cluster and judges as it goes; :meth:`run` returns the sorted results."""

    def __init__(self, api: Any, opts: AuditOptions) -> None:
        self.api = api
        self.opts = opts
        self.policies: dict[str, tuple[NamespacePolicy, bool]] = {}  # name -> (policy, has an enforce label)
        self.entries: dict[str, _Entry] = {}  # uid of a reported workload -> its entry
        self.top: dict[str, str | None] = {}  # uid of any controller -> uid of the reported workload above it
        self.fingerprints: dict[str, str] = {}  # Deployment uid -> its template, ignoring pod-template-hash
        self.rs_stale: dict[str, bool] = {}  # ReplicaSet uid -> it runs a template its Deployment no longer has
        self.update_revision: dict[str, str] = {}  # StatefulSet uid -> status.updateRevision
        self.notes: list[str] = []
        self.kube_version: str | None = None  # the cluster's, for the schema unknown fields are judged against
        self.counts = {"namespaces": 0, "controllers": 0, "pods": 0, "live pods": 0}

    # -- reading -------------------------------------------------------------------------------
    def run(self) -> Audit:
        self.kube_version = kube.server_version(self.api)
        self._read_namespaces()
        for res in kube.CONTROLLERS:
            try:
                for obj in kube.list_objects(self.api, res, self.opts.namespace, self.opts.page_size):
                    self.counts["controllers"] += 1
                    self._controller(obj)
                    self._tick()
            except kube.ClusterError as exc:
                if ": 404 " not in exc.message:
                    raise
                self.notes.append(f"the API server does not serve {res.group_version} {res.plural}: skipped")
        for obj in kube.list_objects(self.api, kube.PODS, self.opts.namespace, self.opts.page_size):
            self.counts["pods"] += 1
            self._pod(obj)
            self._tick()
        return Audit(self._finish(), self.notes, self.counts)

    def _tick(self) -> None:
        if self.opts.progress is not None:
            c = self.counts
            self.opts.progress(f"read {c['namespaces']:,} namespaces, {c['controllers']:,} controllers, "
                               f"{c['pods']:,} pods; {len(self.entries):,} workloads judged")

    def _read_namespaces(self) -> None:
        if self.opts.namespace:
            path = kube.NAMESPACES.path(name=self.opts.namespace)
            try:
                objs = [kube.get_json(self.api, path)]
            except kube.ClusterError as exc:
                if ": 404 " in exc.message:
                    raise kube.ClusterError(f'namespaces "{self.opts.namespace}" not found') from None
                raise
        else:
            objs = kube.list_objects(self.api, kube.NAMESPACES, None, self.opts.page_size)  # type: ignore[assignment]
        for ns in objs:
            name = _meta(ns).get("name")
            if not isinstance(name, str):
                continue
            labels = _meta(ns).get("labels")
            policy, errors = policy_to_evaluate(labels if isinstance(labels, dict) else {})
            self.policies[name] = (policy, any(str(k).startswith("pod-security.kubernetes.io/enforce")
                                               for k in (labels if isinstance(labels, dict) else {})))
            self.counts["namespaces"] += 1
            for e in errors:
                self.notes.append(f"Namespace/{name}: {e}")

    # -- controllers ---------------------------------------------------------------------------
    def _controller(self, obj: dict) -> None:
        meta = _meta(obj)
        uid = meta.get("uid")
        kind = obj.get("kind")
        if not isinstance(uid, str):
            return
        ref = _controller_ref(obj)
        if kind == "Deployment":
            tmpl = (obj.get("spec") or {}).get("template")
            self.fingerprints[uid] = _fingerprint(tmpl, TEMPLATE_HASH_LABEL)
        elif kind == "StatefulSet":
            rev = (obj.get("status") or {}).get("updateRevision")
            if isinstance(rev, str) and rev:
                self.update_revision[uid] = rev
        if ref is not None:
            owner_uid = ref.get("uid")
            owner = f"{ref.get('kind')}/{ref.get('name')}"
            if owner_uid in self.top:
                self.top[uid] = self.top[owner_uid]
                if kind == "ReplicaSet" and ref.get("kind") == "Deployment" and owner_uid in self.fingerprints:
                    tmpl = (obj.get("spec") or {}).get("template")
                    self.rs_stale[uid] = _fingerprint(tmpl, TEMPLATE_HASH_LABEL) != self.fingerprints[owner_uid]
                return
            note = (f"its owner {owner} is not a pod controller podsec knows (a custom resource?): judged on "
                    "its own" if ref.get("kind") not in KIND_ORDER else f"its owner {owner} was not found")
            self._report(obj, uid, [note])
            return
        self._report(obj, uid, [])

    # -- pods ----------------------------------------------------------------------------------
    def _pod(self, pod: dict) -> None:
        meta = _meta(pod)
        uid = meta.get("uid") if isinstance(meta.get("uid"), str) else f"pod/{meta.get('namespace')}/{meta.get('name')}"
        phase = (pod.get("status") or {}).get("phase") if isinstance(pod.get("status"), dict) else None
        live = phase in LIVE_PHASES or phase is None
        if live:
            self.counts["live pods"] += 1
        ref = _controller_ref(pod)
        if ref is None:
            self._report(pod, uid, [], pods=1 if live else 0)
            return
        owner_uid = ref.get("uid")
        owner_kind = ref.get("kind")
        if owner_kind == "Node":
            self._report(pod, uid, [f"static pod of node {ref.get('name')} (a mirror of the kubelet's manifest)"],
                         pods=1 if live else 0)
            return
        top = self.top.get(owner_uid) if isinstance(owner_uid, str) else None
        if top is None or top not in self.entries:
            owner = f"{owner_kind}/{ref.get('name')}"
            note = (f"its owner {owner} is not a pod controller podsec knows (a custom resource?): judged on its own"
                    if owner_kind not in KIND_ORDER else f"its owner {owner} was not found: judged on its own")
            self._report(pod, uid, [note], pods=1 if live else 0)
            return
        entry = self.entries[top]
        if not live:
            return
        entry.result["pods"] += 1
        if owner_kind == "ReplicaSet" and self.rs_stale.get(owner_uid):
            entry.stale += 1
            entry.stale_from.add(f"ReplicaSet/{ref.get('name')}")
        elif owner_kind == "StatefulSet" and owner_uid in self.update_revision:
            rev = (meta.get("labels") or {}).get(REVISION_HASH_LABEL) if isinstance(meta.get("labels"), dict) else None
            if rev is not None and rev != self.update_revision[owner_uid]:
                entry.stale += 1
                entry.stale_from.add(f"revision {rev}")

    # -- judging -------------------------------------------------------------------------------
    def _policy(self, namespace: str) -> tuple[NamespacePolicy, str]:
        found = self.policies.get(namespace)
        policy = found[0] if found else NamespacePolicy(*(LevelVersion("privileged", "latest"),) * 3)
        source = f"namespace {namespace}" if found and found[1] else "default"
        if self.opts.level is not None:
            enforce = LevelVersion(self.opts.level, self.opts.version or "latest")
            return NamespacePolicy(enforce, policy.audit, policy.warn), "--level"
        if self.opts.version is not None:
            return NamespacePolicy(LevelVersion(policy.enforce.level, self.opts.version), policy.audit,
                                   policy.warn), source + " (--version)"
        return policy, source

    def _report(self, obj: dict, uid: str, notes: list[str], pods: int = 0) -> None:
        from podsec.check import Policy, report_dict
        from podsec.cluster.judge import api_object, judge_stored

        kobj = api_object(obj)
        namespace = kobj.namespace or "default"
        ns_policy, source = self._policy(namespace)
        policy = Policy(ns_policy.enforce.level, ns_policy.enforce.version, source)
        try:
            report = judge_stored(obj, policy, images=self.opts.images, feature_gates=self.opts.feature_gates,
                                  kube_version=self.kube_version)
            if report is None:
                return
            result = report_dict(report)  # type: ignore[arg-type]
        except PodsecError as exc:  # strict decoding: the object cannot be read as a pod template
            result = {
                "kind": kobj.kind, "namespace": namespace, "name": kobj.name,
                "pss": {"level": policy.level, "version": policy.version, "source": source, "allowed": True,
                        "message": ""},
                "findings": [{"id": "DECODE", "severity": "critical", "message": exc.message, "field": exc.field or "",
                              "line": None, "container": None, "why": "podsec cannot decode the object as a pod "
                              "template, so it was not judged.", "fix": "correct the field as the message says"}],
            }
        result["file"] = None
        result["line"] = None
        for f in result["findings"]:
            f["line"] = None
        tmpl = kobj.obj
        for seg in TEMPLATE_PATHS.get(kobj.kind, ()):
            tmpl = tmpl.get(seg) if isinstance(tmpl, dict) else None
        tmpl = tmpl if isinstance(tmpl, dict) else {}
        for mode, lv in (("warn", ns_policy.warn), ("audit", ns_policy.audit)):
            pss = evaluate(tmpl.get("metadata"), tmpl.get("spec"), lv.level, lv.version)
            result["pss"][mode] = {
                "level": lv.level, "version": lv.version, "allowed": pss.allowed,
                "message": "" if pss.allowed else f'would violate PodSecurity "{lv}": {pss.forbidden_detail()}',
            }
        result["pods"] = pods
        result["notes"] = notes
        self.entries[uid] = _Entry(result)
        self.top[uid] = uid

    def _finish(self) -> list[dict]:
        out = []
        for entry in self.entries.values():
            r = entry.result
            if entry.stale:
                r["notes"].append(f"{entry.stale} of {r['pods']} live pods run an older template than the "
                                  f"workload's ({', '.join(sorted(entry.stale_from))}): a rollout is pending or stuck")
            out.append(r)
        out.sort(key=lambda r: (r["namespace"], KIND_ORDER.get(r["kind"], 99), r["name"]))
        return [{k: r[k] for k in ("file", "line", "kind", "namespace", "name", "pss", "findings", "pods", "notes")}
                for r in out]


def audit(api: Any, opts: AuditOptions) -> Audit:
    return Auditor(api, opts).run()
