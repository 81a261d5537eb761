"""The admission decision of ``podsec webhook``: an ``admission.k8s.io/v1`` AdmissionReview in, its answer
out. Pure: no socket, no clock, no API call (namespace labels come from a function the server passes).

Pods and pod controllers are decided as Pod Security Admission's ``admission.go`` decides them, with the
levels from :func:`podsec.policy.pss.policy_to_evaluate` and the verdicts from
:func:`podsec.policy.pss.evaluate`: an enforce violation denies a pod (403, PSA's message), warn
violations become warnings, audit violations an ``audit-violations`` audit annotation (the API server
prefixes a webhook's annotation keys with the webhook's name). podsec's own predictions, from the same
:func:`podsec.check.judge` ``podsec check`` runs, are added as warnings, or denials for the IDs
given to ``--deny``. Anything that goes wrong inside podsec's own analysis lets the pod in, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from podsec.policy.pss import DEFAULT_POLICY, LevelVersion, NamespacePolicy, evaluate, go_quote, policy_to_evaluate
from podsec.resolve import ImageLookup

log = logging.getLogger("podsec.webhook")

IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log", "portforward", "proxy",
                                      "status"})
TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "podtemplates"): ("template",),
    ("", "replicationcontrollers"): ("spec", "template"),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}
KINDS = {("", "podtemplates"): "PodTemplate", ("", "replicationcontrollers"): "ReplicationController",
         ("apps", "replicasets"): "ReplicaSet", ("apps", "deployments"): "Deployment",
         ("apps", "daemonsets"): "DaemonSet", ("apps", "statefulsets"): "StatefulSet", ("batch", "jobs"): "Job",
         ("batch", "cronjobs"): "CronJob", ("", "pods"): "Pod"}
WARNABLE = ("PS001", "PS003", "PS005", "PS009", "API", "DECODE")
"""podsec's own predictions the webhook reports: a pod that will not start, a capability the runtime will not
grant, a container that turns seccomp off, a sandbox that cannot be created, an unknown field (``API``: strict
decoding against podsec's schema; the API server drops or refuses these before admission, so one here is a
field newer than podsec knows), a value podsec cannot decode."""


class NamespaceLookupError(Exception):
    """The namespace's labels could not be read."""


@dataclass(frozen=True, slots=True)
class Exemptions:
    usernames: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Config:
    """A PodSecurityConfiguration: default levels for unlabelled namespaces and exemptions."""

    defaults: NamespacePolicy = DEFAULT_POLICY
    exemptions: Exemptions = field(default_factory=Exemptions)


def parse_config(doc: object, where: str) -> Config:
    """A ``PodSecurityConfiguration`` (``pod-security.admission.config.k8s.io/v1``), alone or inside an
    ``AdmissionConfiguration``'s PodSecurity plugin, as kube-apiserver's ``--admission-control-config-file``."""
    from podsec.errors import InputError

    if not isinstance(doc, dict):
        raise InputError("expected a PodSecurityConfiguration object", file=where)
    if doc.get("kind") == "AdmissionConfiguration":
        plugins = doc.get("plugins") if isinstance(doc.get("plugins"), list) else []
        found = next((p for p in plugins if isinstance(p, dict) and p.get("name") == "PodSecurity"), None)
        if found is None or not isinstance(found.get("configuration"), dict):
            raise InputError("AdmissionConfiguration has no PodSecurity plugin configuration", file=where)
        doc = found["configuration"]
    assert isinstance(doc, dict)
    if doc.get("kind") != "PodSecurityConfiguration":
        raise InputError(f"kind: expected PodSecurityConfiguration, got {doc.get('kind')!r}", file=where)
    defaults = doc.get("defaults") or {}
    exemptions = doc.get("exemptions") or {}
    if not isinstance(defaults, dict) or not isinstance(exemptions, dict):
        raise InputError("defaults and exemptions must be objects", file=where)
    labels = {f"pod-security.kubernetes.io/{k}": v for k, v in defaults.items()}
    policy, errors = policy_to_evaluate(labels)
    if errors:
        raise InputError(errors[0].replace("metadata.labels[pod-security.kubernetes.io/", "defaults[")
                         .replace("]:", ":", 1), file=where, field="defaults")

    def strings(key: str) -> frozenset[str]:
        value = exemptions.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InputError(f"exemptions.{key}: must be a list of non-empty strings", file=where)
        return frozenset(value)

    return Config(policy, Exemptions(strings("usernames"), strings("namespaces"), strings("runtimeClasses")))


@dataclass(slots=True)
class Decision:
    """An AdmissionResponse being built (``status`` only when denied)."""

    allowed: bool = True
    status: dict | None = None
    warnings: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)

    def response(self, uid: object) -> dict:
        resp: dict[str, Any] = {"uid": uid, "allowed": self.allowed}
        if self.status is not None:
            resp["status"] = self.status
        if self.warnings:
            resp["warnings"] = self.warnings
        if self.annotations:
            resp["auditAnnotations"] = self.annotations
        return resp


def forbidden(resource: str, name: str, message: str) -> dict:
    """A 403 Status as apimachinery's ``NewForbidden`` words it."""
    text = f'{resource} "{name}" is forbidden: {message}' if name else f"{resource} is forbidden: {message}"
    details: dict[str, Any] = {"kind": resource}
    if name:
        details["name"] = name
    return {"metadata": {}, "status": "Failure", "message": text, "reason": "Forbidden", "details": details,
            "code": 403}


def failure(message: str, reason: str, code: int) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def _d(v: object) -> dict:
    return v if isinstance(v, dict) else {}


def _significant_update(pod: dict, old: dict) -> bool:
    """PSA's ``isSignificantPodUpdate``: only image, container count and seccomp annotation changes matter."""
    ann, old_ann = _d(_d(pod.get("metadata")).get("annotations")), _d(_d(old.get("metadata")).get("annotations"))
    key = "seccomp.security.alpha.kubernetes.io/pod"
    if ann.get(key) != old_ann.get(key):
        return True
    spec, old_spec = _d(pod.get("spec")), _d(old.get("spec"))

    def containers(s: dict, k: str) -> list[dict]:
        v = s.get(k)
        return [c for c in v if isinstance(c, dict)] if isinstance(v, list) else []

    def changed(c: dict, oc: dict) -> bool:
        ckey = "container.seccomp.security.alpha.kubernetes.io/" + str(c.get("name"))
        return c.get("image") != oc.get("image") or ann.get(ckey) != old_ann.get(ckey)

    for k in ("containers", "initContainers"):
        new, prev = containers(spec, k), containers(old_spec, k)
        if len(new) != len(prev) or any(changed(c, oc) for c, oc in zip(new, prev)):
            return True
    prev_eph = {c.get("name"): c for c in containers(old_spec, "ephemeralContainers")}
    for c in containers(spec, "ephemeralContainers"):
        oc = prev_eph.get(c.get("name"))
        if oc is None or changed(c, oc):
            return True
    return False


class Decider:
    """Decides AdmissionReviews; ``labels_of(namespace)`` returns the namespace's labels (raising
    :class:`NamespaceLookupError` when they cannot be read)."""

    def __init__(self, labels_of: Callable[[str], dict], config: Config | None = None, *,
                 images: ImageLookup | None = None, deny: frozenset[str] = frozenset(),
                 feature_gates: frozenset[str] = frozenset()) -> None:
        self.labels_of = labels_of
        self.config = config or Config()
        self.images = images
        self.deny = deny
        self.feature_gates = feature_gates

    # -- entry ---------------------------------------------------------------------------------
    def review(self, doc: object) -> dict:
        """The AdmissionReview answering ``doc``; raises ValueError for something that is not a v1 review."""
        if not isinstance(doc, dict) or doc.get("kind") != "AdmissionReview":
            raise ValueError("expected an AdmissionReview")
        if doc.get("apiVersion") != "admission.k8s.io/v1":
            raise ValueError(f"unsupported AdmissionReview apiVersion {doc.get('apiVersion')!r}: "
                             "admission.k8s.io/v1 only")
        req = doc.get("request")
        if not isinstance(req, dict) or "uid" not in req:
            raise ValueError("AdmissionReview has no request.uid")
        try:
            decision = self.decide(req)
        except Exception as exc:  # podsec's own failure never blocks a pod
            log.exception("internal error deciding %s %s/%s", req.get("kind"), req.get("namespace"), req.get("name"))
            decision = Decision(warnings=[f"podsec: internal error, the object was not checked: "
                                          f"{type(exc).__name__}: {exc}"])
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response":
                decision.response(req["uid"])}

    def decide(self, req: dict) -> Decision:
        res = _d(req.get("resource"))
        key = (res.get("group") or "", res.get("resource") or "")
        if key == ("", "pods"):
            return self._pod(req)
        if key in TEMPLATE_PATHS:
            return self._controller(req, key)
        return Decision()

    # -- PSA's flow ----------------------------------------------------------------------------
    def _exempt(self, req: dict) -> Decision | None:
        ex = self.config.exemptions
        ns = req.get("namespace") or ""
        if ns and ns in ex.namespaces:
            return Decision(annotations={"exempt": "namespace"})
        user = _d(req.get("userInfo")).get("username") or ""
        if user and user in ex.usernames:
            return Decision(annotations={"exempt": "user"})
        return None

    def _policy(self, req: dict) -> tuple[NamespacePolicy, list[str]] | Decision:
        """The namespace's policy and label errors, or the final Decision when the request is exempt or the
        namespace cannot be read (PSA's order: exemptions before the namespace lookup)."""
        exempt = self._exempt(req)
        if exempt is not None:
            return exempt
        ns = req.get("namespace") or ""
        try:
            labels = self.labels_of(ns)
        except NamespaceLookupError as exc:
            log.error("failed to look up namespace %s: %s", ns, exc)
            return Decision(warnings=[f"podsec: namespace {go_quote(ns)} could not be read ({exc}): Pod Security "
                                      "was not checked"],
                            annotations={"error": f"failed to lookup namespace {go_quote(ns)}: {exc}"})
        return policy_to_evaluate(labels, self.config.defaults)

    def _pod(self, req: dict) -> Decision:
        sub = req.get("subResource") or ""
        if sub in IGNORED_POD_SUBRESOURCES:
            return Decision()
        found = self._policy(req)
        if isinstance(found, Decision):
            return found
        policy, errors = found
        pod = req.get("object")
        if not isinstance(pod, dict) or not isinstance(pod.get("spec"), dict):
            return Decision(False, failure("failed to decode pod", "BadRequest", 400))
        if req.get("operation") == "UPDATE":
            old = req.get("oldObject")
            if not isinstance(old, dict):
                return Decision(False, failure("failed to decode old pod", "BadRequest", 400))
            if not _significant_update(pod, old):
                return Decision()
        name = req.get("name") or _d(pod.get("metadata")).get("name") or ""
        if not errors and policy.fully_privileged():
            decision = Decision(annotations={"enforce-policy": str(policy.enforce)})
        else:
            decision = self._evaluate(policy, errors, _d(pod.get("metadata")), pod["spec"], enforce=True,
                                      name=name)
        if decision.annotations.get("exempt") != "runtimeClass":
            self._own_checks(decision, pod, "Pod", name, req)
        return decision

    def _controller(self, req: dict, key: tuple[str, str]) -> Decision:
        if req.get("subResource"):
            return Decision()
        found = self._policy(req)
        if isinstance(found, Decision):
            return found
        policy, errors = found
        obj = req.get("object")
        if not isinstance(obj, dict):
            return Decision(False, failure("failed to decode object", "BadRequest", 400))
        tmpl: object = obj
        for seg in TEMPLATE_PATHS[key]:
            tmpl = _d(tmpl).get(seg) if isinstance(tmpl, dict) else None
        if tmpl is None:
            return Decision()
        if not isinstance(tmpl, dict):
            return Decision(False, failure("failed to extract pod template", "BadRequest", 400))
        name = req.get("name") or _d(obj.get("metadata")).get("name") or ""
        if not errors and policy.warn.level == "privileged" and policy.audit.level == "privileged":
            decision = Decision()
        else:
            decision = self._evaluate(policy, errors, _d(tmpl.get("metadata")), _d(tmpl.get("spec")), enforce=False,
                                      name=name)
        if decision.annotations.get("exempt") != "runtimeClass":
            self._own_checks(decision, obj, KINDS[key], name, req)
        return decision

    def _evaluate(self, policy: NamespacePolicy, errors: list[str], meta: dict, spec: dict, *, enforce: bool,
                  name: str) -> Decision:
        """PSA's ``EvaluatePod``: enforce (pods only), audit, and warn while still allowed."""
        rc = spec.get("runtimeClassName")
        if isinstance(rc, str) and rc and rc in self.config.exemptions.runtime_classes:
            return Decision(annotations={"exempt": "runtimeClass"})
        d = Decision()
        if errors:
            agg = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            d.annotations["error"] = f"Failed to parse policy: {agg}"
        cache: dict[LevelVersion, Any] = {}

        def result(lv: LevelVersion) -> Any:
            if lv not in cache:
                cache[lv] = evaluate(meta, spec, lv.level, lv.version)
            return cache[lv]

        if enforce:
            d.annotations["enforce-policy"] = str(policy.enforce)
            r = result(policy.enforce)
            if not r.allowed:
                d.allowed = False
                d.status = forbidden("pods", name, f'violates PodSecurity "{policy.enforce}": {r.forbidden_detail()}')
        r = result(policy.audit)
        if not r.allowed:
            d.annotations["audit-violations"] = (f'would violate PodSecurity "{policy.audit}": '
                                                 f"{r.forbidden_detail()}")
        if d.allowed:
            r = result(policy.warn)
            if not r.allowed:
                d.warnings.append(f'would violate PodSecurity "{policy.warn}": {r.forbidden_detail()}')
        return d

    # -- podsec's own predictions --------------------------------------------------------------
    def _own_checks(self, decision: Decision, obj: dict, kind: str, name: str, req: dict) -> None:
        if not decision.allowed:
            return
        try:
            findings = self._findings(obj)
        except Exception as exc:  # fail open: PSA's decision stands, podsec says it could not look
            log.exception("podsec's checks failed on %s %s/%s", kind, req.get("namespace"), name)
            decision.warnings.append(f"podsec: internal error, podsec's own checks were skipped: "
                                     f"{type(exc).__name__}: {exc}")
            return
        denied = [f for f in findings if kind == "Pod" and f[0] in self.deny]
        if denied:
            decision.allowed = False
            decision.status = forbidden("pods", name, "; ".join(f"podsec {i}: {m}" for i, m in denied))
            decision.warnings.clear()
            return
        decision.warnings.extend(f"podsec {i}: {m}" for i, m in findings)

    def _findings(self, obj: dict) -> list[tuple[str, str]]:
        from podsec.check import Policy
        from podsec.cluster.judge import judge_stored
        from podsec.errors import PodsecError

        try:
            report = judge_stored(obj, Policy("privileged", "latest", "webhook"), images=self.images,
                                  feature_gates=self.feature_gates)
        except PodsecError as exc:
            return [("DECODE", exc.render())]
        out = []
        for f in getattr(report, "findings", ()):
            if f.id not in WARNABLE or (f.id == "PS003" and f.severity != "high"):
                continue
            out.append((f.id, f.message))
        return out
