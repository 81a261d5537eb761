"""What happens before the kubelet sees a pod: reading the files, the API server's validation, and the
node's image check.

A pod the API server would reject is refused with its words, in kubectl's layout
(``The Pod "x" is invalid: <field>: <message>``, one ``* `` line per error when there are several),
and exit status 2 (bad input) rather than kubectl's 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from podsec.errors import ImageError, InputError, PodsecError

OBJECT_KINDS = ("ConfigMap", "Secret")


class PodInvalid(PodsecError):
    """The API server's Invalid status for a pod."""

    exit_code = 2


@dataclass(slots=True)
class PodRequest:
    """One Pod from the files, with the ConfigMaps and Secrets that came with it."""

    metadata: dict[str, Any]
    spec: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)
    where: str = ""

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")


def load_pods(files: tuple[str, ...] | list[str], namespace: str | None = None) -> list[PodRequest]:
    """Every Pod in ``files``; ConfigMaps/Secrets found anywhere in them go with every pod."""
    from podsec.manifest.loader import load

    if not files:
        raise InputError("give the pod with -f FILE")
    result = load(list(files))
    objects: list[dict[str, Any]] = []
    pods: list[PodRequest] = []
    for obj in result.objects:
        if obj.kind in OBJECT_KINDS:
            doc = dict(obj.obj)
            meta = dict(doc.get("metadata") or {})
            if namespace and not meta.get("namespace"):
                meta["namespace"] = namespace
            doc["metadata"] = meta
            objects.append(doc)
        elif obj.kind == "Pod":
            meta = dict(obj.metadata)
            if namespace:
                if meta.get("namespace") and meta["namespace"] != namespace:
                    raise obj.error(
                        f"the namespace from the provided object \"{meta['namespace']}\" does not match the "
                        f"namespace \"{namespace}\". You must pass '--namespace={meta['namespace']}' to perform "
                        "this operation."
                    )
                meta["namespace"] = namespace
            spec = obj.obj.get("spec")
            if not isinstance(spec, dict):
                raise obj.error("spec: Required value", ("spec",))
            _decode_check(obj, meta, spec)
            if not meta.get("name"):
                raise obj.error("metadata.name: Required value: name or generateName is required", ("metadata",))
            pods.append(PodRequest(meta, spec, where=f"{obj.source.display}:{obj.line_of()}"))
    for p in pods:
        p.objects = objects
    return pods


def _decode_check(obj: Any, metadata: dict[str, Any], spec: dict[str, Any]) -> None:
    """The API server cannot even decode a wrong type (``runAsUser: "abc"``): bad input, first error."""
    from podsec.api.types import check_types

    errors = check_types(metadata, spec)
    if errors:
        e = errors[0]
        raise obj.error(e.body(), e.location, field=e.field)


def single_pod(files: tuple[str, ...] | list[str], namespace: str | None = None) -> PodRequest:
    pods = load_pods(files, namespace)
    if len(pods) != 1:
        raise InputError(
            f"podsec run needs exactly one Pod in the files, found {len(pods)}"
            + (" (use podsec apply for several)" if pods else ""),
            file=", ".join(files),
        )
    return pods[0]


def invalid_message(name: str, errors: list[str]) -> str:
    """kubectl's ``MultilineError`` for an Invalid status."""
    prefix = f'The Pod "{name}" is invalid: '
    if len(errors) == 1:
        return prefix + errors[0]
    return prefix + "\n" + "\n".join(f"* {e}" for e in errors)


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


def object_meta_errors(metadata: dict[str, Any]) -> list[str]:
    """``ValidateObjectMeta`` for what podsec relies on: the name (a DNS subdomain, also a directory name
    here) and the namespace (a DNS label)."""
    from podsec.api.fielderror import go_quote

    errors: list[str] = []
    name = str(metadata.get("name") or "")
    if len(name) > 253:
        errors.append(f"metadata.name: Invalid value: {go_quote(name)}: must be no more than 253 characters")
    elif not _SUBDOMAIN.fullmatch(name):
        errors.append(f"metadata.name: Invalid value: {go_quote(name)}: {_SUBDOMAIN_MSG}")
    namespace = str(metadata.get("namespace") or "default")
    if len(namespace) > 63:
        errors.append(f"metadata.namespace: Invalid value: {go_quote(namespace)}: must be no more than 63 characters")
    elif not _LABEL.fullmatch(namespace):
        errors.append(f"metadata.namespace: Invalid value: {go_quote(namespace)}: {_LABEL_MSG}")
    return errors


def validate(req: PodRequest, options: Any = None) -> None:
    """Refuse the pod as the API server would (all of its errors, in its order: object meta first).

    ``options``: a :class:`podsec.api.validation.ValidationOptions` (feature gates), else the defaults.
    """
    from podsec.api.validation import ValidationOptions, validate_pod

    opts = options if options is not None else ValidationOptions()
    if opts.fs_user:  # the gate makes fsUser a known int64 field: a wrong type fails to decode
        from podsec.api.types import check_types

        bad = [e for e in check_types(req.metadata, req.spec, fs_user=True) if "fsUser" in e.path]
        if bad:
            raise InputError(bad[0].body(), file=req.where or None, field=bad[0].field)
    errs = object_meta_errors(req.metadata) + [e.render() for e in validate_pod(req.metadata, req.spec, opts)]
    if errs:
        raise PodInvalid(invalid_message(req.name, errs))


def check_images(req: PodRequest, store: Any) -> None:
    """Every image must already be in the store: ``podsec run`` never pulls (use ``podsec image pull``)."""
    for key in ("initContainers", "containers"):
        for c in req.spec.get(key) or ():
            ref = c.get("image") if isinstance(c, dict) else None
            if not isinstance(ref, str) or not ref:
                continue
            try:
                found = store.resolve(ref)
            except PodsecError:
                found = None
            if found is None:
                raise ImageError(
                    f'container "{c.get("name")}": image "{ref}" is not in the local store ({store.root}); '
                    "load it with podsec image load or pull it with podsec image pull (run never pulls)"
                )
