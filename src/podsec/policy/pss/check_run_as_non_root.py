"""runAsNonRoot (restricted, v1.0+).

Containers must be required to run as non-root users.

Restricted fields:
  spec.securityContext.runAsNonRoot
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsNonRoot
Allowed values: true; a container may leave it unset if the pod sets true. runAsUser is not considered.
From v1.35 pods with spec.hostUsers=false (user namespaces) are allowed outright.
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
    host_users_false,
    is_false,
    is_true,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "runAsNonRoot"
REASON = "runAsNonRoot != true"
_KEYS = ("securityContext", "runAsNonRoot")


def run_as_non_root_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Explicit runAsNonRoot=false anywhere fails first; otherwise every container must be covered."""
    setters: list[str] = []
    explicit_fields: list[FieldPath] = []
    pod_true = False
    psc = sub(spec, "securityContext")
    if psc is not None:
        v = psc.get("runAsNonRoot")
        if is_false(v):
            setters.append("pod")
            explicit_fields.append(("spec", "securityContext", "runAsNonRoot"))
        elif is_true(v):
            pod_true = True

    explicit: list[str] = []
    implicit: list[str] = []
    implicit_fields: list[FieldPath] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        v = sc.get("runAsNonRoot") if sc is not None else None
        if is_false(v):
            explicit.append(container_name(c))
            explicit_fields.append(("spec", key, i, "securityContext", "runAsNonRoot"))
        elif not pod_true and not is_true(v):
            # unset (or malformed) and not covered by the pod
            implicit.append(container_name(c))
            implicit_fields.append(deepest(("spec", key, i), c, _KEYS))

    if explicit:
        setters.append(containers_phrase(explicit))
    if setters:
        return CheckOutcome(
            ID,
            False,
            REASON,
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
            explicit_fields,
        )
    if implicit:
        return CheckOutcome(
            ID,
            False,
            REASON,
            f"pod or {containers_phrase(implicit)} must set securityContext.runAsNonRoot=true",
            implicit_fields,
        )
    return None


def run_as_non_root_v1_35(metadata: dict, spec: dict) -> CheckOutcome | None:
    """As v1.0, but user-namespaced pods (hostUsers: false) are allowed."""
    if host_users_false(spec):
        return None
    return run_as_non_root_v1_0(metadata, spec)


_POD = "variables.podSecurityContext.?runAsNonRoot"
_CTR = "c.?securityContext.?runAsNonRoot"
_POD_FALSE = f"{_POD}.orValue(true) == false"
_CTR_FALSE = f"{_CTR}.orValue(true) == false"
_CTR_NOT_TRUE = f"{_CTR}.orValue(false) != true"  # unset, or not a boolean
CEL_V1_0 = cel.CelRule(
    f"!({_POD_FALSE}) && !variables.containers.exists(c, {_CTR_FALSE})"
    f" && ({_POD}.orValue(false) == true || !variables.containers.exists(c, {_CTR_NOT_TRUE}))",
    cel.lit(REASON),
    f"({_POD_FALSE} || explicit_.size() > 0) ? ("
    + cel.when(_POD_FALSE, "'pod'") + " + " + cel.when("explicit_.size() > 0", cel.containers_phrase("explicit_"))
    + ").join(' and ') + ' must not set securityContext.runAsNonRoot=false' : 'pod or ' + "
    + cel.containers_phrase(cel.names_where(_CTR_NOT_TRUE)) + " + ' must set securityContext.runAsNonRoot=true'",
    (("explicit_", cel.names_where(_CTR_FALSE)),),
)

CHECK = Check(
    ID,
    RESTRICTED,
    (
        VersionedCheck(0, run_as_non_root_v1_0, cel=CEL_V1_0),
        VersionedCheck(35, run_as_non_root_v1_35, cel=cel.exempt(CEL_V1_0, "hostUsersFalse")),
    ),
)
