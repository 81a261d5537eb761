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

from podsec.goquote import go_quote
from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    BASELINE,
    Check,
    VersionedCheck,
    as_str,
    container_name,
    containers_of,
    containers_phrase,
    deepest,
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


def _valid_annotation_cel(v: str) -> str:
    return f"({v} == 'runtime/default' || {v} == 'docker/default' || {v}.startsWith('localhost/'))"


_POD_KEY = cel.lit(ANNOTATION_KEY_POD)
_CTR_KEY = f"{cel.lit(ANNOTATION_KEY_CONTAINER_PREFIX)} + {cel.NAME}"
_POD_ANNOTATION_BAD = (
    f"({_POD_KEY} in variables.annotations && !{_valid_annotation_cel(f'variables.annotations[{_POD_KEY}]')})"
)
_CTR_ANNOTATION_BAD = (
    f"({_CTR_KEY} in variables.annotations && !{_valid_annotation_cel(f'variables.annotations[{_CTR_KEY}]')})"
)
CEL_V1_0 = cel.CelRule(
    f"!{_POD_ANNOTATION_BAD} && !variables.containers.exists(c, {_CTR_ANNOTATION_BAD})",
    cel.lit("seccompProfile"),
    f"'forbidden ' + ({cel.one_value('entries_')} ? 'annotation' : 'annotations') + ' ' + "
    + cel.sorted_join("entries_", quoted=False),
    (("entries_", (cel.singletons(
        cel.when(_POD_ANNOTATION_BAD, f"{_POD_KEY} + '=' + strings.quote(variables.annotations[{_POD_KEY}])")
        + f" + variables.containers.filter(c, {_CTR_ANNOTATION_BAD})"
        f".map(c, {_CTR_KEY} + '=' + strings.quote(variables.annotations[{_CTR_KEY}]))"
    ))),),
)

VALID_TYPES_CEL = cel.str_list(VALID_TYPES)
POD_PROFILE_CEL = "variables.podSecurityContext.?seccompProfile"
CTR_PROFILE_CEL = "c.?securityContext.?seccompProfile"


def bad_profile_cel(profile: str) -> str:
    """CEL: the (optional) profile is set and its type is not RuntimeDefault/Localhost."""
    return f"({profile}.hasValue() && !({profile}.?type.orValue('') in {VALID_TYPES_CEL}))"


def explicit_detail_cel() -> str:
    """CEL for the detail naming the pod/containers that set a bad type (``bad_`` bound to their names)."""
    return (
        "(" + cel.when(bad_profile_cel(POD_PROFILE_CEL), "'pod'") + " + "
        + cel.when("bad_.size() > 0", cel.containers_phrase("bad_"))
        + ").join(' and ') + ' must not set securityContext.seccompProfile.type to ' + "
        + cel.sorted_join(cel.singletons(
            cel.when(bad_profile_cel(POD_PROFILE_CEL), f"{POD_PROFILE_CEL}.?type.orValue('')")
            + f" + variables.containers.filter(c, {bad_profile_cel(CTR_PROFILE_CEL)})"
            f".map(c, {CTR_PROFILE_CEL}.?type.orValue(''))"
        ))
    )


CEL_V1_19 = cel.CelRule(
    f"!{bad_profile_cel(POD_PROFILE_CEL)} && !variables.containers.exists(c, {bad_profile_cel(CTR_PROFILE_CEL)})",
    cel.lit("seccompProfile"),
    explicit_detail_cel(),
    (("bad_", cel.names_where(bad_profile_cel(CTR_PROFILE_CEL))),),
)

CHECK = Check(
    ID,
    BASELINE,
    (
        VersionedCheck(0, seccomp_profile_baseline_v1_0, cel=CEL_V1_0),
        VersionedCheck(19, seccomp_profile_baseline_v1_19, cel=CEL_V1_19),
    ),
)
