"""seccompProfile_restricted (restricted, v1.19+; overrides seccompProfile_baseline).

A seccomp profile must be set, and only the runtime default and localhost profiles are allowed.

Restricted fields:
  spec.securityContext.seccompProfile.type
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type
Allowed values: "RuntimeDefault", "Localhost"; a container may leave it unset if the pod sets a valid one.
From v1.25 pods with spec.os.name == "windows" are exempt.
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    RESTRICTED,
    Check,
    VersionedCheck,
    container_name,
    containers_of,
    containers_phrase,
    deepest,
    is_windows,
    join_quote,
    sub,
)
from podsec.policy.pss.check_seccomp_profile_baseline import (
    CTR_PROFILE_CEL,
    POD_PROFILE_CEL,
    TYPE_KEYS,
    bad_profile_cel,
    bad_profile_type,
    explicit_detail_cel,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "seccompProfile_restricted"
_OVERRIDES = ("seccompProfile_baseline",)


def seccomp_profile_restricted_v1_19(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Explicitly bad types fail first; otherwise every container must be covered by a valid type."""
    setters: list[str] = []
    bad_values: set[str] = set()
    explicit_fields: list[FieldPath] = []
    pod_set = False
    psc = sub(spec, "securityContext")
    if psc is not None:
        profile = psc.get("seccompProfile")
        if profile is not None:
            t = bad_profile_type(profile)
            if t is None:
                pod_set = True
            else:
                setters.append("pod")
                bad_values.add(t)
                explicit_fields.append(deepest(("spec",), spec, TYPE_KEYS))
    explicit: list[str] = []
    implicit: list[str] = []
    implicit_fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        profile = sc.get("seccompProfile") if sc is not None else None
        if profile is not None:
            t = bad_profile_type(profile)
            if t is not None:
                explicit.append(container_name(c))
                bad_values.add(t)
                explicit_fields.append(deepest(("spec", key, i), c, TYPE_KEYS))
        elif not pod_set:
            implicit.append(container_name(c))
            implicit_fields.append(deepest(("spec", key, i), c, TYPE_KEYS))
    if explicit:
        setters.append(containers_phrase(explicit))
    if setters:
        return CheckOutcome(
            ID,
            False,
            "seccompProfile",
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
            f"{join_quote(sorted(bad_values))}",
            explicit_fields,
        )
    if implicit:
        return CheckOutcome(
            ID,
            False,
            "seccompProfile",
            f"pod or {containers_phrase(implicit)} must set securityContext.seccompProfile.type to "
            '"RuntimeDefault" or "Localhost"',
            implicit_fields,
        )
    return None


def seccomp_profile_restricted_v1_25(metadata: dict, spec: dict) -> CheckOutcome | None:
    """As v1.19, but Windows pods are exempt."""
    if is_windows(spec):
        return None
    return seccomp_profile_restricted_v1_19(metadata, spec)


_EXPLICIT = f"({bad_profile_cel(POD_PROFILE_CEL)} || bad_.size() > 0)"
_UNSET = f"!{CTR_PROFILE_CEL}.hasValue()"
CEL_V1_19 = cel.CelRule(
    f"!{bad_profile_cel(POD_PROFILE_CEL)} && !variables.containers.exists(c, {bad_profile_cel(CTR_PROFILE_CEL)})"
    f" && ({POD_PROFILE_CEL}.hasValue() || !variables.containers.exists(c, {_UNSET}))",
    cel.lit("seccompProfile"),
    f"{_EXPLICIT} ? {explicit_detail_cel()} : 'pod or ' + {cel.containers_phrase(cel.names_where(_UNSET))}"
    " + ' must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"'",
    (("bad_", cel.names_where(bad_profile_cel(CTR_PROFILE_CEL))),),
)

CHECK = Check(
    ID,
    RESTRICTED,
    (
        VersionedCheck(19, seccomp_profile_restricted_v1_19, _OVERRIDES, CEL_V1_19),
        VersionedCheck(25, seccomp_profile_restricted_v1_25, _OVERRIDES, cel.exempt(CEL_V1_19, "isWindows")),
    ),
)
