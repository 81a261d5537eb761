"""The admission step: what the API server does to a manifest before anything else looks at it.

Every command (check, explain, run, apply, trace, fix, perms) calls :func:`admit` (or
:func:`admit_files`) and nothing else to get from loaded documents to pods:

0. **strict decoding** (:mod:`podsec.api.strict`) — fields the schema of the Kubernetes version does not
   have, as kubectl's ``--validate`` asks: ``strict`` refuses a created object with the server's
   ``strict decoding error`` (``create``) or keeps them in :attr:`AdmittedPod.unknown` for ``check`` to
   report; ``warn`` and ``ignore`` drop them (``warn`` lists them in :attr:`Admission.warnings`);
1. **decode** — a value of the wrong type (``runAsUser: "abc"``) cannot even be decoded: bad input,
   raised at once as an :class:`~podsec.errors.InputError` (exit 2) naming file, document and field;
2. **feature-gated fields** (:mod:`podsec.features`) — validated when their gate is on, dropped from
   the stored spec when it is off (``dropDisabledPodFields``; what was dropped is kept in ``dropped``
   so ``check`` can report it and ``run`` can warn);
3. **API validation** — object metadata (name, namespace) first, then the pod spec, with the API
   server's words (:mod:`podsec.api.validation`); the errors are *returned*, in the API server's
   order: ``check`` turns them into findings, the other commands refuse the object with
   :meth:`AdmittedPod.invalid`;
4. **defaults** — the pod's metadata gets the name and namespace it will have (``-n``, ``default``); the
   spec the volume defaults validation depends on (:mod:`podsec.api.defaults`: a source-less volume is an
   emptyDir, a StatefulSet's pods get its volumeClaimTemplates as claims), applied before validation.

Signature (stable; other stages plug in here)::

    admit(objects, AdmitOptions(feature_gates=..., namespace=..., create=...)) -> Admission
    admit_files(files, options) -> Admission            # load + admit
    Admission.pods: list[AdmittedPod]                   # one per workload, in input order
    Admission.objects: list[K8sObject]                  # every loaded object (Namespaces, ConfigMaps, ...)
    Admission.config_objects: list[dict]                # ConfigMaps and Secrets, namespace filled in
    AdmittedPod.workload / .metadata / .spec / .errors / .dropped / .messages() / .invalid()

Two modes, because the API server sees two different objects: by default each object is judged as
given (a Deployment's template as a template, errors spelled ``spec.template.spec…``), as ``check``
and ``explain`` do; with ``create=True`` each workload's pod is judged as the Pod it becomes (what
``run``, ``apply`` and ``trace`` create), errors spelled from the Pod's root.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from podsec import features
from podsec.api.fielderror import FieldError
from podsec.api.strict import StrictDecodingError, UnknownField, drop, kubectl_error, unknown_fields
from podsec.errors import PodsecError
from podsec.features import STOCK, FeatureGates, GatedField
from podsec.manifest.kinds import Workload, workload_of
from podsec.manifest.loader import K8sObject

CONFIG_KINDS = ("ConfigMap", "Secret")
"""Objects that go with every pod of the input (env and volumes)."""


class PodInvalid(PodsecError):
    """The API server's Invalid status for an object (kubectl: ``The Pod "x" is invalid: …``)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class AdmitOptions:
    """What changes the API server's verdict, and what the command is about to do with the pods."""

    feature_gates: FeatureGates = STOCK
    allow_privileged: bool = True
    """``kube-apiserver --allow-privileged``."""
    namespace: str | None = None
    """kubectl's ``-n``: the namespace of every object without one; a workload naming another is an error."""
    create: bool = False
    """The command creates the pods (run, apply, trace): each workload's pod is validated as a Pod, under
    the name it gets (``generate_names``: from ``generateName`` when there is no name, as the API server
    does on create)."""
    generate_names: bool = False
    pods_only: bool = False
    """Only ``kind: Pod`` objects are workloads (run and apply); other kinds are ignored."""
    field_validation: str = "strict"
    """kubectl's ``--validate`` for unknown fields: ``strict``, ``warn`` or ``ignore`` (:mod:`podsec.api.strict`)."""
    kube_version: str | None = None
    """The Kubernetes version whose schema decides which fields exist (``v1.N``; None: the latest)."""


@dataclass(slots=True)
class AdmittedPod:
    """One workload after admission."""

    workload: Workload
    metadata: dict[str, Any]
    """The pod's metadata, name and namespace filled in (the template's own metadata for a workload)."""
    spec: dict[str, Any]
    """The pod spec as the API server stores it: fields of disabled feature gates dropped."""
    errors: list[FieldError] = field(default_factory=list)
    """API validation errors, object metadata first; paths from the document's object (see :meth:`messages`)."""
    dropped: list[GatedField] = field(default_factory=list)
    """Fields of disabled feature gates that were set (and dropped from :attr:`spec`)."""
    prefix: tuple[str | int, ...] = ()
    """Where the spec's paths start in the document's object (``spec.template`` for a Deployment), or ``()``
    when the errors are spelled from the created Pod's root (``create``)."""
    meta_errors: int = 0
    """How many of :attr:`errors` are object-metadata errors (paths from the object's root, never prefixed)."""
    meta_errors_from_pod: bool = False
    """The errors are the created Pod's (``create``), not the document's object's."""
    unknown: list[UnknownField] = field(default_factory=list)
    """Unknown fields under ``--validate=strict`` (paths from the document's object), for ``check`` to report."""
    controller: Any = None
    """With ``create``, for a workload other than a Pod: the pod its controller would create first
    (a :class:`podsec.api.controllers.ControllerPod`: name, labels, a StatefulSet's claims, a Job's limits)."""

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")

    @property
    def kind(self) -> str:
        return self.workload.kind

    def error_path(self, i: int) -> tuple[str | int, ...]:
        """The path of ``errors[i]`` inside the document's object (for lines)."""
        e = self.errors[i]
        return tuple(e.location) if i < self.meta_errors else self.workload.template + tuple(e.location)

    def messages(self) -> list[str]:
        """Each error as ``<field path>: <message>``, the line the API server prints (and ``check`` reports)."""
        return [e.render() if i < self.meta_errors else e.render(self.prefix) for i, e in enumerate(self.errors)]

    def strict_error(self) -> StrictDecodingError | None:
        """kubectl's BadRequest for the unknown fields (None when there are none)."""
        if not self.unknown:
            return None
        obj = self.workload.obj
        return StrictDecodingError(kubectl_error(obj.obj, self.unknown, obj.source.display))

    def invalid(self, *, located: bool = True) -> PodInvalid | None:
        """kubectl's error for the object (None when valid); ``located`` adds file, line and document."""
        if not self.errors:
            return None
        created = self.prefix == () and self.meta_errors_from_pod
        kind, name = ("Pod", self.name) if created else (self.kind, self.workload.name)
        message = invalid_message(self.messages(), kind, name)
        if not located:
            return PodInvalid(message)
        obj = self.workload.obj
        return PodInvalid(message, file=obj.source.display, line=obj.line_of(), doc=obj.label())


@dataclass(slots=True)
class Admission:
    """Everything the input holds, after admission."""

    pods: list[AdmittedPod]
    objects: list[K8sObject]
    config_objects: list[dict[str, Any]] = field(default_factory=list)
    dropped_unknown: list[tuple[K8sObject, UnknownField]] = field(default_factory=list)
    """Unknown fields dropped under ``--validate=warn`` (see :meth:`warnings`)."""

    def warnings(self, *, located: bool = False) -> list[str]:
        """kubectl's ``Warning: unknown field "…"`` lines; ``located`` adds ``(file:line Kind/name)``."""
        if not located:
            return [f"Warning: {u.error()}" for _, u in self.dropped_unknown]
        return [f"Warning: {u.error()} ({o.source.display}:{o.line_of(u.path)} {o.label()})"
                for o, u in self.dropped_unknown]

    def raise_invalid(self, *, located: bool = True) -> None:
        """Refuse the input if any pod cannot be decoded (unknown fields) or is invalid (the first, in input
        order)."""
        for p in self.pods:
            err = p.strict_error() or p.invalid(located=located)
            if err is not None:
                raise err


def admit(objects: Iterable[K8sObject], options: AdmitOptions = AdmitOptions()) -> Admission:
    """Decode, drop or validate gated fields, validate and default every workload in ``objects``.

    Raises InputError (exit 2) for what cannot be decoded; returns API validation errors per pod.
    """
    objs = list(objects)
    pods: list[AdmittedPod] = []
    configs: list[dict[str, Any]] = []
    dropped: list[tuple[K8sObject, UnknownField]] = []
    for obj in objs:
        if obj.kind in CONFIG_KINDS:
            strict_decode(obj, None, options, dropped)
            configs.append(_config_object(obj, options.namespace))
            continue
        if options.pods_only and obj.kind != "Pod":
            continue
        wl = workload_of(obj)
        if wl is None:
            continue
        unknown = strict_decode(obj, wl, options, dropped)
        pod = admit_workload(wl, options)
        pod.unknown = unknown
        pods.append(pod)
    return Admission(pods, objs, configs, dropped)


def strict_decode(obj: K8sObject, wl: Workload | None, options: AdmitOptions,
                  dropped: list[tuple[K8sObject, UnknownField]]) -> list[UnknownField]:
    """Step 0: unknown fields. Refused at once when the command creates the object under strict; returned
    (kept in the object) for ``check`` under strict; dropped from the object under warn/ignore."""
    gated = frozenset(wl.template + g.path for g in features.gated_fields(wl.spec)) if wl else frozenset()
    unknown = unknown_fields(obj.obj, options.kube_version, gated)
    if not unknown:
        return []
    if options.field_validation == "strict":
        if options.create:
            raise StrictDecodingError(kubectl_error(obj.obj, unknown, obj.source.display))
        return unknown
    if options.field_validation == "warn":
        dropped += [(obj, u) for u in unknown]
    drop(obj.obj, unknown)
    return []


def admit_files(files: Iterable[str], options: AdmitOptions = AdmitOptions()) -> Admission:
    """:func:`admit` of everything in ``files`` (files, directories, ``-`` for stdin)."""
    from podsec.manifest.loader import load

    return admit(load(files).objects, options)


def admit_workload(wl: Workload, options: AdmitOptions = AdmitOptions()) -> AdmittedPod:
    """The admission of one workload (see the module docstring for the steps)."""
    from podsec.api.defaults import pod_spec_as_created
    from podsec.api.validation import ValidationOptions, validate_pod

    gates = options.feature_gates
    decode(wl, gates)
    obj = wl.obj
    if options.namespace and obj.namespace and obj.namespace != options.namespace:
        raise obj.error(
            f'the namespace from the provided object "{obj.namespace}" does not match the namespace '
            f'"{options.namespace}". You must pass \'--namespace={obj.namespace}\' to perform this operation.')
    dropped = features.disabled_fields(wl.spec, gates)
    spec = features.drop_disabled_fields(wl.spec, gates) if dropped else wl.spec
    spec = pod_spec_as_created(wl.kind, obj.obj, spec)
    validated = pod_spec_as_created(wl.kind, obj.obj, wl.spec)  # gated fields stay: validated when on
    enabled = gates.enabled_names
    controller = None
    if options.create:
        meta = _pod_metadata(wl, options)
        if wl.kind != "Pod":  # the pod its controller creates: generated name, added labels and fields
            from podsec.api.controllers import controller_spec, pod_for

            controller = pod_for(obj.obj, {"metadata": wl.metadata, "spec": spec})
            meta = {**controller.metadata, "namespace": meta["namespace"]}
            spec = controller.spec
            validated = controller_spec(obj.obj, validated)
        # a Pod the command creates must have a name by now (run and apply never generate one)
        meta_errors = object_meta_errors({k: v for k, v in meta.items() if k != "generateName"})
        vopts = ValidationOptions(allow_privileged=options.allow_privileged, feature_gates=enabled)
        pod_errors = validate_pod(meta, validated, vopts)
        prefix: tuple[str | int, ...] = ()
    else:
        top = dict(obj.metadata)
        if options.namespace:
            top["namespace"] = options.namespace
        meta_errors = object_meta_errors(top)
        vopts = ValidationOptions(allow_privileged=options.allow_privileged, resource_is_pod=wl.kind == "Pod",
                                  feature_gates=enabled)
        pod_errors = validate_pod(wl.metadata, validated, vopts)
        prefix = wl.template
        meta = wl.pod_metadata()
        if options.namespace:
            meta = {**meta, "namespace": options.namespace}
    return AdmittedPod(wl, meta, spec, meta_errors + pod_errors, dropped, prefix, len(meta_errors), options.create,
                       controller=controller)


def decode(wl: Workload, gates: FeatureGates = STOCK) -> None:
    """The API server cannot decode a wrong type at all: bad input (exit 2), the first error, located."""
    from podsec.api.types import check_types
    from podsec.features import POD_SECURITY_CONTEXT_FS_USER

    errors = check_types(wl.metadata, wl.spec, fs_user=gates.enabled(POD_SECURITY_CONTEXT_FS_USER))
    if errors:
        e = errors[0]
        raise wl.obj.error(e.body(), wl.template + e.location, field=wl.field(e.path))


def _pod_metadata(wl: Workload, options: AdmitOptions) -> dict[str, Any]:
    """The metadata of the Pod a command creates from ``wl``: name (generated when asked) and namespace."""
    obj = wl.obj
    meta = dict(wl.pod_metadata() if wl.kind != "Pod" else wl.metadata)
    if wl.kind == "Pod" and not isinstance(meta.get("name"), str):
        meta.pop("name", None)
    if options.generate_names and not obj.metadata.get("name") and isinstance(obj.metadata.get("generateName"), str):
        meta["name"] = str(obj.metadata["generateName"]) + os.urandom(3).hex()[:5]
    if options.namespace:
        meta["namespace"] = options.namespace
    meta.setdefault("namespace", "default")
    if not meta.get("namespace"):
        meta["namespace"] = "default"
    return meta


def _config_object(obj: K8sObject, namespace: str | None) -> dict[str, Any]:
    doc = dict(obj.obj)
    meta = dict(doc.get("metadata") or {})
    if namespace and not meta.get("namespace"):
        meta["namespace"] = namespace
    doc["metadata"] = meta
    return doc


# -- object metadata (ValidateObjectMeta, the parts podsec relies on) --------------------------------

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_NAME_REQUIRED = "name or generateName is required"


def object_meta_errors(metadata: dict[str, Any]) -> list[FieldError]:
    """``ValidateObjectMeta`` for what podsec relies on: the name (a DNS subdomain, also a directory name
    here; with only ``generateName``, that prefix) and the namespace (a DNS label, ``default`` when unset)."""
    errors: list[FieldError] = []
    name = metadata.get("name")
    gen = metadata.get("generateName")
    if not name and isinstance(gen, str) and gen:
        # NameIsDNSSubdomain(prefix=true): a trailing '-' is allowed in a prefix
        masked = gen[:-1] + "a" if gen.endswith("-") else gen
        if len(gen) > 253:
            errors.append(FieldError("Invalid", ("metadata", "generateName"), "must be no more than 253 characters",
                                     gen))
        elif not _SUBDOMAIN.fullmatch(masked):
            errors.append(FieldError("Invalid", ("metadata", "generateName"), _SUBDOMAIN_MSG, gen))
    elif not name:
        errors.append(FieldError("Required", ("metadata", "name"), _NAME_REQUIRED))
    else:
        name = str(name)
        if len(name) > 253:
            errors.append(FieldError("Invalid", ("metadata", "name"), "must be no more than 253 characters", name))
        elif not _SUBDOMAIN.fullmatch(name):
            errors.append(FieldError("Invalid", ("metadata", "name"), _SUBDOMAIN_MSG, name))
    namespace = str(metadata.get("namespace") or "default")
    if len(namespace) > 63:
        errors.append(FieldError("Invalid", ("metadata", "namespace"), "must be no more than 63 characters",
                                 namespace))
    elif not _LABEL.fullmatch(namespace):
        errors.append(FieldError("Invalid", ("metadata", "namespace"), _LABEL_MSG, namespace))
    return errors


def safe_pod_name(namespace: str, name: str) -> bool:
    """A name and namespace the API server would accept (and so a safe directory name under the state dir)."""
    return not object_meta_errors({"name": name, "namespace": namespace})


def invalid_message(errors: list[str], kind: str = "Pod", name: str = "") -> str:
    """kubectl's ``MultilineError`` for an Invalid status."""
    prefix = f'The {kind} "{name}" is invalid: '
    if len(errors) == 1:
        return prefix + errors[0]
    return prefix + "\n" + "\n".join(f"* {e}" for e in errors)


__all__ = ["CONFIG_KINDS", "Admission", "AdmitOptions", "AdmittedPod", "PodInvalid", "admit", "admit_files",
           "admit_workload", "decode", "invalid_message", "object_meta_errors", "safe_pod_name", "strict_decode"]
