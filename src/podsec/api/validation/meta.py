"""Object metadata the API server checks on a pod: the seccomp and AppArmor annotations and their agreement
with the fields (``ValidatePodSpecificAnnotations``, ``validateSeccompAnnotationsAndFields``). The name and
namespace are checked by the admission step (:func:`podsec.admit.object_meta_errors`)."""

from __future__ import annotations

from podsec.api.fielderror import FieldError, Key, go_quote
from podsec.api.validation.common import (
    _APPARMOR_PREFIX,
    _SECCOMP_CONTAINER_PREFIX,
    _SECCOMP_POD_ANNOTATION,
    _d,
    _local_descending_path,
    _name,
    _sc,
)

# ---------------------------------------------------------------------------------------------
# Annotations


def _seccomp_annotation(value: str, path: tuple, errs: list[FieldError]) -> None:
    """ValidateSeccompProfile for a legacy annotation value."""
    if value in ("runtime/default", "docker/default", "unconfined"):
        return
    if value.startswith("localhost/"):
        _local_descending_path(value[len("localhost/") :], path, errs)
        return
    errs.append(FieldError("Invalid", path, "must be a valid seccomp profile", value))


def _annotation_str(v: object) -> str:
    return v if isinstance(v, str) else ""


def _pod_annotations(ann: dict, names: set[str], base: tuple, errs: list[FieldError]) -> None:
    """ValidatePodSpecificAnnotations: the seccomp and AppArmor parts (document order)."""
    if _SECCOMP_POD_ANNOTATION in ann:
        _seccomp_annotation(
            _annotation_str(ann[_SECCOMP_POD_ANNOTATION]), (*base, _SECCOMP_POD_ANNOTATION), errs
        )
    for k, v in ann.items():
        if isinstance(k, str) and k.startswith(_SECCOMP_CONTAINER_PREFIX):
            _seccomp_annotation(_annotation_str(v), (*base, k), errs)
    for k, v in ann.items():
        if not isinstance(k, str) or not k.startswith(_APPARMOR_PREFIX):
            continue
        cname = k[len(_APPARMOR_PREFIX) :]
        if cname not in names:
            errs.append(FieldError("Invalid", (*base, Key(k)), "container not found", cname))
        p = _annotation_str(v)
        if p not in ("", "runtime/default", "unconfined") and not p.startswith("localhost/"):
            errs.append(
                FieldError("Invalid", (*base, Key(k)), f"invalid AppArmor profile name: {go_quote(p)}", p)
            )


def _seccomp_match(annotation: str, prof: dict, path: tuple, errs: list[FieldError]) -> None:
    """validateSeccompAnnotationsAndFieldsMatch."""
    t = prof.get("type")
    if t == "Unconfined":
        if annotation != "unconfined":
            errs.append(
                FieldError("Forbidden", (*path, "type"), "seccomp type in annotation and field must match")
            )
    elif t == "RuntimeDefault":
        if annotation not in ("runtime/default", "docker/default"):
            errs.append(
                FieldError("Forbidden", (*path, "type"), "seccomp type in annotation and field must match")
            )
    elif t == "Localhost":
        if not annotation.startswith("localhost/"):
            errs.append(
                FieldError("Forbidden", (*path, "type"), "seccomp type in annotation and field must match")
            )
        elif annotation[len("localhost/") :] != prof.get("localhostProfile"):
            errs.append(
                FieldError(
                    "Forbidden",
                    (*path, "localhostProfile"),
                    "seccomp profile in annotation and field must match",
                )
            )


def _apparmor_match(annotation: str, prof: dict, path: tuple, errs: list[FieldError]) -> None:
    """The per-container body of validateAppArmorAnnotationsAndFieldsMatchOnCreate."""
    t = prof.get("type")
    if t == "Unconfined":
        if annotation != "unconfined":
            errs.append(
                FieldError("Forbidden", (*path, "type"), "apparmor type in annotation and field must match")
            )
    elif t == "RuntimeDefault":
        if annotation != "runtime/default":
            errs.append(
                FieldError("Forbidden", (*path, "type"), "apparmor type in annotation and field must match")
            )
    elif t == "Localhost":
        if not annotation.startswith("localhost/"):
            errs.append(
                FieldError("Forbidden", (*path, "type"), "apparmor type in annotation and field must match")
            )
        elif annotation[len("localhost/") :] != prof.get("localhostProfile"):
            errs.append(
                FieldError(
                    "Forbidden",
                    (*path, "localhostProfile"),
                    "apparmor profile in annotation and field must match",
                )
            )


def _annotations_match_fields(
    ann: dict, psc: dict | None, sp: dict, visit: list[tuple[dict, tuple]], errs: list[FieldError]
) -> None:
    """validateSeccompAnnotationsAndFields + validateAppArmorAnnotationsAndFieldsMatchOnCreate."""
    pod_seccomp = _d(psc.get("seccompProfile")) if psc else None
    if pod_seccomp is not None and _SECCOMP_POD_ANNOTATION in ann:
        _seccomp_match(
            _annotation_str(ann[_SECCOMP_POD_ANNOTATION]),
            pod_seccomp,
            ("spec", "securityContext", "seccompProfile"),
            errs,
        )
    for c, cpath in visit:
        prof = _d(_sc(c).get("seccompProfile"))
        if prof is None:
            continue
        key = _SECCOMP_CONTAINER_PREFIX + _name(c)
        if key in ann:
            _seccomp_match(
                _annotation_str(ann[key]), prof, (*cpath, "securityContext", "seccompProfile"), errs
            )
    os_ = _d(sp.get("os"))
    if os_ is not None and os_.get("name") == "windows":
        return
    pod_aa = _d(psc.get("appArmorProfile")) if psc else None
    for c, cpath in visit:
        prof = _d(_sc(c).get("appArmorProfile")) or pod_aa
        if prof is None:
            continue
        key = _APPARMOR_PREFIX + _name(c)
        if key in ann:
            _apparmor_match(
                _annotation_str(ann[key]), prof, (*cpath, "securityContext", "appArmorProfile"), errs
            )
