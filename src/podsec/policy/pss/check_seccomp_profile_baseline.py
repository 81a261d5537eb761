"""seccompProfile_baseline (baseline, v1.0+; replaced by seccompProfile_restricted in restricted from v1.19).

If a seccomp profile is specified, only the runtime default and localhost profiles are allowed.

v1.0-v1.18 (annotations only):
  metadata.annotations["seccomp.security.alpha.kubernetes.io/pod"]
  metadata.annotations["container.seccomp.security.alpha.kubernetes.io/<container name>"]
  allowed: "runtime/default", "docker/default", "localhost/*", undefined ("" is forbidden)
v1.19+ (fields only; the annotations are ignored):
  spec.securityContext.seccompProfile.type
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type
  allowed: "RuntimeDefault", "Localhost", or the whole seccompProfile undefined
"""

from __future__ import annotations

from podsec.policy.pss._common import (
    BASELINE,
    Check,
    VersionedCheck,
    as_str,
    container_name,
    containers_of,
    containers_phrase,
    deepest,
    go_quote,
    join_quote,
    pluralize,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "seccompProfile_baseline"
ANNOTATION_KEY_POD = "seccomp.security.alpha.kubernetes.io/pod"
ANNOTATION_KEY_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
VALID_TYPES = frozenset(("RuntimeDefault", "Localhost"))
TYPE_KEYS = ("securityContext", "seccompProfile", "type")


def _valid_annotation(v: str) -> bool:
    return v == "runtime/default" or v == "docker/default" or v.startswith("localhost/")


def bad_profile_type(profile: object) -> str | None:
    """The offending type of a set seccompProfile, or None if unset/valid (a missing type is "")."""
    if profile is None:
        return None
    t = as_str(profile.get("type")) if isinstance(profile, dict) else ""
    return None if t in VALID_TYPES else t


def _check_annotation(annotations: dict, key: str, entries: dict[str, str]) -> None:
    if key in annotations:
        v = as_str(annotations[key])
        if not _valid_annotation(v):
            entries.setdefault(f"{key}={go_quote(v)}", key)


def seccomp_profile_baseline_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Check the alpha seccomp annotations of the pod and of each visited container."""
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or not annotations:
        return None
    entries: dict[str, str] = {}  # entry -> annotation key (distinct)
    _check_annotation(annotations, ANNOTATION_KEY_POD, entries)
    for _, _, c in containers_of(spec):
        _check_annotation(annotations, ANNOTATION_KEY_CONTAINER_PREFIX + container_name(c), entries)
    if not entries:
        return None
    ordered = sorted(entries)
    return CheckOutcome(
        ID,
        False,
        "seccompProfile",
        f"forbidden {pluralize('annotation', 'annotations', len(ordered))} {', '.join(ordered)}",
        [("metadata", "annotations", entries[e]) for e in ordered],
    )


def seccomp_profile_baseline_v1_19(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid seccompProfile.type values other than RuntimeDefault/Localhost where set."""
    setters: list[str] = []
    bad_values: set[str] = set()
    fields: list[FieldPath] = []
    psc = sub(spec, "securityContext")
    if psc is not None:
        t = bad_profile_type(psc.get("seccompProfile"))
        if t is not None:
            setters.append("pod")
            bad_values.add(t)
            fields.append(deepest(("spec",), spec, TYPE_KEYS))
    bad: list[str] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        if sc is None:
            continue
        t = bad_profile_type(sc.get("seccompProfile"))
        if t is not None:
            bad.append(container_name(c))
            bad_values.add(t)
            fields.append(deepest(("spec", key, i), c, TYPE_KEYS))
    if bad:
        setters.append(containers_phrase(bad))
    if not setters:
        return None
    return CheckOutcome(
        ID,
        False,
        "seccompProfile",
        f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
        f"{join_quote(sorted(bad_values))}",
        fields,
    )


CHECK = Check(
    ID,
    BASELINE,
    (
        VersionedCheck(0, seccomp_profile_baseline_v1_0),
        VersionedCheck(19, seccomp_profile_baseline_v1_19),
    ),
)
